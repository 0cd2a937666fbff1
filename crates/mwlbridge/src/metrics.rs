//! The process's Prometheus metrics, for the admin interface's `GET /metrics`: the DICOM
//! server's ([`ScpMetrics`]), the sync worker's ([`SyncMetrics`]), the sources' requests
//! ([`SourceMetrics`]), the stored worklist by status and the build.
//!
//! [`build`] registers everything in one registry; encode it with
//! `prometheus_client::encoding::text::encode` (OpenMetrics) or
//! `prometheus_client::encoding::prometheus_text::encode` (Prometheus 0.0.4). Labels hold
//! source names and fixed words only: never subject data, AE titles or peers.

use std::sync::Arc;
use std::time::Duration;

use mwl_scp::ScpMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use worklist_store::{DataSource, SourceMetrics, SyncOutcome, SyncRun};

/// Upper bounds of the sync duration histogram, in seconds: 50 ms to 5 min.
pub const SYNC_DURATION_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Labels of a per-source series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// The source's configured name.
    pub source: String,
}

/// Labels of the sync runs counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    /// The source's configured name.
    pub source: String,
    /// `success` or `failed`.
    pub outcome: &'static str,
}

/// Labels of the synced entries counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChangeLabels {
    /// The source's configured name.
    pub source: String,
    /// What a sync did to the entries: one of [`CHANGES`].
    pub change: &'static str,
}

/// The `change` label values of `mwlbridge_sync_entries_total`.
pub const CHANGES: [&str; 5] = ["inserted", "updated", "discontinued", "deleted", "rejected"];

/// Labels of the worklist entries gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EntryStatusLabels {
    /// The step status (`SCHEDULED`, `IN PROGRESS`, ...).
    pub status: String,
}

fn sync_histogram() -> Histogram {
    Histogram::new(SYNC_DURATION_BUCKETS)
}

/// The sync worker's metrics, by source. Clones share the same series;
/// `SyncMetrics::default()` counts without being exported.
#[derive(Clone, Debug)]
pub struct SyncMetrics(Arc<SyncInner>);

#[derive(Debug)]
struct SyncInner {
    runs: Family<RunLabels, Counter>,
    duration: Family<SourceLabels, Histogram, fn() -> Histogram>,
    entries: Family<ChangeLabels, Counter>,
    last_success: Family<SourceLabels, Gauge>,
}

impl Default for SyncMetrics {
    fn default() -> Self {
        SyncMetrics(Arc::new(SyncInner {
            runs: Family::default(),
            duration: Family::new_with_constructor(sync_histogram),
            entries: Family::default(),
            last_success: Family::default(),
        }))
    }
}

impl SyncMetrics {
    /// Adds the sync metrics to `registry` under their full names (the root registry).
    pub fn register(&self, registry: &mut Registry) {
        let m = &self.0;
        registry.register(
            "mwlbridge_sync_runs",
            "Sync cycles run, by source and outcome",
            m.runs.clone(),
        );
        registry.register_with_unit(
            "mwlbridge_sync_duration",
            "Time a sync cycle took (fetch and reconcile), by source",
            Unit::Seconds,
            m.duration.clone(),
        );
        registry.register(
            "mwlbridge_sync_entries",
            "Worklist entries changed by successful syncs, by source and change",
            m.entries.clone(),
        );
        registry.register_with_unit(
            "mwlbridge_sync_last_success_timestamp",
            "When the last successful sync of a source finished, as Unix time (0: never)",
            Unit::Seconds,
            m.last_success.clone(),
        );
    }

    /// Creates every series of source `name` at zero, so that a source that never
    /// synced shows as such.
    pub fn add_source(&self, name: &str) {
        let m = &self.0;
        for outcome in ["success", "failed"] {
            m.runs.get_or_create_owned(&RunLabels {
                source: name.to_string(),
                outcome,
            });
        }
        let source = SourceLabels {
            source: name.to_string(),
        };
        m.duration.get_or_create_owned(&source);
        m.last_success.get_or_create_owned(&source);
        for change in CHANGES {
            m.entries.get_or_create_owned(&ChangeLabels {
                source: name.to_string(),
                change,
            });
        }
    }

