//! The bulk cycle (`fetch_mode = "bulk"`, and `"auto"` first): one list query with the
//! `paths` the mapping needs, resource prefixes and statuses filtered on the server, and
//! one `MRIScan` query for the window's operators, joined by booking id.
//!
//! A server that refuses `STARTS_WITH` (HTTP 400) is asked again without it, the prefixes
//! are then filtered on our side (they always are too), and later cycles no longer send
//! it. A list answered without the asked paths is handed back to the caller: in `auto`
//! mode the cycle goes on with per-booking details, in `bulk` mode it fails.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::Value;
use worklist_store::source::FetchFailure;
use worklist_store::{SourceError, SyncWindow, WorklistEntry};

use super::{CalpendoSource, Outcome, Skip, Tally};
use crate::booking::{Booking, parse_list};
use crate::config::FetchMode;
use crate::error::{Failure, Request};
use crate::mapping::map_booking;
use crate::paths::{answered_with_paths, item_as_details, list_paths, operators_by_id};
use crate::query;

/// What the bulk list gave.
pub(super) enum BulkList {
    /// The cycle's entries.
    Done(Vec<WorklistEntry>),
    /// The list, answered without the asked paths: the details path takes it from here.
    WithoutPaths(Value),
}

impl CalpendoSource {
    /// The bulk list request; a 400 while sending `STARTS_WITH` is tried once more
    /// without it.
    async fn bulk_list(&self, window: &SyncWindow, paths: &[String]) -> Result<Value, Failure> {
        let prefixes = !self.starts_with_refused.load(Ordering::Relaxed);
        let url = query::bulk_list_url(&self.config, window, paths, prefixes)
            .map_err(|e| Failure::Config(url_config_failure(e)))?;
        match self
            .get_json(url, Request::List)
            .await
            .map(|(list, _)| list)
        {
            Err(Failure::Config(worklist_store::source::ConfigFailure::Refused {
                status: 400,
                ..
            })) if prefixes && !self.config.resources.is_empty() => {
                let url = query::bulk_list_url(&self.config, window, paths, false)
                    .map_err(|e| Failure::Config(url_config_failure(e)))?;
                let (list, _) = self.get_json(url, Request::List).await?;
                self.starts_with_refused.store(true, Ordering::Relaxed);
                tracing::warn!(
                    source = %self.name,
                    "Calpendo refused the resource prefixes as STARTS_WITH (HTTP 400); \
                     they are filtered on our side from now on"
                );
                Ok(list)
            }
            other => other,
        }
    }

