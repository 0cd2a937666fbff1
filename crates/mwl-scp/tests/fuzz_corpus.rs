//! The fuzz corpus (`fuzz/corpus/<target>/`) and every saved fuzzing reproducer
//! (`fuzz/regressions/<target>/`) replayed through the fuzz targets' code paths
//! (`fuzz/src/harness.rs`, shared with the fuzz targets), so that what the fuzzer once
//! found stays fixed without a nightly toolchain.
//!
//! `MWL_FUZZ_WRITE_SEEDS=1 cargo test -p mwl-scp --test fuzz_corpus write_seeds` writes
//! the seed inputs into `fuzz/corpus/<target>/` (scripts/fuzz.sh does so on first use).

#[path = "../../../fuzz/src/harness.rs"]
mod harness;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

const TARGETS: [(&str, fn(&[u8])); 4] = [
    ("identifier", harness::identifier),
    ("command", harness::command),
    ("mpps", harness::mpps),
    ("pdu", harness::pdu),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every file under `fuzz/<folder>/<target>/`, sorted.
fn files(folder: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(folder).join(target);
    let mut out: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// Runs every file of `folder` through its target; the failures, named.
fn replay(folder: &str) -> (usize, Vec<String>) {
    let mut count = 0;
    let mut failures = Vec::new();
    for (target, run) in TARGETS {
        for file in files(folder, target) {
            let bytes = std::fs::read(&file).expect("read a corpus file");
            count += 1;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(&bytes))) {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{target}: {}: {why}", file.display()));
            }
        }
    }
    (count, failures)
}

#[test]
fn seeds_run_clean() {
    for (target, name, bytes) in harness::seeds() {
        let run = TARGETS
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, f)| f)
            .expect("a known target");
        if catch_unwind(AssertUnwindSafe(|| run(&bytes))).is_err() {
            panic!("seed {target}/{name} panics");
        }
    }
}

#[test]
fn corpus_runs_clean() {
    let (count, failures) = replay("corpus");
    eprintln!("{count} corpus inputs replayed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn saved_reproducers_run_clean() {
    let (count, failures) = replay("regressions");
    eprintln!("{count} saved reproducers replayed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Writes the seeds into `fuzz/corpus/<target>/` when `MWL_FUZZ_WRITE_SEEDS` is set.
#[test]
fn write_seeds() {
    if std::env::var_os("MWL_FUZZ_WRITE_SEEDS").is_none() {
        return;
    }
    for (target, name, bytes) in harness::seeds() {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("create the corpus folder");
        std::fs::write(dir.join(name), bytes).expect("write a seed");
    }
}
