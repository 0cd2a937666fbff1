//! Prometheus metrics of the DICOM server: associations, C-ECHO, MWL C-FIND and MPPS.
//!
//! [`ScpMetrics`] is one `Arc` to clone. Every labelled series is created up front (at
//! zero), so recording is an atomic add on a counter kept at hand, with no lookup and no
//! allocation; a histogram observation takes one short, uncontended lock.
//!
//! Labels hold only fixed words (reasons, statuses, operations): never AE titles, peers
//! or anything from a query.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// One label: a fixed name and a fixed value.
type Label = [(&'static str, &'static str); 1];
/// Two labels.
type Labels2 = [(&'static str, &'static str); 2];
/// A histogram family (histograms have no `Default`: they are built with our buckets).
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Upper bounds of the duration histograms, in seconds: 100 µs to 10 s.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// Why an association request was refused (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Every association slot was taken (A-ASSOCIATE-RJ transient, or the TLS connection
    /// closed).
    Busy,
    /// The called AE title is not ours.
    CalledAe,
    /// The calling AE title is not in `allowed_calling_aets`.
    CallingAe,
    /// No proposed presentation context could be accepted.
    NoPresentationContext,
    /// The TLS handshake failed (or plain DICOM reached the TLS port).
    Tls,
    /// The association request did not complete in time.
    Timeout,
    /// Anything else: a malformed request, another protocol version or application
    /// context, a connection lost during the request.
    Protocol,
}

