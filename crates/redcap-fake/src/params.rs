//! Reading a request's form: the POSTed `application/x-www-form-urlencoded` pairs,
//! PHP-style arrays (`fields[0]=a&fields[1]=b`, `fields[]=a`) or comma-separated lists
//! (`fields=a,b`), and the typed request they make. Pure: no I/O, no state.

use jiff::civil::DateTime;

/// Why a request is refused with 400: the message goes into `{"error": ...}`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParamError {
    /// A parameter REDCap requires is absent or empty.
    #[error("The parameter \"{0}\" is missing")]
    Missing(&'static str),
    /// `content` names nothing this API exports.
    #[error("The value of the parameter \"content\" is not valid: '{0}'")]
    UnknownContent(String),
    /// `format` (or `returnFormat`) other than `json`: the fake speaks JSON only.
    #[error(
        "The value of the parameter \"{param}\" is not valid: '{value}' (this fake answers json only)"
    )]
    UnsupportedFormat {
        /// `format` or `returnFormat`.
        param: &'static str,
        /// The value sent.
        value: String,
    },
    /// `type` other than `flat`.
    #[error(
        "The value of the parameter \"type\" is not valid: '{0}' (this fake exports flat only)"
    )]
    UnsupportedType(String),
    /// `action` other than `export`.
    #[error("The value of the parameter \"action\" is not valid: '{0}' (this fake only exports)")]
    UnsupportedAction(String),
    /// A record-export option that would change the answer and that the fake does not
    /// implement (`filterLogic`, labels instead of raw values, survey or DAG columns):
    /// refused rather than silently ignored.
    #[error("The parameter \"{param}\" = '{value}' is not supported by this fake")]
    UnsupportedOption {
        /// The parameter.
        param: &'static str,
        /// The value sent.
        value: String,
    },
    /// `dateRangeBegin` / `dateRangeEnd` is not `YYYY-MM-DD HH:MM:SS`.
    #[error(
        "The value of the parameter \"{param}\" is not a valid date/time: '{value}' (expected YYYY-MM-DD HH:MM:SS)"
    )]
    InvalidDateTime {
        /// `dateRangeBegin` or `dateRangeEnd`.
        param: &'static str,
        /// The value sent.
        value: String,
    },
    /// Names in `fields` (or `forms`) that the project does not have.
    #[error("The following values in the parameter \"{param}\" are not valid: {}", quoted(.names))]
    UnknownNames {
        /// `fields` or `forms`.
        param: &'static str,
        /// The unknown names, in request order.
        names: Vec<String>,
    },
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The form's pairs, in the order sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Decodes an `application/x-www-form-urlencoded` body (invalid UTF-8 is replaced,
    /// never refused: REDCap would answer the request, then fail on its values).
    pub fn parse(body: &[u8]) -> Params {
        Params(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The last value of a scalar parameter (PHP keeps the last), if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A non-empty scalar parameter, trimmed.
    fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// An array parameter: every `name[N]` / `name[]` value in index order, or the
    /// comma-separated items of a plain `name`; blanks dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        let mut indexed: Vec<(Option<u64>, usize, &str)> = Vec::new();
        let mut plain = Vec::new();
        for (at, (key, value)) in self.0.iter().enumerate() {
            if key == name {
                plain.extend(value.split(',').map(str::trim));
            } else if let Some(index) = key
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('['))
                .and_then(|rest| rest.strip_suffix(']'))
            {
                indexed.push((index.trim().parse().ok(), at, value.trim()));
            }
        }
        // PHP orders `fields[2]=..&fields[0]=..` by insertion, but clients send indexes
        // in order; sort by index (then position) so both readings agree.
        indexed.sort_by_key(|(index, at, _)| (index.unwrap_or(u64::MAX), *at));
        indexed
            .into_iter()
            .map(|(_, _, v)| v)
            .chain(plain)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The pairs without the token, for [`crate::Stats::last_params`].
    pub fn without_token(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(k, _)| k != "token")
            .cloned()
            .collect()
    }
}

