//! Benchmarks of mwlbridge, run by `scripts/bench-sync.sh` (and the query load benchmark
//! of the performance issue). They drive the real `mwlbridge` binary.
