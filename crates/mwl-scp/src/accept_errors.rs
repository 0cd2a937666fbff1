//! Failed `accept()` calls, logged once per burst and backed off.
//!
//! When the process runs out of file descriptors (or the kernel of memory), every
//! `accept()` fails at once and keeps failing until connections close: logging each
//! failure filled the log with thousands of lines a minute, and retrying at once spun a
//! core. [`AcceptErrors`] says what to log and how long to wait: the first failure of a
//! burst at WARN, then one summary a minute while it lasts, then one line when accepting
//! works again; the wait doubles from 10 ms up to 1 s.

use std::time::{Duration, Instant};

/// The first wait after a failed accept.
const FIRST_WAIT: Duration = Duration::from_millis(10);
/// The longest wait between accepts while they fail.
const LONGEST_WAIT: Duration = Duration::from_secs(1);
/// How often a lasting burst is summarized.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// What to log after one failed accept.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Report {
    /// The first failure of a burst: log it.
    First,
    /// A burst still going on: log how many failed since the last line.
    Summary { failed: u64 },
    /// Nothing to log.
    Quiet,
}

/// The state of the current burst of failed accepts, if any.
#[derive(Debug, Default)]
pub(crate) struct AcceptErrors {
    burst: Option<Burst>,
}

#[derive(Debug)]
struct Burst {
    started: Instant,
    last_line: Instant,
    failed: u64,
    unlogged: u64,
    wait: Duration,
}

impl AcceptErrors {
    /// Counts a failed accept at `now`: what to log, and how long to wait before the
    /// next accept.
    pub(crate) fn failed(&mut self, now: Instant) -> (Report, Duration) {
        match &mut self.burst {
            None => {
                self.burst = Some(Burst {
                    started: now,
                    last_line: now,
                    failed: 1,
                    unlogged: 0,
                    wait: FIRST_WAIT,
                });
                (Report::First, FIRST_WAIT)
            }
            Some(b) => {
                b.failed += 1;
                b.unlogged += 1;
                b.wait = (b.wait * 2).min(LONGEST_WAIT);
                let report = if now.duration_since(b.last_line) >= SUMMARY_EVERY {
                    b.last_line = now;
                    Report::Summary {
                        failed: std::mem::take(&mut b.unlogged),
                    }
                } else {
                    Report::Quiet
                };
                (report, b.wait)
            }
        }
    }

    /// Counts a successful accept at `now`: ends a burst, returning how many accepts
    /// failed in it and for how long.
    pub(crate) fn succeeded(&mut self, now: Instant) -> Option<(u64, Duration)> {
        self.burst
            .take()
            .map(|b| (b.failed, now.duration_since(b.started)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_logged_once_then_summarized_and_its_end_said() {
        let mut errors = AcceptErrors::default();
        let t0 = Instant::now();
        assert_eq!(errors.failed(t0), (Report::First, FIRST_WAIT));
        let mut waits = Vec::new();
        for i in 1..=1000u64 {
            let (report, wait) = errors.failed(t0 + Duration::from_millis(i));
            assert_eq!(report, Report::Quiet, "failure {i} is not logged");
            waits.push(wait);
        }
        assert_eq!(waits[0], Duration::from_millis(20), "the wait doubles");
        assert_eq!(
            waits.last(),
            Some(&LONGEST_WAIT),
            "and stops growing at 1 s"
        );
        let (report, _) = errors.failed(t0 + SUMMARY_EVERY + Duration::from_secs(1));
        assert_eq!(report, Report::Summary { failed: 1001 });
        assert_eq!(
            errors.succeeded(t0 + Duration::from_secs(62)),
            Some((1002, Duration::from_secs(62)))
        );
        assert_eq!(errors.succeeded(t0 + Duration::from_secs(63)), None);
        assert_eq!(
            errors.failed(t0 + Duration::from_secs(64)).0,
            Report::First,
            "a new burst is logged again"
        );
    }
}
