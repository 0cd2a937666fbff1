//! Content negotiation of the DICOMweb responses (PS3.18 8.3.3, 8.4, 8.7.8): which
//! [`Representation`] a request gets, from its `accept` and `charset` query parameters and
//! its `Accept` and `Accept-Charset` header fields. Shared by the search and the MPPS
//! retrieve; parsing only decides, [`body`](super::body) writes.
//!
//! Rules, in the order they apply:
//!
//! 1. A media range is `type/subtype` with parameters; `q` (0 to 1, default 1) is its
//!    weight; a range that does not parse, or whose `q` does not, is ignored (8.4.1). A
//!    `charset` parameter other than UTF-8 makes a range match nothing we send.
//! 2. What a range matches: `application/dicom+json` and `application/json` match JSON;
//!    `application/dicom+xml` the bare XML; `multipart/related; type="..."` the multipart
//!    form of its `type`. Wildcards (`*/*`, `application/*`) match only the default,
//!    DICOM JSON (8.7.7: a wildcard stands for the resource category's default).
//! 3. A representation's weight is the `q` of the most specific range that matches it;
//!    `q=0` refuses it. The best is the highest weight, then the more specific match,
//!    then the range listed first.
//! 4. The `accept` query parameter (8.3.3.1: the header's syntax without wildcards, all
//!    DICOM media types or none) is looked at first; its best type that the `Accept`
//!    header also allows (exactly or through any wildcard of its type) is chosen. Else the header's best. No `Accept` header and no
//!    parameter: DICOM JSON. Nothing acceptable: 406 naming what is offered (8.7.8.1).
//! 5. The search answers a list, so it offers only JSON and the multipart forms: a bare
//!    `application/dicom+xml` holds one `NativeDicomModel`, one data set, and PS3.18 keeps
//!    single-part media types to resources of one item (said in 10.4.4 of the Studies
//!    Service; Table 14.1.3-1 lists bare XML for the search without saying how a list
//!    would fit one document). The MPPS retrieve answers one data set and offers all
//!    four.
//! 6. We send UTF-8 only: an `Accept-Charset` header or `charset` query parameter (8.3.3.2)
//!    that lists neither `utf-8` (or `ISO_IR 192`) nor `*` with a weight above 0, or gives
//!    `utf-8` `q=0`, is a 406.

use axum::http::{HeaderMap, HeaderName, StatusCode, header};

use crate::api::ApiError;
use crate::api_types::{ErrorBody, FieldProblem};

/// DICOM JSON (PS3.18 F.2), the default.
pub(crate) const DICOM_JSON: &str = "application/dicom+json";
/// The Native DICOM Model (PS3.19 A.1).
pub(crate) const DICOM_XML: &str = "application/dicom+xml";

/// A form of the response payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Representation {
    /// `application/dicom+json`.
    Json,
    /// `application/dicom+xml`: one data set.
    Xml,
    /// `multipart/related; type="application/dicom+xml"`: one part per data set.
    MultipartXml,
    /// `multipart/related; type="application/dicom+json"`: one part per data set.
    MultipartJson,
}

impl Representation {
    /// The media type as a client writes it in `Accept`.
    pub(crate) fn media_type(self) -> &'static str {
        match self {
            Representation::Json => DICOM_JSON,
            Representation::Xml => DICOM_XML,
            Representation::MultipartXml => "multipart/related; type=\"application/dicom+xml\"",
            Representation::MultipartJson => "multipart/related; type=\"application/dicom+json\"",
        }
    }
}

/// What the response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A list of data sets (the search).
    List,
    /// One data set (the MPPS retrieve).
    One,
}

impl Target {
    /// The representations offered, the server's preference first.
    pub(crate) fn offered(self) -> &'static [Representation] {
        use Representation::*;
        match self {
            Target::List => &[Json, MultipartXml, MultipartJson],
            Target::One => &[Json, Xml, MultipartXml, MultipartJson],
        }
    }
}

/// The negotiation's query parameters, taken out of a request's query.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct QueryParams {
    /// `accept` (case-sensitive name), repeated ones joined by `,`.
    pub(crate) accept: Option<String>,
    /// `charset`, repeated ones joined by `,`.
    pub(crate) charset: Option<String>,
}

/// Takes `accept` and `charset` out of `pairs`; the rest are returned in order.
pub(crate) fn take_query_params(
    pairs: Vec<(String, String)>,
) -> (QueryParams, Vec<(String, String)>) {
    let mut params = QueryParams::default();
    let mut rest = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let slot = match k.as_str() {
            "accept" => &mut params.accept,
            "charset" => &mut params.charset,
            _ => {
                rest.push((k, v));
                continue;
            }
        };
        match slot {
            Some(s) => {
                s.push(',');
                s.push_str(&v);
            }
            None => *slot = Some(v),
        }
    }
    (params, rest)
}

