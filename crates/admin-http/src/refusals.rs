//! Refused credentials, logged without flooding the log. The first refusal of each kind
//! (its reason and, when known, the token's name) is logged at once, with the path and
//! the client's address; later ones of a kind already logged are only counted, and one
//! line per interval ([`INTERVAL`]) reports how many there were, from how many client
//! addresses, for which reasons. Once an interval passes without any refusal, the next
//! one is logged at once again. A token is never logged.
//!
//! The kinds are bounded: a handful of reasons times the names of existing tokens (a
//! name is only known when the token's public id is), so no sequence of requests makes
//! more than that many lines, plus one per interval.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often counted refusals are reported.
pub(crate) const INTERVAL: Duration = Duration::from_secs(60);
/// At most this many client addresses are remembered per interval (the count of distinct
/// addresses says "at least" beyond it).
const MAX_CLIENTS: usize = 1024;
/// At most this many addresses are named in a report.
const CLIENTS_NAMED: usize = 5;
/// At most this many kinds are logged at once per quiet period.
const MAX_KINDS: usize = 256;

/// One refusal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refusal<'a> {
    /// Why (a fixed text, never the token).
    pub(crate) reason: &'static str,
    /// The token's name, when its public id is known.
    pub(crate) token_name: Option<&'a str>,
    /// The request's path.
    pub(crate) path: &'a str,
    /// The client's address.
    pub(crate) client: Option<IpAddr>,
}

/// What the counted refusals of one interval were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    /// How many refusals were counted (not logged one by one).
    pub(crate) count: u64,
    /// How many distinct client addresses they came from (at least).
    pub(crate) clients: usize,
    /// Up to [`CLIENTS_NAMED`] of them.
    pub(crate) client_list: String,
    /// `reason: count` for each reason.
    pub(crate) reasons: String,
}

#[derive(Debug, Default)]
struct Window {
    /// A reporter is running (an interval is open).
    open: bool,
    /// Kinds already logged since the last quiet interval.
    logged: HashSet<(&'static str, Option<String>)>,
    /// Refusals of this interval (logged or counted).
    seen: u64,
    /// Refusals counted in this interval, by reason.
    counted: BTreeMap<&'static str, u64>,
    clients: BTreeSet<IpAddr>,
}

/// The refusal log of one admin server.
#[derive(Debug)]
pub(crate) struct Refusals {
    interval: Duration,
    window: Mutex<Window>,
}

/// What [`Refusals::note`] decided.
#[derive(Debug, PartialEq, Eq)]
struct Noted {
    /// Log this refusal now.
    log_now: bool,
    /// Start the interval's reporter.
    start_reporter: bool,
}

impl Refusals {
    pub(crate) fn new(interval: Duration) -> Refusals {
        Refusals {
            interval,
            window: Mutex::new(Window::default()),
        }
    }

    fn note(&self, r: &Refusal<'_>) -> Noted {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        w.seen += 1;
        let kind = (r.reason, r.token_name.map(str::to_string));
        let log_now = !w.logged.contains(&kind) && w.logged.len() < MAX_KINDS;
        if log_now {
            w.logged.insert(kind);
        } else {
            *w.counted.entry(r.reason).or_default() += 1;
            if let Some(ip) = r.client
                && w.clients.len() < MAX_CLIENTS
            {
                w.clients.insert(ip);
            }
        }
        let start_reporter = !w.open;
        w.open = true;
        Noted {
            log_now,
            start_reporter,
        }
    }

    /// Ends an interval: its summary when refusals were counted; `Err(())` when nothing
    /// at all was refused in it (the interval closes, and the next refusal is logged at
    /// once again).
    fn end_interval(&self) -> Result<Option<Summary>, ()> {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if w.seen == 0 {
            *w = Window::default();
            return Err(());
        }
        w.seen = 0;
        let counted = std::mem::take(&mut w.counted);
        let clients = std::mem::take(&mut w.clients);
        let count: u64 = counted.values().sum();
        if count == 0 {
            return Ok(None);
        }
        let mut reasons = String::new();
        for (reason, n) in &counted {
            let sep = if reasons.is_empty() { "" } else { ", " };
            let _ = write!(reasons, "{sep}{reason}: {n}");
        }
        let client_list = clients
            .iter()
            .take(CLIENTS_NAMED)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Some(Summary {
            count,
            clients: clients.len(),
            client_list,
            reasons,
        }))
    }

