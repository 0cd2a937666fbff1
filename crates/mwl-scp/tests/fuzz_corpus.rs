//! The fuzz corpus (`fuzz/corpus/<target>/`) and every saved fuzzing reproducer
//! (`fuzz/regressions/<target>/`) replayed through the fuzz targets' code paths
//! (`fuzz/src/harness.rs`, shared with the fuzz targets), so that what the fuzzer once
//! found stays fixed without a nightly toolchain.
//!
//! Inputs are replayed in a child process (this test binary again), which resets its peak
//! resident memory (`/proc/self/clear_refs`) before each input and reads it (`VmHWM`) after:
//! an input that makes the code fill more than 256 MiB (what libFuzzer reports as
//! out-of-memory: dicom-rs allocates and zero-fills an announced length before reading it)
//! fails, as does a panic or an abort, naming the input. The child's address space is
//! capped at 8 GiB (`ulimit -v`) to protect the machine.
//!
//! `MWL_FUZZ_WRITE_SEEDS=1 cargo test -p mwl-scp --test fuzz_corpus write_seeds` writes
//! the seed inputs into `fuzz/corpus/<target>/` (scripts/fuzz.sh does so on first use).

#[path = "../../../fuzz/src/harness.rs"]
mod harness;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fuzz target: its name and the code path it drives.
type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 4] = [
    ("identifier", harness::identifier),
    ("command", harness::command),
    ("mpps", harness::mpps),
    ("pdu", harness::pdu),
];

/// The child's address-space limit, in KiB.
const ADDRESS_SPACE_KIB: u64 = 8 * 1024 * 1024;
/// The most resident memory one input may make the child use, in KiB.
const PEAK_RSS_KIB: u64 = 256 * 1024;

/// Tells the child which folder to replay.
const CHILD_ENV: &str = "MWL_FUZZ_REPLAY";

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

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// This process's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// In the child: replays every file of `$MWL_FUZZ_REPLAY`, naming each on stderr first (so
/// that an abort is traced to its input), each with a fresh peak-memory count. Does nothing
/// in a normal test run.
#[test]
fn child_replay() {
    let Some(folder) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let folder = folder.to_string_lossy().into_owned();
    let mut failures = Vec::new();
    let mut count = 0;
    for (target, run) in TARGETS {
        for file in files(&folder, target) {
            let bytes = std::fs::read(&file).expect("read an input");
            eprintln!("replaying {target} {}", file.display());
            count += 1;
            // Resets VmHWM to the current resident size.
            let _ = std::fs::write("/proc/self/clear_refs", "5");
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(&bytes))) {
                failures.push(format!(
                    "{target}: {}: {}",
                    file.display(),
                    panic_text(&*panic)
                ));
            }
            let peak = peak_rss_kib();
            if peak > PEAK_RSS_KIB {
                failures.push(format!(
                    "{target}: {}: peak resident memory {} MiB",
                    file.display(),
                    peak / 1024
                ));
            }
        }
    }
    eprintln!("replayed {count} inputs");
    assert!(
        failures.is_empty(),
        "failed inputs:\n{}",
        failures.join("\n")
    );
}

/// Replays `fuzz/<folder>/` in a child with a capped address space; panics with the
/// failing input when the child fails.
fn replay(folder: &str) {
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(exe)
        .args([
            "--exact",
            "child_replay",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, folder)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the replay child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let replayed = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("replayed "))
        .unwrap_or("");
    eprintln!("{folder}: {replayed}");
    if !out.status.success() {
        let last = stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("replaying "))
            .unwrap_or("(no input started)");
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "replaying fuzz/{folder} failed ({}); last input started: {last}\n{}",
            out.status,
            tail.join("\n")
        );
    }
}

#[test]
fn seeds_run_clean() {
    for (target, name, bytes) in harness::seeds() {
        let run = TARGETS
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, f)| f)
            .expect("a known target");
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(&bytes))) {
            panic!("seed {target}/{name} panics: {}", panic_text(&*panic));
        }
    }
}

#[test]
fn corpus_runs_clean() {
    replay("corpus");
}

/// Every reproducer the fuzzers saved. Open bugs, each making the code allocate and
/// zero-fill up to 4 GiB from a few dozen bytes:
///
/// - `identifier/oom-explicit-unknown-vr-*`: an Explicit VR element whose VR bytes are not a
///   VR passes `wire_check::check_lengths` with a 2-byte length, while dicom-rs reads it as
///   UN with a 4-byte length (crates/mwl-scp/src/wire_check.rs, the `long` VR list of the
///   explicit branch);
/// - `identifier/oom-delimiter-length-*`: a sequence delimiter (FFFE,E0DD) outside any
///   sequence, with a non-zero length: check_lengths skips 8 bytes, dicom-rs reads it as an
///   element with that length (wire_check.rs, the `0xE00D | 0xE0DD` arm);
/// - `command/oom-binary-vr-odd-length-*`, `pdu/oom-command-binary-vr-*`: a binary value
///   (here (gggg,0000) UL) whose length is not a multiple of its size: dicom-rs reads whole
///   values only and the rest out of step, as headers with arbitrary lengths
///   (`dimse::Command::decode`, on every command of every association);
/// - `mpps/oom-no-length-check-*`: `decode` in crates/mwl-scp/src/mpps.rs reads N-CREATE /
///   N-SET data sets with dicom-rs without `wire_check` at all.
#[test]
fn saved_reproducers_run_clean() {
    replay("regressions");
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