    /// One bulk cycle: the list with paths, then the window's MRI operators when a
    /// selected booking is an MRI scan.
    pub(super) async fn bulk_cycle(
        &self,
        window: &SyncWindow,
        started: Instant,
    ) -> Result<BulkList, SourceError> {
        let paths = list_paths(&self.config);
        let list = self
            .bulk_list(window, &paths)
            .await
            .map_err(|f| f.into_source_error(Request::List))?;
        let raw_items = list
            .get("biskits")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if !answered_with_paths(raw_items, &paths) {
            if self.config.fetch_mode == FetchMode::Bulk {
                return Err(SourceError::Fetch(FetchFailure::InvalidResponse {
                    message: "Calpendo answered the booking list without the asked paths \
                              (fetch_mode = \"bulk\"): set fetch_mode to \"auto\" or \
                              \"details\" for this server"
                        .into(),
                    source: None,
                }));
            }
            if !self.paths_fallback_warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    source = %self.name,
                    "Calpendo answered the booking list without the asked paths (an older \
                     server?): reading each booking's details instead (said once; set \
                     fetch_mode = \"details\" to skip the try)"
                );
            }
            return Ok(BulkList::WithoutPaths(list));
        }
        let (items, without_id) = parse_list(&list).map_err(|e| {
            SourceError::Fetch(FetchFailure::InvalidResponse {
                message: e.to_string(),
                source: Some(Box::new(e)),
            })
        })?;
        let listed = items.len();
        let mut seen = std::collections::HashSet::new();
        let mut tally = Tally::default();
        let mut selected: Vec<(String, Booking)> = Vec::with_capacity(items.len());
        let mut resources_seen: BTreeSet<String> = BTreeSet::new();
        for item in items {
            if !seen.insert(item.id.clone()) {
                continue;
            }
            let Some(mut booking) = Booking::from_json(item_as_details(&item.item), &item.id)
            else {
                tally.unreadable += 1;
                continue;
            };
            if booking.status.is_none() {
                booking.status = item.status.clone();
            }
            if booking.biskit_type.is_none() {
                booking.biskit_type = item.biskit_type.clone();
            }
            resources_seen.extend(booking.resource.clone());
            match self.not_selected(&item.id, &booking) {
                Some(skip) => tally.add(Outcome::Skipped(skip), &mut Vec::new()),
                None => selected.push((item.id, booking)),
            }
        }
        let operators = if selected.iter().any(|(_, b)| b.is_mri_scan()) {
            self.window_operators(window).await
        } else {
            HashMap::new()
        };
        let mut entries = Vec::with_capacity(selected.len());
        for (id, mut booking) in selected {
            if booking.is_mri_scan() {
                booking.set_operator(operators.get(&id).cloned().flatten());
            }
            let outcome = match map_booking(&self.name, &self.config, &booking) {
                Ok(e) => Outcome::Kept(Box::new(e)),
                Err(reason) => {
                    tracing::warn!(
                        source = %self.name,
                        booking_id = %id,
                        field = reason.field(),
                        "booking has no value for a required field; booking skipped"
                    );
                    Outcome::Skipped(Skip::Mapping(reason))
                }
            };
            tally.add(outcome, &mut entries);
        }
        // The details path's cache is of no use to this cycle's bookings.
        self.cache.lock().clear();
        entries.sort_by(|a, b| (a.start, &a.source_record_id).cmp(&(b.start, &b.source_record_id)));
        tracing::info!(
            source = %self.name,
            window = %window,
            fetch_mode = "bulk",
            listed,
            kept = tally.kept,
            skipped_resource = tally.resource,
            skipped_status = tally.status,
            skipped_study = tally.study,
            skipped_unreadable = tally.unreadable + without_id,
            skipped_no_subject_id = tally.no_subject,
            skipped_no_start = tally.no_start,
            operators = operators.len(),
            duration_ms = started.elapsed().as_millis() as u64,
            "Calpendo fetch done"
        );
        if self.about_to_warn_unmatched(&resources_seen)
            && !self.starts_with_refused.load(Ordering::Relaxed)
        {
            // The server filtered the prefixes: the resources it left out are what shows
            // a typo, so they are asked for (names only) before the prefix is named.
            resources_seen.extend(self.window_resources(window).await);
        }
        self.warn_unmatched_prefixes(&resources_seen, listed);
        Ok(BulkList::Done(entries))
    }

    /// Whether a `resources` prefix matches none of `seen` and has not been named yet.
    fn about_to_warn_unmatched(&self, seen: &BTreeSet<String>) -> bool {
        let Ok(warned) = self.unmatched_warned.lock() else {
            return false;
        };
        self.config
            .resources
            .iter()
            .any(|p| !warned.contains(p) && !seen.iter().any(|r| r.starts_with(p.as_str())))
    }

    /// The resource names of the window's bookings, whatever their prefix (empty when
    /// the request fails: the warning then names only the resources listed).
    async fn window_resources(&self, window: &SyncWindow) -> BTreeSet<String> {
        let paths = ["resource.name".to_string()];
        let Ok(url) = query::bulk_list_url(&self.config, window, &paths, false) else {
            return BTreeSet::new();
        };
        let Ok((list, _)) = self.get_json(url, Request::List).await else {
            return BTreeSet::new();
        };
        list.get("biskits")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|item| {
                item.get("resource.name")
                    .and_then(crate::booking::value_text)
            })
            .collect()
    }

    /// The window's MRI operators by booking id (`None`: absent or hidden); empty, with a
    /// WARN, when the query fails: the bookings are kept without an operator.
    async fn window_operators(&self, window: &SyncWindow) -> HashMap<String, Option<String>> {
        let url = match query::window_operators_url(&self.config, window) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(source = %self.name, error = %e, "MRI operator query skipped");
                return HashMap::new();
            }
        };
        match self.get_json(url, Request::Operator).await {
            Ok((v, _)) => operators_by_id(&v).into_iter().collect(),
            Err(f) => {
                tracing::warn!(
                    source = %self.name,
                    error = %f.message(),
                    "MRI operator query of the window failed; the bookings are kept without \
                     an operator"
                );
                HashMap::new()
            }
        }
    }
}

/// A URL the base URL cannot give, as a configuration failure.
fn url_config_failure(e: query::UrlError) -> worklist_store::source::ConfigFailure {
    worklist_store::source::ConfigFailure::Setup {
        message: e.to_string(),
        source: Some(Box::new(e)),
    }
}