/// Why no representation is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum NegotiationError {
    /// No offered media type is acceptable: 406.
    #[error("none of the acceptable media types is offered{}; offered: {}", note.map(|n| format!(" ({n})")).unwrap_or_default(), offered_list(*target))]
    MediaType {
        /// What was asked for.
        target: Target,
        /// Why a type the client asked for is not offered here.
        note: Option<&'static str>,
    },
    /// The client does not accept UTF-8: 406.
    #[error("the response is UTF-8, which the acceptable character sets ({from}) exclude")]
    Charset {
        /// `Accept-Charset` or the `charset` query parameter.
        from: &'static str,
    },
    /// A malformed `accept` query parameter: 400.
    #[error("{problem}")]
    AcceptParameter {
        /// What is wrong.
        problem: String,
    },
}

fn offered_list(target: Target) -> String {
    target
        .offered()
        .iter()
        .map(|r| r.media_type())
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<NegotiationError> for ApiError {
    fn from(e: NegotiationError) -> ApiError {
        let error = e.to_string();
        match e {
            NegotiationError::AcceptParameter { problem } => ApiError(
                StatusCode::BAD_REQUEST,
                ErrorBody {
                    error: format!("bad query parameter \"accept\": {problem}"),
                    fields: vec![FieldProblem {
                        field: "accept".into(),
                        problem,
                    }],
                },
            ),
            NegotiationError::MediaType { .. } | NegotiationError::Charset { .. } => ApiError(
                StatusCode::NOT_ACCEPTABLE,
                ErrorBody {
                    error,
                    fields: Vec::new(),
                },
            ),
        }
    }
}

/// The note of a 406 when the search was asked for bare XML.
const XML_IS_ONE_DATA_SET: &str = "application/dicom+xml holds one data set and a search \
     answers a list: ask for multipart/related; type=\"application/dicom+xml\"";

/// The representation `target` is sent in: see the [module doc](self).
pub(crate) fn negotiate(
    target: Target,
    headers: &HeaderMap,
    query: &QueryParams,
) -> Result<Representation, NegotiationError> {
    check_charset(&joined(headers, &header::ACCEPT_CHARSET), "Accept-Charset")?;
    if let Some(c) = &query.charset {
        check_charset(&Some(c.clone()), "the charset query parameter")?;
    }
    let header_ranges = joined(headers, &header::ACCEPT).map(|h| parse_ranges(&h));
    // 8.3.3.1: the parameter's types must be compatible with the header, explicitly or
    // through a wildcard (here any wildcard matching the type counts, not only the
    // default's).
    let allowed_by_header = |r: Representation| match &header_ranges {
        None => true,
        Some(ranges) => compatible(ranges, r),
    };
    let mut asked_bare_xml = false;
    if let Some(param) = &query.accept {
        let ranges = parse_ranges(param);
        check_accept_parameter(&ranges)?;
        asked_bare_xml |= weight(&ranges, Representation::Xml).is_some_and(|w| w.0 > 0.0);
        if let Some(r) = best(target, &ranges, allowed_by_header) {
            return Ok(r);
        }
    }
    match &header_ranges {
        None if query.accept.is_none() => return Ok(Representation::Json),
        None => {}
        Some(ranges) => {
            asked_bare_xml |= weight(ranges, Representation::Xml).is_some_and(|w| w.0 > 0.0);
            if let Some(r) = best(target, ranges, |_| true) {
                return Ok(r);
            }
        }
    }
    Err(NegotiationError::MediaType {
        target,
        note: (asked_bare_xml && !target.offered().contains(&Representation::Xml))
            .then_some(XML_IS_ONE_DATA_SET),
    })
}

/// Every value of header `name`, joined by `,`; `None` when absent.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut all: Option<String> = None;
    for v in headers.get_all(name) {
        // A value that is not visible ASCII is not a valid one: ignored (8.4.1).
        let Ok(text) = v.to_str() else { continue };
        match &mut all {
            Some(s) => {
                s.push(',');
                s.push_str(text);
            }
            None => all = Some(text.to_string()),
        }
    }
    if all.is_none() && headers.contains_key(name) {
        return Some(String::new());
    }
    all
}

/// What a media range names.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// `*/*`.
    Any,
    /// `{type}/*`.
    AnySubtype(String),
    /// `type/subtype`, with its `type` parameter (multipart) when present.
    Exact {
        media: String,
        part_type: Option<String>,
    },
}