    /// Records one finished cycle that took `elapsed`.
    pub fn record(&self, run: &SyncRun, elapsed: Duration) {
        let m = &self.0;
        let success = run.outcome == SyncOutcome::Success;
        m.runs
            .get_or_create(&RunLabels {
                source: run.source.clone(),
                outcome: if success { "success" } else { "failed" },
            })
            .inc();
        let source = SourceLabels {
            source: run.source.clone(),
        };
        m.duration
            .get_or_create(&source)
            .observe(elapsed.as_secs_f64());
        if !success {
            return;
        }
        m.last_success
            .get_or_create(&source)
            .set(run.finished_at.as_second());
        let c = &run.counts;
        for (change, n) in
            CHANGES
                .into_iter()
                .zip([c.inserted, c.updated, c.discontinued, c.deleted, c.rejected])
        {
            let counter = m.entries.get_or_create(&ChangeLabels {
                source: run.source.clone(),
                change,
            });
            counter.inc_by(n);
        }
    }
}

/// Every metric of the process, registered in [`Metrics::registry`].
#[derive(Clone, Debug)]
pub struct Metrics {
    /// The registry to encode at `GET /metrics`.
    pub registry: Arc<Registry>,
    /// The DICOM server's metrics (give them to `MwlServer::with_metrics`).
    pub scp: ScpMetrics,
    /// The sync worker's metrics (put them in the `SyncContext`).
    pub sync: SyncMetrics,
    /// The sources' request counters (already attached to every source).
    #[allow(
        dead_code,
        reason = "kept with the others; the sources hold their counters"
    )]
    pub sources: SourceMetrics,
    /// `mwlbridge_worklist_entries{status}`: stored entries by status, to be set when
    /// scraped (the store is the truth; nothing here counts them).
    pub entries: Family<EntryStatusLabels, Gauge>,
}