/// What a well-formed, authorized request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiRequest {
    /// `content=metadata`: the data dictionary, optionally some fields / forms only.
    Metadata {
        /// `fields[]`; empty means all.
        fields: Vec<String>,
        /// `forms[]`; empty means all.
        forms: Vec<String>,
    },
    /// `content=record`, `action=export`: flat rows.
    Records(RecordQuery),
    /// `content=project`: project information.
    Project,
    /// `content=version`: the REDCap version, as plain text.
    Version,
}

impl ApiRequest {
    /// The `content` value this request had, for counters and fault scopes.
    pub fn content(&self) -> &'static str {
        match self {
            ApiRequest::Metadata { .. } => "metadata",
            ApiRequest::Records(_) => "record",
            ApiRequest::Project => "project",
            ApiRequest::Version => "version",
        }
    }
}

/// The selection of a record export.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordQuery {
    /// `fields[]`; empty (with `forms` empty) means every field.
    pub fields: Vec<String>,
    /// `forms[]`: every field of these instruments.
    pub forms: Vec<String>,
    /// `records[]`; empty means every record.
    pub records: Vec<String>,
    /// `dateRangeBegin`: records modified at or after it.
    pub begin: Option<DateTime>,
    /// `dateRangeEnd`: records modified before it.
    pub end: Option<DateTime>,
}

/// Reads the request after the token check. `format` must be `json` where REDCap
/// needs one (it defaults to XML, which the fake does not speak).
pub fn parse_request(params: &Params) -> Result<ApiRequest, ParamError> {
    let content = params
        .non_empty("content")
        .ok_or(ParamError::Missing("content"))?;
    if let Some(value) = params.non_empty("returnFormat")
        && !value.eq_ignore_ascii_case("json")
    {
        return Err(ParamError::UnsupportedFormat {
            param: "returnFormat",
            value: value.to_owned(),
        });
    }
    match content {
        "version" => return Ok(ApiRequest::Version),
        "metadata" | "record" | "project" => {}
        other => return Err(ParamError::UnknownContent(other.to_owned())),
    }
    let format = params
        .non_empty("format")
        .ok_or(ParamError::Missing("format"))?;
    if !format.eq_ignore_ascii_case("json") {
        return Err(ParamError::UnsupportedFormat {
            param: "format",
            value: format.to_owned(),
        });
    }
    match content {
        "metadata" => Ok(ApiRequest::Metadata {
            fields: params.list("fields"),
            forms: params.list("forms"),
        }),
        "project" => Ok(ApiRequest::Project),
        _ => parse_record_export(params).map(ApiRequest::Records),
    }
}

/// Record-export options the fake does not implement, with the values that leave
/// the answer as it is (absent or empty is always fine).
const UNSUPPORTED_OPTIONS: [(&str, &[&str]); 6] = [
    ("filterLogic", &[]),
    ("rawOrLabel", &["raw"]),
    ("rawOrLabelHeaders", &["raw"]),
    ("exportCheckboxLabel", &["false"]),
    ("exportSurveyFields", &["false"]),
    ("exportDataAccessGroups", &["false"]),
];

fn parse_record_export(params: &Params) -> Result<RecordQuery, ParamError> {
    let action = params.non_empty("action").unwrap_or("export");
    if action != "export" {
        return Err(ParamError::UnsupportedAction(action.to_owned()));
    }
    // REDCap's default type is flat; its default format is XML, hence no default
    // format here.
    let kind = params.non_empty("type").unwrap_or("flat");
    if kind != "flat" {
        return Err(ParamError::UnsupportedType(kind.to_owned()));
    }
    for (param, neutral) in UNSUPPORTED_OPTIONS {
        if let Some(value) = params.non_empty(param)
            && !neutral.iter().any(|n| value.eq_ignore_ascii_case(n))
        {
            return Err(ParamError::UnsupportedOption {
                param,
                value: value.to_owned(),
            });
        }
    }
    Ok(RecordQuery {
        fields: params.list("fields"),
        forms: params.list("forms"),
        records: params.list("records"),
        begin: date_time(params, "dateRangeBegin")?,
        end: date_time(params, "dateRangeEnd")?,
    })
}