/// One range of an `Accept` list.
#[derive(Debug, Clone, PartialEq)]
struct Range {
    kind: Kind,
    q: f32,
    /// A `charset` parameter other than UTF-8.
    foreign_charset: bool,
    position: usize,
}

/// The ranges of an `Accept` value; invalid ones left out.
fn parse_ranges(value: &str) -> Vec<Range> {
    split_unquoted(value, ',')
        .iter()
        .enumerate()
        .filter_map(|(position, r)| parse_range(r, position))
        .collect()
}

fn parse_range(text: &str, position: usize) -> Option<Range> {
    let pieces = split_unquoted(text, ';');
    let mut pieces = pieces.iter().map(|p| p.trim());
    let media = pieces.next()?.to_ascii_lowercase();
    let (ty, sub) = media.split_once('/')?;
    if !token(ty) || !token(sub) {
        return None;
    }
    let kind = match (ty, sub) {
        ("*", "*") => Kind::Any,
        ("*", _) => return None,
        (_, "*") => Kind::AnySubtype(ty.to_string()),
        _ => Kind::Exact {
            media: media.clone(),
            part_type: None,
        },
    };
    let mut range = Range {
        kind,
        q: 1.0,
        foreign_charset: false,
        position,
    };
    for p in pieces {
        if p.is_empty() {
            continue;
        }
        let (name, value) = p.split_once('=')?;
        let name = name.trim().to_ascii_lowercase();
        let value = unquote(value.trim()).to_ascii_lowercase();
        match name.as_str() {
            "q" => range.q = quality(&value)?,
            "type" => {
                if let Kind::Exact { part_type, .. } = &mut range.kind {
                    *part_type = Some(value);
                }
            }
            "charset" => range.foreign_charset = !utf8(&value),
            _ => {}
        }
    }
    Some(range)
}

/// An RFC 9110 `qvalue`: 0 to 1, at most three decimals.
fn quality(v: &str) -> Option<f32> {
    let ok = match v.split_once('.') {
        None => matches!(v, "0" | "1"),
        Some((int, frac)) => {
            frac.len() <= 3
                && frac.bytes().all(|b| b.is_ascii_digit())
                && (int == "0" || (int == "1" && frac.bytes().all(|b| b == b'0')))
        }
    };
    ok.then(|| v.parse::<f32>().ok()).flatten()
}

fn token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => v.to_string(),
    }
}

/// `s` split at `sep` outside double quotes.
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn utf8(charset: &str) -> bool {
    matches!(
        charset.trim().to_ascii_lowercase().as_str(),
        "utf-8" | "utf8" | "iso_ir 192"
    )
}

/// How specifically `range` matches `r`: 3 exactly, 1 by `type/*`, 0 by `*/*`.
fn specificity(range: &Range, r: Representation) -> Option<u8> {
    if range.foreign_charset {
        return None;
    }
    match (&range.kind, r) {
        (Kind::Any, Representation::Json) => Some(0),
        (Kind::AnySubtype(t), Representation::Json) if t == "application" => Some(1),
        (Kind::Exact { media, .. }, Representation::Json)
            if media == DICOM_JSON || media == "application/json" =>
        {
            Some(3)
        }
        (Kind::Exact { media, .. }, Representation::Xml) if media == DICOM_XML => Some(3),
        (
            Kind::Exact {
                media,
                part_type: Some(t),
            },
            Representation::MultipartXml | Representation::MultipartJson,
        ) if media == "multipart/related" => {
            let wanted = if r == Representation::MultipartXml {
                DICOM_XML
            } else {
                DICOM_JSON
            };
            (t == wanted).then_some(3)
        }
        _ => None,
    }
}

/// `r`'s weight in `ranges`: (q, specificity, position) of its most specific match.
fn weight(ranges: &[Range], r: Representation) -> Option<(f32, u8, usize)> {
    ranges
        .iter()
        .filter_map(|range| specificity(range, r).map(|s| (range.q, s, range.position)))
        .max_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)))
}

/// Whether the most specific range of `ranges` naming `r`'s type, through a wildcard or
/// exactly, accepts it.
fn compatible(ranges: &[Range], r: Representation) -> bool {
    let major = match r {
        Representation::Json | Representation::Xml => "application",
        Representation::MultipartXml | Representation::MultipartJson => "multipart",
    };
    ranges
        .iter()
        .filter_map(|range| {
            let s = match &range.kind {
                Kind::Any => Some(0),
                Kind::AnySubtype(t) if t == major => Some(1),
                Kind::Exact { .. } => specificity(range, r),
                Kind::AnySubtype(_) => None,
            }?;
            Some((range.q, s))
        })
        .max_by(|a, b| a.1.cmp(&b.1))
        .is_some_and(|(q, _)| q > 0.0)
}

