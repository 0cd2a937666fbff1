//! The sources on the page: each source's last success, last attempt and its error in one
//! line a person can read, and a banner when a source has gone without a success for
//! `unready_after_intervals` of its intervals (judged by [`crate::readiness`], the rule
//! `/readyz` answers with, so the page and the monitor never disagree).

use jiff::tz::TimeZone;
use maud::{Markup, html};
use worklist_store::{SyncOutcome, SyncRun};

use super::words;
use crate::readiness::SourceState;

/// What a successful run did, in words: `5 fetched: 2 new, 1 updated, 0 discontinued`.
fn did(r: &SyncRun) -> String {
    let c = &r.counts;
    format!(
        "{} fetched: {} new, {} updated, {} discontinued",
        c.fetched, c.inserted, c.updated, c.discontinued
    )
}

/// One source's line: its last success (with what it did), and its last attempt when that
/// failed (with the error), or that it never synced.
fn line(st: &SourceState, zone: &TimeZone) -> Markup {
    let every = words::span(i64::try_from(st.info.interval.as_secs()).unwrap_or(i64::MAX));
    let failed = st
        .last
        .as_ref()
        .filter(|r| r.outcome != SyncOutcome::Success);
    html! {
        strong { (st.info.name) } ": "
        @match &st.success {
            Some(s) => {
                "last success "
                time.last-success datetime=(s.finished_at) { (words::instant(s.finished_at, zone)) }
                " (" (did(s)) ")"
            }
            None => { "no successful sync yet" }
        }
        @match failed {
            Some(f) => {
                "; last attempt "
                time.last-attempt datetime=(f.finished_at) { (words::instant(f.finished_at, zone)) }
                " " span.failed { "failed" }
                @if let Some(e) = &f.error { ": " span.error { (e) } }
            }
            None => {
                // The last attempt is the success.
                @if let Some(s) = &st.last {
                    time.last-attempt hidden datetime=(s.finished_at) {}
                }
            }
        }
        "; syncs every " (every) "."
    }
}

/// The sources list, each with its "Sync now" button for write tokens.
pub(super) fn list(states: &[SourceState], zone: &TimeZone, csrf: Option<&str>) -> Markup {
    html! {
        ul.sources id="sources" {
            @for st in states {
                li.source data-source=(st.info.name) data-ready=(st.ready) {
                    (line(st, zone))
                    @if let Some(csrf) = csrf {
                        " "
                        form.inline method="post" action="/sync" {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="source" value=(st.info.name);
                            button type="submit" { "Sync now" }
                        }
                        @if st.last.as_ref().is_some_and(SyncRun::refused_as_mass_change) {
                            (accept_form(&st.info.name, csrf))
                        }
                    }
                }
            }
        }
    }
}

/// After a cycle the mass-change guard refused: a form that applies the next cycle without
/// the guard, once, behind a box the admin must tick (no JavaScript needed).
fn accept_form(source: &str, csrf: &str) -> Markup {
    html! {
        form.accept-mass-change method="post" action="/sync" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="source" value=(source);
            label {
                input type="checkbox" name="accept_mass_change" value="yes" required;
                " I checked " (source) ": these cancellations are real. Apply them once, even \
                 though the sync would discontinue or delete most of its entries."
            }
            " "
            button type="submit" { "Apply the mass change" }
        }
    }
}

/// One banner per source that is not ready: the worklist consoles see may be stale.
pub(super) fn stale_banners(states: &[SourceState], zone: &TimeZone) -> Markup {
    html! {
        @for st in states.iter().filter(|s| !s.ready) {
            p.stale role="alert" data-source=(st.info.name) {
                "This worklist may be stale: " (st.info.name) " has not synced successfully "
                @match &st.success {
                    Some(s) => { "since " (words::instant(s.finished_at, zone)) }
                    None => { "since mwlbridge started" }
                }
                " (" (words::span(st.seconds_since_success)) " ago; it syncs every "
                (words::span(i64::try_from(st.info.interval.as_secs()).unwrap_or(i64::MAX)))
                "). Consoles still get the entries as they were then."
            }
        }
    }
}
