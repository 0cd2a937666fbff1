//! The URLs of Calpendo's list, detail and operator requests, and of the bulk list and
//! window operator queries (`fetch_mode`, see [`crate::source`]).
//!
//! The list query is a path of boolean groups and `field/OP/value` terms:
//! `AND/dateRange.start/GE/{from}/dateRange.start/LT/{to}`, then `/status/EQ/{s}` for a
//! single status, or `/OR/status/EQ/{a}/status/EQ/{b}` for several. Times are
//! `YYYYMMDD-HHMM` in Calpendo's zone. Resources are never put in the query: Calpendo's
//! `resource.name/EQ` is an exact match and our resources are prefixes, so they are
//! filtered on our side. Every value is percent-encoded as a path segment.

use jiff::civil::DateTime;
use reqwest::Url;
use worklist_store::SyncWindow;

use crate::config::CalpendoConfig;
use crate::time::local_to_source;

/// The paths asked of the MRI operator query.
pub const OPERATOR_PATHS: &str = "resource.name,Operator.name,staffConformation";

/// `YYYYMMDD-HHMM`, Calpendo's query time format.
pub fn query_time(dt: DateTime) -> String {
    dt.strftime("%Y%m%d-%H%M").to_string()
}

/// The list query's path segments after `q/Calpendo.Booking` (not yet encoded).
pub fn list_query_segments(config: &CalpendoConfig, window: &SyncWindow) -> Vec<String> {
    let from = local_to_source(window.start, &config.tz, &config.source_tz);
    let to = local_to_source(window.end, &config.tz, &config.source_tz);
    let mut seg: Vec<String> = vec![
        "AND".into(),
        "dateRange.start".into(),
        "GE".into(),
        query_time(from),
        "dateRange.start".into(),
        "LT".into(),
        query_time(to),
    ];
    match config.status_filter.as_slice() {
        [] => {}
        [one] => seg.extend(["status".into(), "EQ".into(), one.clone()]),
        several => {
            seg.push("OR".into());
            for s in several {
                seg.extend(["status".into(), "EQ".into(), s.clone()]);
            }
        }
    }
    seg
}

/// The bulk list query's segments: the window, the resource prefixes
/// (`resource.name/STARTS_WITH/p`, several in an `OR` group closed by `CLOSE`) unless
/// `prefixes` is false, then the status filter as [`list_query_segments`] ends.
pub fn bulk_query_segments(
    config: &CalpendoConfig,
    window: &SyncWindow,
    prefixes: bool,
) -> Vec<String> {
    let mut seg = list_query_segments(config, window);
    let status_terms = seg.split_off(7);
    let starts = |p: &String| ["resource.name".into(), "STARTS_WITH".into(), p.clone()];
    match config.resources.as_slice() {
        _ if !prefixes => {}
        [] => {}
        [one] => seg.extend(starts(one)),
        several => {
            seg.push("OR".into());
            for p in several {
                seg.extend(starts(p));
            }
            seg.push("CLOSE".into());
        }
    }
    seg.extend(status_terms);
    seg
}

/// `{base}{api_path}/q/Calpendo.Booking/{bulk query}?paths={paths}`.
pub fn bulk_list_url(
    config: &CalpendoConfig,
    window: &SyncWindow,
    paths: &[String],
    prefixes: bool,
) -> Result<Url, UrlError> {
    let q = bulk_query_segments(config, window, prefixes);
    let mut url = api_url(
        config,
        ["q", "Calpendo.Booking"]
            .into_iter()
            .chain(q.iter().map(String::as_str)),
    )?;
    url.query_pairs_mut().append_pair("paths", &paths.join(","));
    Ok(url)
}

/// `{base}{api_path}/q/MRIScan/{window}?paths=Operator.name`: the operators of every MRI
/// scan in the window, in one request.
pub fn window_operators_url(config: &CalpendoConfig, window: &SyncWindow) -> Result<Url, UrlError> {
    let mut q = list_query_segments(config, window);
    q.truncate(7);
    let mut url = api_url(
        config,
        ["q", "MRIScan"]
            .into_iter()
            .chain(q.iter().map(String::as_str)),
    )?;
    url.set_query(Some(&format!("paths={}", crate::paths::OPERATOR_PATHS)));
    Ok(url)
}

/// A URL error: the base URL cannot take a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("base URL {0:?} cannot be used with paths")]
pub struct UrlError(pub String);

fn api_url<'a>(
    config: &CalpendoConfig,
    segments: impl IntoIterator<Item = &'a str>,
) -> Result<Url, UrlError> {
    let mut url = Url::parse(&config.base_url).map_err(|_| UrlError(config.base_url.clone()))?;
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|_| UrlError(config.base_url.clone()))?;
        path.pop_if_empty();
        path.extend(config.api_path.split('/').filter(|s| !s.is_empty()));
        path.extend(segments);
    }
    Ok(url)
}

/// `{base}{api_path}/q/Calpendo.Booking/{query}`.
pub fn list_url(config: &CalpendoConfig, window: &SyncWindow) -> Result<Url, UrlError> {
    let q = list_query_segments(config, window);
    api_url(
        config,
        ["q", "Calpendo.Booking"]
            .into_iter()
            .chain(q.iter().map(String::as_str)),
    )
}