    /// Records a refusal: logs it now when it is the first of its kind, else counts it
    /// for the interval's report.
    pub(crate) fn record(self: &Arc<Self>, r: Refusal<'_>) {
        let noted = self.note(&r);
        if noted.log_now {
            tracing::warn!(
                reason = r.reason,
                token_name = r.token_name.map(tracing::field::display),
                path = r.path,
                client = r.client.map(tracing::field::display),
                "refused an API token (more refusals like it are counted and reported \
                 once a minute)"
            );
        }
        if noted.start_reporter
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let me = Arc::clone(self);
            rt.spawn(async move { me.report().await });
        }
    }

    /// Reports each interval's counted refusals until an interval passes without any.
    async fn report(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.interval).await;
            match self.end_interval() {
                Err(()) => return,
                Ok(None) => {}
                Ok(Some(s)) => tracing::warn!(
                    count = s.count,
                    clients = s.clients,
                    client_list = %s.client_list,
                    reasons = %s.reasons,
                    interval_seconds = self.interval.as_secs(),
                    "refused API tokens in the last interval, besides those logged one by one"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(reason: &'static str, name: Option<&'static str>, ip: u8) -> Refusal<'static> {
        Refusal {
            reason,
            token_name: name,
            path: "/api/v1/worklist",
            client: Some(IpAddr::from([10, 0, 0, ip])),
        }
    }

    #[test]
    fn the_first_of_each_kind_is_logged_and_the_rest_counted_per_interval() {
        let r = Refusals::new(INTERVAL);
        let first = r.note(&refusal("malformed token", None, 1));
        assert_eq!(
            first,
            Noted {
                log_now: true,
                start_reporter: true
            }
        );
        for i in 0..299u16 {
            let n = r.note(&refusal("malformed token", None, (i % 7) as u8));
            assert!(!n.log_now && !n.start_reporter);
        }
        // Another kind: the wrong secret of a named token is logged once too.
        assert!(r.note(&refusal("wrong secret", Some("alice"), 9)).log_now);
        assert!(!r.note(&refusal("wrong secret", Some("alice"), 9)).log_now);
        assert!(r.note(&refusal("wrong secret", Some("bob"), 9)).log_now);
        let s = r.end_interval().expect("refusals").expect("a summary");
        assert_eq!(s.count, 300);
        assert_eq!(s.clients, 8);
        assert_eq!(s.reasons, "malformed token: 299, wrong secret: 1");
        assert_eq!(s.client_list.split(", ").count(), CLIENTS_NAMED);
        // An ongoing attack: still counted, not logged again; one summary per interval.
        assert!(!r.note(&refusal("malformed token", None, 1)).log_now);
        assert_eq!(
            r.end_interval().expect("refusals").map(|s| s.count),
            Some(1)
        );
        // Refusals all logged one by one make no summary.
        assert!(
            r.note(&refusal("unknown or revoked token", None, 1))
                .log_now
        );
        assert_eq!(r.end_interval(), Ok(None));
        // A quiet interval closes the window; the next refusal is logged at once.
        assert_eq!(r.end_interval(), Err(()));
        assert_eq!(
            r.note(&refusal("malformed token", None, 1)),
            Noted {
                log_now: true,
                start_reporter: true
            }
        );
    }

    #[test]
    fn kinds_and_clients_are_bounded() {
        let r = Refusals::new(INTERVAL);
        let names: Vec<&'static str> = (0..MAX_KINDS + 10)
            .map(|i| &*Box::leak(format!("t{i}").into_boxed_str()))
            .collect();
        let logged = names
            .iter()
            .filter(|n| r.note(&refusal("wrong secret", Some(n), 1)).log_now)
            .count();
        assert_eq!(logged, MAX_KINDS);
        for i in 0..(MAX_CLIENTS as u32 + 100) {
            r.note(&Refusal {
                client: Some(IpAddr::from(i.to_be_bytes())),
                ..refusal("malformed token", None, 0)
            });
        }
        let s = r.end_interval().expect("refusals").expect("summary");
        assert_eq!(s.clients, MAX_CLIENTS);
    }
}