impl RejectReason {
    /// Every reason, in the order of `RejectReason::index`.
    pub const ALL: [RejectReason; 7] = [
        RejectReason::Busy,
        RejectReason::CalledAe,
        RejectReason::CallingAe,
        RejectReason::NoPresentationContext,
        RejectReason::Tls,
        RejectReason::Timeout,
        RejectReason::Protocol,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Busy => "busy",
            RejectReason::CalledAe => "called_ae",
            RejectReason::CallingAe => "calling_ae",
            RejectReason::NoPresentationContext => "no_presentation_context",
            RejectReason::Tls => "tls",
            RejectReason::Timeout => "timeout",
            RejectReason::Protocol => "protocol",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How a C-FIND ended (the `status` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindStatus {
    /// Every match sent, final status 0000.
    Success,
    /// Stopped by the peer's C-CANCEL (FE00).
    Cancelled,
    /// Stopped after `max_responses` items (FE00).
    Truncated,
    /// Answered with a failure status: identifier refused (A900), SOP class not
    /// supported, or the database unavailable (C000).
    Failed,
    /// The association failed during the query (connection lost, protocol error): no
    /// final status was sent.
    Aborted,
}

impl FindStatus {
    /// Every status, in the order of `FindStatus::index`.
    pub const ALL: [FindStatus; 5] = [
        FindStatus::Success,
        FindStatus::Cancelled,
        FindStatus::Truncated,
        FindStatus::Failed,
        FindStatus::Aborted,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FindStatus::Success => "success",
            FindStatus::Cancelled => "cancelled",
            FindStatus::Truncated => "truncated",
            FindStatus::Failed => "failed",
            FindStatus::Aborted => "aborted",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// An MPPS operation (the `operation` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MppsOperation {
    /// N-CREATE: a procedure step started.
    NCreate,
    /// N-SET: a procedure step updated, completed or discontinued.
    NSet,
}

impl MppsOperation {
    /// Both operations, in the order of `MppsOperation::index`.
    pub const ALL: [MppsOperation; 2] = [MppsOperation::NCreate, MppsOperation::NSet];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            MppsOperation::NCreate => "n_create",
            MppsOperation::NSet => "n_set",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The DICOM server's metrics. Clones share the same series.
///
/// `ScpMetrics::default()` counts without being exported anywhere until
/// [`ScpMetrics::register`] adds it to a registry.
#[derive(Clone, Debug, Default)]
pub struct ScpMetrics(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    associations_open: Gauge,
    associations_accepted: Counter,
    rejected: Family<Label, Counter>,
    echoes: Counter,
    finds: Family<Label, Counter>,
    find_duration: Histogram,
    find_items: Counter,
    mpps: Family<Labels2, Counter>,
    mpps_duration: HistogramFamily<Label>,
    /// The children of the families above, by index of their enum.
    rejected_by: Vec<Counter>,
    finds_by: Vec<Counter>,
    /// `[operation][0 = success, 1 = error]`.
    mpps_by: Vec<[Counter; 2]>,
    mpps_duration_by: Vec<Histogram>,
}

impl Default for Inner {
    fn default() -> Self {
        let rejected = Family::<Label, Counter>::default();
        let finds = Family::<Label, Counter>::default();
        let mpps = Family::<Labels2, Counter>::default();
        let mpps_duration: HistogramFamily<Label> =
            Family::new_with_constructor(duration_histogram);
        let rejected_by = RejectReason::ALL
            .iter()
            .map(|r| rejected.get_or_create_owned(&[("reason", r.as_str())]))
            .collect();
        let finds_by = FindStatus::ALL
            .iter()
            .map(|s| finds.get_or_create_owned(&[("status", s.as_str())]))
            .collect();
        let mpps_by = MppsOperation::ALL
            .iter()
            .map(|op| {
                let child = |outcome| {
                    mpps.get_or_create_owned(&[("operation", op.as_str()), ("outcome", outcome)])
                };
                [child("success"), child("error")]
            })
            .collect();
        let mpps_duration_by = MppsOperation::ALL
            .iter()
            .map(|op| mpps_duration.get_or_create_owned(&[("operation", op.as_str())]))
            .collect();
        Inner {
            associations_open: Gauge::default(),
            associations_accepted: Counter::default(),
            rejected,
            echoes: Counter::default(),
            finds,
            find_duration: duration_histogram(),
            find_items: Counter::default(),
            mpps,
            mpps_duration,
            rejected_by,
            finds_by,
            mpps_by,
            mpps_duration_by,
        }
    }
}

/// Marks one association as open; it counts as closed when this is dropped (also when
/// its task is aborted at shutdown).
#[derive(Debug)]
#[must_use = "the association counts as open only while this guard lives"]
pub struct OpenAssociation(Gauge);

impl Drop for OpenAssociation {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl ScpMetrics {
    /// Fresh metrics, all at zero.
    pub fn new() -> ScpMetrics {
        ScpMetrics::default()
    }

    /// Adds every metric to `registry` under its full `mwlbridge_...` name (give it the
    /// root registry, not one with a prefix).
    pub fn register(&self, registry: &mut Registry) {
        let m = &self.0;
        registry.register(
            "mwlbridge_associations_open",
            "DICOM associations open now",
            m.associations_open.clone(),
        );
        registry.register(
            "mwlbridge_associations_accepted",
            "DICOM associations accepted",
            m.associations_accepted.clone(),
        );
        registry.register(
            "mwlbridge_associations_rejected",
            "DICOM association requests refused, by reason",
            m.rejected.clone(),
        );
        registry.register(
            "mwlbridge_echo_requests",
            "C-ECHO requests answered",
            m.echoes.clone(),
        );
        registry.register(
            "mwlbridge_find_requests",
            "MWL C-FIND requests, by how they ended",
            m.finds.clone(),
        );
        registry.register_with_unit(
            "mwlbridge_find_duration",
            "Time from a C-FIND request to its final response",
            Unit::Seconds,
            m.find_duration.clone(),
        );
        registry.register(
            "mwlbridge_find_items_returned",
            "Worklist items sent in C-FIND pending responses",
            m.find_items.clone(),
        );
        registry.register(
            "mwlbridge_mpps_requests",
            "MPPS requests, by operation and outcome",
            m.mpps.clone(),
        );
        registry.register_with_unit(
            "mwlbridge_mpps_duration",
            "Time to answer an MPPS request, by operation",
            Unit::Seconds,
            m.mpps_duration.clone(),
        );
    }

    /// An association was accepted: counts it, and as open until the guard is dropped.
    pub fn association_opened(&self) -> OpenAssociation {
        self.0.associations_accepted.inc();
        self.0.associations_open.inc();
        OpenAssociation(self.0.associations_open.clone())
    }

    /// An association request was refused.
    pub fn association_rejected(&self, reason: RejectReason) {
        if let Some(c) = self.0.rejected_by.get(reason.index()) {
            c.inc();
        }
    }

    /// A C-ECHO was answered.
    pub fn echo(&self) {
        self.0.echoes.inc();
    }

    /// A C-FIND ended with `status` after sending `items` matches in `elapsed`.
    pub fn find_done(&self, status: FindStatus, items: u64, elapsed: Duration) {
        if let Some(c) = self.0.finds_by.get(status.index()) {
            c.inc();
        }
        if items > 0 {
            self.0.find_items.inc_by(items);
        }
        self.0.find_duration.observe(elapsed.as_secs_f64());
    }

    /// An MPPS request was answered, with success or an error status, in `elapsed`.
    pub fn mpps_done(&self, operation: MppsOperation, success: bool, elapsed: Duration) {
        let i = operation.index();
        if let Some(pair) = self.0.mpps_by.get(i) {
            pair[usize::from(!success)].inc();
        }
        if let Some(h) = self.0.mpps_duration_by.get(i) {
            h.observe(elapsed.as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    fn text(m: &ScpMetrics) -> String {
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut out = String::new();
        encode(&mut out, &registry).expect("encode");
        out
    }

    /// The value of the sample line `series` (name and labels exactly as encoded).
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.split(' ').next()?.parse().ok())
    }

    #[test]
    fn every_series_exists_at_zero_before_anything_happens() {
        let t = text(&ScpMetrics::new());
        for series in [
            "mwlbridge_associations_open",
            "mwlbridge_associations_accepted_total",
            "mwlbridge_associations_rejected_total{reason=\"busy\"}",
            "mwlbridge_associations_rejected_total{reason=\"calling_ae\"}",
            "mwlbridge_associations_rejected_total{reason=\"tls\"}",
            "mwlbridge_echo_requests_total",
            "mwlbridge_find_requests_total{status=\"success\"}",
            "mwlbridge_find_requests_total{status=\"truncated\"}",
            "mwlbridge_find_duration_seconds_count",
            "mwlbridge_find_items_returned_total",
            "mwlbridge_mpps_requests_total{operation=\"n_create\",outcome=\"success\"}",
            "mwlbridge_mpps_requests_total{operation=\"n_set\",outcome=\"error\"}",
            "mwlbridge_mpps_duration_seconds_count{operation=\"n_set\"}",
        ] {
            assert_eq!(value(&t, series), Some(0.0), "{series} in\n{t}");
        }
        assert!(
            t.contains("# TYPE mwlbridge_find_duration_seconds histogram"),
            "{t}"
        );
        assert!(
            t.contains("# UNIT mwlbridge_find_duration_seconds seconds"),
            "{t}"
        );
    }

    #[test]
    fn recording_moves_the_encoded_values() {
        let m = ScpMetrics::new();
        let clone = m.clone();
        let guard = clone.association_opened();
        let second = m.association_opened();
        drop(second);
        m.association_rejected(RejectReason::CalledAe);
        m.association_rejected(RejectReason::CalledAe);
        m.association_rejected(RejectReason::Busy);
        m.echo();
        m.find_done(FindStatus::Success, 3, Duration::from_micros(300));
        m.find_done(FindStatus::Truncated, 10, Duration::from_millis(20));
        m.find_done(FindStatus::Failed, 0, Duration::from_micros(50));
        m.mpps_done(MppsOperation::NCreate, true, Duration::from_millis(2));
        m.mpps_done(MppsOperation::NSet, false, Duration::from_millis(1));
        let t = text(&m);
        let expect = [
            ("mwlbridge_associations_open", 1.0),
            ("mwlbridge_associations_accepted_total", 2.0),
            (
                "mwlbridge_associations_rejected_total{reason=\"called_ae\"}",
                2.0,
            ),
            (
                "mwlbridge_associations_rejected_total{reason=\"busy\"}",
                1.0,
            ),
            (
                "mwlbridge_associations_rejected_total{reason=\"calling_ae\"}",
                0.0,
            ),
            ("mwlbridge_echo_requests_total", 1.0),
            ("mwlbridge_find_requests_total{status=\"success\"}", 1.0),
            ("mwlbridge_find_requests_total{status=\"truncated\"}", 1.0),
            ("mwlbridge_find_requests_total{status=\"failed\"}", 1.0),
            ("mwlbridge_find_requests_total{status=\"cancelled\"}", 0.0),
            ("mwlbridge_find_items_returned_total", 13.0),
            ("mwlbridge_find_duration_seconds_count", 3.0),
            // 50 µs and 300 µs are at most 0.5 ms; 20 ms is not.
            ("mwlbridge_find_duration_seconds_bucket{le=\"0.0005\"}", 2.0),
            ("mwlbridge_find_duration_seconds_bucket{le=\"0.025\"}", 3.0),
            (
                "mwlbridge_mpps_requests_total{operation=\"n_create\",outcome=\"success\"}",
                1.0,
            ),
            (
                "mwlbridge_mpps_requests_total{operation=\"n_set\",outcome=\"error\"}",
                1.0,
            ),
            (
                "mwlbridge_mpps_requests_total{operation=\"n_set\",outcome=\"success\"}",
                0.0,
            ),
            (
                "mwlbridge_mpps_duration_seconds_count{operation=\"n_create\"}",
                1.0,
            ),
        ];
        for (series, v) in expect {
            assert_eq!(value(&t, series), Some(v), "{series} in\n{t}");
        }
        drop(guard);
        assert_eq!(
            value(&text(&m), "mwlbridge_associations_open"),
            Some(0.0),
            "the gauge falls when the guard is dropped"
        );
    }

    #[test]
    fn prometheus_text_format_has_the_same_names() {
        let m = ScpMetrics::new();
        m.echo();
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).expect("encode");
        assert_eq!(
            value(&out, "mwlbridge_echo_requests_total"),
            Some(1.0),
            "{out}"
        );
        assert!(
            out.contains("# TYPE mwlbridge_associations_rejected_total counter"),
            "{out}"
        );
    }
}