/// `{base}{api_path}/b/Calpendo.Booking/{id}`.
pub fn detail_url(config: &CalpendoConfig, id: &str) -> Result<Url, UrlError> {
    api_url(config, ["b", "Calpendo.Booking", id])
}

/// `{base}{api_path}/q/MRIScan/id/eq/{id}?paths=resource.name,Operator.name,staffConformation`.
pub fn operator_url(config: &CalpendoConfig, id: &str) -> Result<Url, UrlError> {
    let mut url = api_url(config, ["q", "MRIScan", "id", "eq", id])?;
    url.set_query(Some(&format!("paths={OPERATOR_PATHS}")));
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_config;
    use jiff::civil::date;
    use serde_json::{Value, json};

    fn env_ok(k: &str) -> Option<String> {
        match k {
            "CALPENDO_USERNAME" => Some("u".into()),
            "CALPENDO_PASSWORD" => Some("p".into()),
            _ => None,
        }
    }

    fn config(extra: Value) -> CalpendoConfig {
        let mut v =
            json!({"base_url": "https://x.calpendo.com", "resources": ["3T Diagnostic", "EEG"]});
        if let (Value::Object(o), Value::Object(x)) = (&mut v, extra) {
            o.extend(x);
        }
        parse_config(&v, &env_ok).unwrap()
    }

    fn window() -> SyncWindow {
        SyncWindow {
            start: date(2026, 11, 26).at(0, 0, 0, 0),
            end: date(2026, 11, 27).at(0, 0, 0, 0),
        }
    }

    #[test]
    fn list_url_without_status() {
        let url = list_url(&config(json!({})), &window()).unwrap();
        assert_eq!(
            url.as_str(),
            "https://x.calpendo.com/webdav/q/Calpendo.Booking/AND/dateRange.start/GE/20261126-0000/dateRange.start/LT/20261127-0000"
        );
        assert!(!url.as_str().contains("resource"));
    }

    #[test]
    fn list_url_with_one_status_and_api_path() {
        let c = config(json!({"status_filter": "In Progress", "api_path": "/api",
            "base_url": "http://127.0.0.1:8080/calpendo/"}));
        let url = list_url(&c, &window()).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/calpendo/api/q/Calpendo.Booking/AND/dateRange.start/GE/20261126-0000/dateRange.start/LT/20261127-0000/status/EQ/In%20Progress"
        );
    }

    #[test]
    fn list_url_with_several_statuses_encodes_values() {
        let c = config(json!({"status_filter": ["Approved", "A/B?#%"]}));
        let url = list_url(&c, &window()).unwrap();
        assert!(
            url.as_str()
                .ends_with("/LT/20261127-0000/OR/status/EQ/Approved/status/EQ/A%2FB%3F%23%25"),
            "{url}"
        );
        assert!(!url.as_str().contains("resource.name"));
        assert!(!url.as_str().contains("EEG"));
    }

    #[test]
    fn window_bounds_in_the_source_zone() {
        let c = config(json!({"source_timezone": "America/Toronto"}));
        let seg = list_query_segments(&c, &window());
        assert_eq!(seg[3], "20261126-0100");
        assert_eq!(seg[6], "20261127-0100");
    }

    #[test]
    fn bulk_urls() {
        let c = config(json!({"status_filter": ["Approved", "Pending"]}));
        let paths = vec!["title".to_string(), "resource.name".to_string()];
        let url = bulk_list_url(&c, &window(), &paths, true).unwrap();
        assert_eq!(
            url.as_str(),
            "https://x.calpendo.com/webdav/q/Calpendo.Booking/AND/dateRange.start/GE/20261126-0000/dateRange.start/LT/20261127-0000/OR/resource.name/STARTS_WITH/3T%20Diagnostic/resource.name/STARTS_WITH/EEG/CLOSE/OR/status/EQ/Approved/status/EQ/Pending?paths=title%2Cresource.name"
        );
        let url = bulk_list_url(&c, &window(), &paths, false).unwrap();
        assert!(!url.as_str().contains("STARTS_WITH"), "{url}");
        let one = config(json!({"resources": ["3T"]}));
        let seg = bulk_query_segments(&one, &window(), true);
        assert_eq!(seg[7..], ["resource.name", "STARTS_WITH", "3T"]);
        assert_eq!(
            window_operators_url(&c, &window()).unwrap().as_str(),
            "https://x.calpendo.com/webdav/q/MRIScan/AND/dateRange.start/GE/20261126-0000/dateRange.start/LT/20261127-0000?paths=Operator.name"
        );
    }

    #[test]
    fn detail_and_operator_urls() {
        let c = config(json!({}));
        assert_eq!(
            detail_url(&c, "12345").unwrap().as_str(),
            "https://x.calpendo.com/webdav/b/Calpendo.Booking/12345"
        );
        assert_eq!(
            operator_url(&c, "12345").unwrap().as_str(),
            "https://x.calpendo.com/webdav/q/MRIScan/id/eq/12345?paths=resource.name,Operator.name,staffConformation"
        );
        assert_eq!(
            detail_url(&c, "a b/c").unwrap().as_str(),
            "https://x.calpendo.com/webdav/b/Calpendo.Booking/a%20b%2Fc"
        );
    }
}