/// The best offered representation in `ranges` that `allowed` lets through.
fn best(
    target: Target,
    ranges: &[Range],
    allowed: impl Fn(Representation) -> bool,
) -> Option<Representation> {
    target
        .offered()
        .iter()
        .filter_map(|&r| weight(ranges, r).map(|w| (r, w)))
        .filter(|(r, w)| w.0 > 0.0 && allowed(*r))
        .max_by(|(_, a), (_, b)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(b.2.cmp(&a.2)))
        .map(|(r, _)| r)
}

/// The `accept` query parameter's own rules: no wildcards, and DICOM media types only or
/// none (8.3.3.1).
fn check_accept_parameter(ranges: &[Range]) -> Result<(), NegotiationError> {
    let mut dicom = false;
    let mut other = false;
    for r in ranges {
        match &r.kind {
            Kind::Any | Kind::AnySubtype(_) => {
                return Err(NegotiationError::AcceptParameter {
                    problem: "wildcards are not allowed in the accept query parameter".into(),
                });
            }
            Kind::Exact { media, part_type } => {
                let is_dicom = |m: &str| m.starts_with("application/dicom");
                if is_dicom(media)
                    || (media == "multipart/related" && part_type.as_deref().is_some_and(is_dicom))
                {
                    dicom = true;
                } else {
                    other = true;
                }
            }
        }
    }
    if dicom && other {
        return Err(NegotiationError::AcceptParameter {
            problem: "DICOM and non-DICOM media types may not be mixed".into(),
        });
    }
    Ok(())
}

