//! Facts about the run for the report: the date, the machine, the servers' versions.

use std::process::{Command, Stdio};

use crate::args::Args;

/// Today in the benchmark's zone (the fakes' bookings start today).
pub(crate) fn today() -> jiff::civil::Date {
    let tz = jiff::tz::TimeZoneDatabase::bundled()
        .get("America/Edmonton")
        .unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::now().to_zoned_datetime(tz).date()
}

pub(crate) fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|s| s.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{model}, {cores} cores, {:.0} GiB, Linux {}",
        mem_kib as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

pub(crate) fn first_line(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::piped()).output().ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

pub(crate) fn versions(args: &Args) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(l) = first_line(Command::new(args.bin_dir.join("mwlbridge")).arg("--version")) {
        let built = std::fs::metadata(args.bin_dir.join("mwlbridge"))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| jiff::Timestamp::try_from(t).ok())
            .map(|t| format!(", binary built {}", t.strftime("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default();
        let head = first_line(Command::new("git").args(["rev-parse", "--short", "HEAD"]));
        let dirty = Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty());
        let source = head.map_or(String::new(), |h| {
            format!(
                " from {h}{}",
                if dirty { " + uncommitted changes" } else { "" }
            )
        });
        v.push(format!("{l}{source}{built}"));
    }
    if let Some(l) = first_line(Command::new("wlmscpfs").arg("--version")) {
        v.push(l.trim_matches('$').trim().to_string());
    }
    if args.pylantir_python.exists()
        && let Some(l) = first_line(Command::new(&args.pylantir_python).args([
            "-c",
            "import sys, importlib.metadata as m; print('Pylantir', m.version('pylantir'), 'on Python', sys.version.split()[0])",
        ]))
    {
        v.push(l);
    }
    v
}