/// An optional `YYYY-MM-DD HH:MM:SS` parameter (empty counts as absent, as in REDCap).
fn date_time(params: &Params, name: &'static str) -> Result<Option<DateTime>, ParamError> {
    let Some(value) = params.non_empty(name) else {
        return Ok(None);
    };
    let invalid = || ParamError::InvalidDateTime {
        param: name,
        value: value.to_owned(),
    };
    // Exactly this shape: jiff alone would also take `T`, fractions and offsets.
    let shape_ok = value.len() == 19
        && value.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b' ',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(invalid());
    }
    jiff::fmt::strtime::parse("%Y-%m-%d %H:%M:%S", value)
        .and_then(|tm| tm.to_datetime())
        .map(Some)
        .map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(body: &str) -> Params {
        Params::parse(body.as_bytes())
    }

    #[test]
    fn lists_in_both_forms() {
        let p = params("fields%5B1%5D=b&fields%5B0%5D=a&fields=c,%20d&fields[]=e&fieldsx=z");
        assert_eq!(p.list("fields"), ["a", "b", "e", "c", "d"]);
        assert!(p.list("records").is_empty());
    }

    #[test]
    fn date_range_must_be_exact() {
        let ok = params("content=record&format=json&type=flat&dateRangeBegin=2026-11-26+08:00:00");
        let ApiRequest::Records(q) = parse_request(&ok).unwrap() else {
            panic!("not a record export");
        };
        assert_eq!(
            q.begin,
            Some(jiff::civil::date(2026, 11, 26).at(8, 0, 0, 0))
        );
        for bad in [
            "2026-11-26",
            "2026-11-26T08:00:00",
            "2026-13-26 08:00:00",
            "2026-11-26 08:00",
        ] {
            let p = params(&format!(
                "content=record&format=json&type=flat&dateRangeEnd={bad}"
            ));
            assert!(
                matches!(
                    parse_request(&p),
                    Err(ParamError::InvalidDateTime {
                        param: "dateRangeEnd",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn content_and_format_are_checked() {
        assert_eq!(
            parse_request(&params("format=json")),
            Err(ParamError::Missing("content"))
        );
        assert_eq!(
            parse_request(&params("content=arm&format=json")),
            Err(ParamError::UnknownContent("arm".into()))
        );
        assert_eq!(
            parse_request(&params("content=metadata")),
            Err(ParamError::Missing("format"))
        );
        assert_eq!(
            parse_request(&params("content=version")),
            Ok(ApiRequest::Version)
        );
        assert!(matches!(
            parse_request(&params("content=record&format=json&type=eav")),
            Err(ParamError::UnsupportedType(_))
        ));
    }

    #[test]
    fn options_that_change_the_answer_are_refused() {
        let base = "content=record&format=json&type=flat";
        for ok in ["rawOrLabel=raw", "exportSurveyFields=false", "filterLogic="] {
            assert!(
                parse_request(&params(&format!("{base}&{ok}"))).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "filterLogic=[mri_date]>'2026-01-01'",
            "rawOrLabel=label",
            "exportDataAccessGroups=true",
        ] {
            assert!(
                matches!(
                    parse_request(&params(&format!("{base}&{bad}"))),
                    Err(ParamError::UnsupportedOption { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_names_message() {
        let e = ParamError::UnknownNames {
            param: "fields",
            names: vec!["foo".into(), "bar".into()],
        };
        assert_eq!(
            e.to_string(),
            "The following values in the parameter \"fields\" are not valid: 'foo', 'bar'"
        );
    }
}