/// Creates and registers every metric, attaches the request counters to each source and
/// creates its sync series.
pub fn build<'a>(sources: impl IntoIterator<Item = &'a dyn DataSource>) -> Metrics {
    let mut registry = Registry::default();
    let build_info = Family::<[(&'static str, &'static str); 1], Gauge>::default();
    build_info
        .get_or_create(&[("version", env!("CARGO_PKG_VERSION"))])
        .set(1);
    registry.register(
        "mwlbridge_build_info",
        "The running mwlbridge's version (the value is always 1)",
        build_info,
    );
    let entries = Family::<EntryStatusLabels, Gauge>::default();
    registry.register(
        "mwlbridge_worklist_entries",
        "Worklist entries stored, by step status",
        entries.clone(),
    );
    let scp = ScpMetrics::new();
    scp.register(&mut registry);
    let sync = SyncMetrics::default();
    sync.register(&mut registry);
    let source_metrics = SourceMetrics::new();
    source_metrics.register(&mut registry);
    for s in sources {
        s.attach_metrics(&source_metrics);
        sync.add_source(s.name());
    }
    Metrics {
        registry: Arc::new(registry),
        scp,
        sync,
        sources: source_metrics,
        entries,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use jiff::Timestamp;
    use worklist_store::{ReconcileCounts, SourceError, SyncWindow, WorklistEntry};

    /// The OpenMetrics text of `registry`.
    pub(crate) fn text(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).expect("encode");
        out
    }

    /// The value of the sample `series` (name and labels exactly as encoded).
    pub(crate) fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.split(' ').next()?.parse().ok())
    }

    struct Quiet(&'static str);

    #[async_trait::async_trait]
    impl DataSource for Quiet {
        fn name(&self) -> &str {
            self.0
        }
        fn sync_window(&self, _now: Timestamp) -> SyncWindow {
            let d = jiff::civil::date(2026, 11, 26);
            SyncWindow {
                start: d.at(0, 0, 0, 0),
                end: d.at(23, 0, 0, 0),
            }
        }
        async fn fetch_entries(&self, _w: &SyncWindow) -> Result<Vec<WorklistEntry>, SourceError> {
            Ok(Vec::new())
        }
        fn attach_metrics(&self, metrics: &SourceMetrics) {
            metrics.requests(self.0, "list", "2xx");
        }
    }

    #[test]
    fn build_registers_every_family_once_with_series_per_source() {
        let (a, b) = (Quiet("calpendo"), Quiet("second"));
        let m = build([&a as &dyn DataSource, &b]);
        m.entries
            .get_or_create(&EntryStatusLabels {
                status: "SCHEDULED".into(),
            })
            .set(7);
        let t = text(&m.registry);
        for family in [
            "mwlbridge_build_info",
            "mwlbridge_worklist_entries",
            "mwlbridge_associations_open",
            "mwlbridge_find_duration_seconds",
            "mwlbridge_sync_runs",
            "mwlbridge_sync_duration_seconds",
            "mwlbridge_sync_entries",
            "mwlbridge_sync_last_success_timestamp_seconds",
            "mwlbridge_source_requests",
        ] {
            let type_lines = t
                .lines()
                .filter(|l| l.starts_with(&format!("# TYPE {family} ")))
                .count();
            assert_eq!(type_lines, 1, "{family} in\n{t}");
        }
        let version = format!(
            "mwlbridge_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(value(&t, &version), Some(1.0), "{t}");
        assert_eq!(
            value(&t, "mwlbridge_worklist_entries{status=\"SCHEDULED\"}"),
            Some(7.0)
        );
        for source in ["calpendo", "second"] {
            for series in [
                format!("mwlbridge_sync_runs_total{{source=\"{source}\",outcome=\"failed\"}}"),
                format!("mwlbridge_sync_entries_total{{source=\"{source}\",change=\"rejected\"}}"),
                format!("mwlbridge_sync_last_success_timestamp_seconds{{source=\"{source}\"}}"),
                format!("mwlbridge_sync_duration_seconds_count{{source=\"{source}\"}}"),
                format!(
                    "mwlbridge_source_requests_total{{source=\"{source}\",kind=\"list\",outcome=\"2xx\"}}"
                ),
            ] {
                assert_eq!(value(&t, &series), Some(0.0), "{series} in\n{t}");
            }
        }
        // The Prometheus 0.0.4 text format encodes the same registry.
        let mut prom = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut prom, &m.registry)
            .expect("encode");
        assert!(
            prom.contains("# TYPE mwlbridge_sync_runs_total counter"),
            "{prom}"
        );
    }

    #[test]
    fn record_counts_runs_and_changes_only_of_successes() {
        let sync = SyncMetrics::default();
        let mut registry = Registry::default();
        sync.register(&mut registry);
        let finished = Timestamp::from_second(1_800_000_000).expect("timestamp");
        let run = |outcome, inserted| SyncRun {
            source: "calpendo".into(),
            started_at: finished,
            finished_at: finished,
            outcome,
            window: None,
            counts: ReconcileCounts {
                inserted,
                updated: 2,
                ..ReconcileCounts::default()
            },
            error: None,
        };
        sync.record(&run(SyncOutcome::Success, 3), Duration::from_millis(300));
        sync.record(&run(SyncOutcome::Failed, 5), Duration::from_secs(20));
        let t = text(&registry);
        for (series, v) in [
            (
                "mwlbridge_sync_runs_total{source=\"calpendo\",outcome=\"success\"}",
                1.0,
            ),
            (
                "mwlbridge_sync_runs_total{source=\"calpendo\",outcome=\"failed\"}",
                1.0,
            ),
            (
                "mwlbridge_sync_entries_total{source=\"calpendo\",change=\"inserted\"}",
                3.0,
            ),
            (
                "mwlbridge_sync_entries_total{source=\"calpendo\",change=\"updated\"}",
                2.0,
            ),
            (
                "mwlbridge_sync_last_success_timestamp_seconds{source=\"calpendo\"}",
                1_800_000_000.0,
            ),
            (
                "mwlbridge_sync_duration_seconds_count{source=\"calpendo\"}",
                2.0,
            ),
            (
                "mwlbridge_sync_duration_seconds_bucket{le=\"0.5\",source=\"calpendo\"}",
                1.0,
            ),
        ] {
            assert_eq!(value(&t, series), Some(v), "{series} in\n{t}");
        }
    }
}