/// Whether an `Accept-Charset`-like list lets UTF-8 through.
fn check_charset(value: &Option<String>, from: &'static str) -> Result<(), NegotiationError> {
    let Some(value) = value else { return Ok(()) };
    let mut utf8_q: Option<f32> = None;
    let mut star_q: Option<f32> = None;
    let mut valid = 0;
    for entry in split_unquoted(value, ',') {
        let mut parts = entry.split(';').map(str::trim);
        let name = unquote(parts.next().unwrap_or_default());
        if name.is_empty() {
            continue;
        }
        let mut q = Some(1.0);
        for p in parts {
            if let Some((k, v)) = p.split_once('=')
                && k.trim().eq_ignore_ascii_case("q")
            {
                q = quality(v.trim());
            }
        }
        let Some(q) = q else { continue };
        valid += 1;
        if name == "*" {
            star_q = Some(q);
        } else if utf8(&name) {
            utf8_q = Some(utf8_q.map_or(q, |old: f32| old.max(q)));
        }
    }
    let accepted = valid == 0 || utf8_q.or(star_q).is_some_and(|q| q > 0.0);
    if accepted {
        Ok(())
    } else {
        Err(NegotiationError::Charset { from })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Representation::*;
    use axum::http::HeaderValue;

    fn with(target: Target, accept: Option<&str>, param: Option<&str>) -> Option<Representation> {
        let mut h = HeaderMap::new();
        if let Some(a) = accept {
            h.insert(header::ACCEPT, HeaderValue::from_str(a).expect("header"));
        }
        let q = QueryParams {
            accept: param.map(str::to_string),
            charset: None,
        };
        negotiate(target, &h, &q).ok()
    }

    fn search(accept: &str) -> Option<Representation> {
        with(Target::List, Some(accept), None)
    }

    #[test]
    fn the_json_default() {
        assert_eq!(with(Target::List, None, None), Some(Json));
        for a in [
            "application/dicom+json",
            "*/*",
            "application/*",
            "application/json",
            "Application/DICOM+JSON; charset=utf-8",
            "application/dicom+xml, application/json;q=0.5",
            "text/html, */*;q=0.1",
        ] {
            assert_eq!(search(a), Some(Json), "{a}");
        }
    }

    #[test]
    fn multipart_and_xml() {
        let mx = "multipart/related; type=\"application/dicom+xml\"";
        assert_eq!(search(mx), Some(MultipartXml));
        assert_eq!(
            search("multipart/related;type=application/dicom+xml;boundary=x"),
            Some(MultipartXml)
        );
        assert_eq!(
            search("multipart/related; type=\"application/dicom+json\""),
            Some(MultipartJson)
        );
        // The client's order breaks a tie of weights; q decides first.
        assert_eq!(
            search(&format!("{mx}, application/dicom+json")),
            Some(MultipartXml)
        );
        assert_eq!(search(&format!("application/dicom+json, {mx}")), Some(Json));
        assert_eq!(
            search(&format!("application/dicom+json;q=0.5, {mx}")),
            Some(MultipartXml)
        );
        // A specific type beats a wildcard of the same weight.
        assert_eq!(search(&format!("*/*, {mx}")), Some(MultipartXml));
        // Bare XML is one data set: the retrieve's, not the search's.
        assert_eq!(search("application/dicom+xml"), None);
        assert_eq!(
            with(Target::One, Some("application/dicom+xml"), None),
            Some(Xml)
        );
    }

    #[test]
    fn refusals() {
        for no in [
            "text/html",
            "application/dicom+json;q=0",
            "*/*, application/dicom+json;q=0",
            "application/dicom+json; charset=iso-8859-1",
            "multipart/related",
            "multipart/related; type=\"application/dicom\"",
            "image/*",
            "application/dicom+json;q=2",
            "",
        ] {
            assert_eq!(search(no), None, "{no}");
        }
    }

    #[test]
    fn the_406_names_what_is_offered_and_why() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/dicom+xml"),
        );
        let e = negotiate(Target::List, &h, &QueryParams::default()).expect_err("406");
        let text = e.to_string();
        assert!(
            text.contains("multipart/related; type=\"application/dicom+xml\""),
            "{text}"
        );
        assert!(text.contains("holds one data set"), "{text}");
        let api: ApiError = e.into();
        assert_eq!(api.0, StatusCode::NOT_ACCEPTABLE);
    }

    #[test]
    fn the_accept_query_parameter_comes_first() {
        let mx = "multipart/related; type=\"application/dicom+xml\"";
        assert_eq!(with(Target::List, None, Some(mx)), Some(MultipartXml));
        // A wildcard in the header lets the parameter's type through (8.3.3.1).
        assert_eq!(
            with(Target::List, Some("*/*"), Some(mx)),
            Some(MultipartXml)
        );
        assert_eq!(
            with(Target::List, Some("multipart/*"), Some(mx)),
            Some(MultipartXml)
        );
        assert_eq!(with(Target::List, Some(mx), Some(mx)), Some(MultipartXml));
        // Not allowed by the header: the header decides.
        assert_eq!(
            with(Target::List, Some("application/dicom+json"), Some(mx)),
            Some(Json)
        );
        assert_eq!(
            with(Target::One, None, Some("application/dicom+xml")),
            Some(Xml)
        );
        // Nothing supported in the parameter and no header: 406.
        assert_eq!(with(Target::List, None, Some("application/dicom")), None);
        let h = HeaderMap::new();
        for bad in ["*/*", "application/*", "application/dicom+json, text/html"] {
            let q = QueryParams {
                accept: Some(bad.into()),
                charset: None,
            };
            assert!(
                matches!(
                    negotiate(Target::List, &h, &q),
                    Err(NegotiationError::AcceptParameter { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn charsets() {
        let check = |v: &str| check_charset(&Some(v.to_string()), "Accept-Charset").is_ok();
        for ok in [
            "utf-8",
            "UTF-8;q=0.5, iso-8859-1",
            "*",
            "iso-8859-1, *;q=0.1",
            "\"ISO_IR 192\"",
            "x;q=bad",
        ] {
            assert!(check(ok), "{ok}");
        }
        for no in ["iso-8859-1", "utf-8;q=0", "utf-8;q=0, *", "*;q=0"] {
            assert!(!check(no), "{no}");
        }
        assert!(check_charset(&None, "Accept-Charset").is_ok());
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_CHARSET,
            HeaderValue::from_static("iso-8859-1"),
        );
        assert_eq!(
            negotiate(Target::List, &h, &QueryParams::default()),
            Err(NegotiationError::Charset {
                from: "Accept-Charset"
            })
        );
        let q = QueryParams {
            accept: None,
            charset: Some("iso-8859-1".into()),
        };
        assert!(negotiate(Target::One, &HeaderMap::new(), &q).is_err());
    }

    #[test]
    fn query_parameters_are_taken_out() {
        let pairs = vec![
            ("PatientID".to_string(), "1".to_string()),
            ("accept".to_string(), "a".to_string()),
            ("accept".to_string(), "b".to_string()),
            ("Accept".to_string(), "c".to_string()),
            ("charset".to_string(), "utf-8".to_string()),
        ];
        let (q, rest) = take_query_params(pairs);
        assert_eq!(q.accept.as_deref(), Some("a,b"));
        assert_eq!(q.charset.as_deref(), Some("utf-8"));
        assert_eq!(rest.len(), 2);
    }
}
