//! Reading Calpendo's responses: the booking list, a booking's details (the classic shape
//! and the newer "Calpendo 11" shape) and the MRI operator (both shapes seen).

use jiff::civil::DateTime;
use serde_json::{Map, Value};

use crate::time::{SourceTime, parse_display_range, parse_source_time};

/// Calpendo's `biskitType` of MRI scan bookings, which have an operator.
pub const MRI_SCAN_TYPE: &str = "MRIScan";

/// What the server sent instead of a value it does not let us see.
pub const HIDDEN: &str = "<Hidden>";

/// One item of the booking list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedBooking {
    /// The booking id, as text.
    pub id: String,
    /// The status, when the list gives it.
    pub status: Option<String>,
    /// The booking type (`MRIScan`, `EEGScan`, ...), when the list gives it.
    pub biskit_type: Option<String>,
    /// The list item as sent: `id`, `formattedName` (the time range), `title`, `status`,
    /// `biskitType`, or whatever a newer server puts there instead. The detail cache
    /// reuses a booking's details only while this stays the same.
    pub item: Value,
}

/// A list response that is not a list of bookings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected booking list response: {0}")]
pub struct ListShapeError(pub String);

/// The text of a JSON value: strings as they are, numbers and booleans written out,
/// objects by their `formattedName`, `name` or `title`; `None` for null, lists, blanks
/// and `<Hidden>`.
pub fn value_text(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Object(o) => {
            return ["formattedName", "name", "title"]
                .iter()
                .find_map(|k| o.get(*k).and_then(value_text));
        }
        Value::Null | Value::Array(_) => return None,
    };
    let t = s.trim();
    (!t.is_empty() && t != HIDDEN).then_some(s)
}

/// The value at a dot path (`properties.project.formattedName`; a number indexes a list).
pub fn lookup<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = root;
    for seg in path.split('.') {
        cur = match cur {
            Value::Object(o) => o.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    (!cur.is_null()).then_some(cur)
}

/// The value at a dot path, or under `properties` when the top level lacks it (newer
/// servers move `title`, `status` and others there).
pub fn lookup_with_properties<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    lookup(root, path).or_else(|| {
        if path.starts_with("properties.") {
            None
        } else {
            root.get("properties").and_then(|p| lookup(p, path))
        }
    })
}

fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// Reads the list response `{"biskits": [...]}`. Items without an id are left out (and
/// counted in the second value). A response without a `biskits` list is an error: taking
/// it as "no bookings" would discontinue the whole window.
pub fn parse_list(v: &Value) -> Result<(Vec<ListedBooking>, usize), ListShapeError> {
    let items = match v.get("biskits") {
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ListShapeError("\"biskits\" is not a list".into())),
        None => {
            return Err(ListShapeError("no \"biskits\" list in the response".into()));
        }
    };
    let mut out = Vec::with_capacity(items.len());
    let mut without_id = 0;
    for item in items {
        let Some(id) = item.get("id").and_then(id_text) else {
            without_id += 1;
            continue;
        };
        let text = |k: &str| lookup_with_properties(item, k).and_then(value_text);
        out.push(ListedBooking {
            id,
            status: text("status"),
            biskit_type: text("biskitType"),
            item: item.clone(),
        });
    }
    Ok((out, without_id))
}

/// A booking's details, whichever shape the server sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Booking {
    /// The booking id, as text.
    pub id: String,
    /// The title (commonly `SUBJECT_Family_Given`).
    pub title: Option<String>,
    /// The status (`Approved`, `Cancelled`, ...).
    pub status: Option<String>,
    /// Whether `properties.cancelled` is true.
    pub cancelled: bool,
    /// The booking type (`MRIScan`, ...).
    pub biskit_type: Option<String>,
    /// The resource's name (`properties.resource.name`, else its `formattedName`).
    pub resource: Option<String>,
    /// The project's display name (`properties.project.formattedName`, else its `name`).
    pub project: Option<String>,
    /// The display range (`formattedName`), naive in Calpendo's zone.
    pub display_range: Option<(DateTime, DateTime)>,
    /// `properties.dateRange.start`.
    pub range_start: Option<SourceTime>,
    /// `properties.dateRange.finish` (or `.end`).
    pub range_end: Option<SourceTime>,
    /// The MRI operator, once looked up.
    pub operator: Option<String>,
    /// The details as sent, with `operator` added at the top level once looked up (for
    /// `field_mapping` paths).
    pub raw: Value,
}

impl Booking {
    /// Reads a details response. `listed_id` is used when the details lack an id. `None`
    /// when the response is not a JSON object.
    pub fn from_json(raw: Value, listed_id: &str) -> Option<Booking> {
        if !raw.is_object() {
            return None;
        }
        let text = |k: &str| lookup_with_properties(&raw, k).and_then(value_text);
        let id = raw
            .get("id")
            .and_then(id_text)
            .unwrap_or_else(|| listed_id.to_string());
        let resource = lookup(&raw, "properties.resource.name")
            .and_then(value_text)
            .or_else(|| lookup(&raw, "properties.resource.formattedName").and_then(value_text))
            .or_else(|| lookup(&raw, "resource.name").and_then(value_text));
        let project = lookup(&raw, "properties.project")
            .and_then(value_text)
            .or_else(|| lookup(&raw, "project").and_then(value_text));
        let display_range = raw
            .get("formattedName")
            .and_then(Value::as_str)
            .and_then(parse_display_range);
        let range = lookup_with_properties(&raw, "dateRange");
        let range_start = range
            .and_then(|r| r.get("start"))
            .and_then(parse_source_time);
        let range_end = range
            .and_then(|r| r.get("finish").or_else(|| r.get("end")))
            .and_then(parse_source_time);
        let cancelled = lookup_with_properties(&raw, "cancelled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Some(Booking {
            title: text("title"),
            status: text("status"),
            biskit_type: text("biskitType"),
            cancelled,
            resource,
            project,
            display_range,
            range_start,
            range_end,
            operator: None,
            id,
            raw,
        })
    }

    /// Whether this is an MRI scan (which has an operator to look up).
    pub fn is_mri_scan(&self) -> bool {
        self.biskit_type.as_deref() == Some(MRI_SCAN_TYPE)
    }

    /// Records the operator, also as the top-level `operator` field for mapping paths.
    pub fn set_operator(&mut self, operator: Option<String>) {
        if let (Some(op), Value::Object(o)) = (&operator, &mut self.raw) {
            o.insert("operator".into(), Value::String(op.clone()));
        }
        self.operator = operator;
    }
}

/// Reads the operator from an MRIScan query response, in either shape seen:
/// `{"biskits": [{"Operator.name": {"formattedName": "Jane Smith"}}]}` or
/// `{"biskits": [{"properties": {"Operator": {"name": "Tech John Smith"}}}]}`.
/// `<Hidden>` and blanks are `None`.
pub fn parse_operator(v: &Value) -> Option<String> {
    operator_of_item(v.get("biskits")?.as_array()?.first()?)
}

/// The operator of one item of an MRIScan query answer, in either shape seen.
pub fn operator_of_item(first: &Value) -> Option<String> {
    let props = first.get("properties").and_then(Value::as_object);
    let from = |m: &Map<String, Value>| {
        m.get("Operator.name")
            .and_then(value_text)
            .or_else(|| m.get("Operator").and_then(value_text))
    };
    first
        .as_object()
        .and_then(from)
        .or_else(|| props.and_then(from))
        .map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use serde_json::json;

    #[test]
    fn list_shapes() {
        let v = json!({"biskits": [
            {"id": 12345, "formattedName": "[2026-01-27 14:00:00.0, 2026-01-27 15:30:00.0]",
             "title": "SUB001_John_Doe", "status": "Approved", "biskitType": "MRIScan"},
            {"id": "12346", "properties": {"status": "Cancelled"}},
            {"title": "no id"},
        ]});
        let (items, without_id) = parse_list(&v).unwrap();
        assert_eq!(without_id, 1);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].id, "12345");
        assert_eq!(items[0].status.as_deref(), Some("Approved"));
        assert_eq!(items[0].biskit_type.as_deref(), Some("MRIScan"));
        assert_eq!(items[1].id, "12346");
        assert_eq!(items[1].status.as_deref(), Some("Cancelled"));
        assert_eq!(items[1].item, v["biskits"][1]);
        assert!(parse_list(&json!({"biskits": []})).unwrap().0.is_empty());
        assert!(parse_list(&json!({})).is_err());
        assert!(parse_list(&json!({"biskits": {}})).is_err());
    }

    #[test]
    fn classic_details() {
        let v = json!({
            "id": 12345,
            "formattedName": "[2026-01-27 14:00:00.0, 2026-01-27 15:30:00.0]",
            "title": "SUB001_John_Doe", "status": "Approved", "biskitType": "MRIScan",
            "properties": {
                "project": {"formattedName": "BRISKP (Brain network models)"},
                "resource": {"formattedName": "3T Diagnostic Scanner"},
                "booker": {"name": "Dr. Alice Williams"}
            }
        });
        let b = Booking::from_json(v, "12345").unwrap();
        assert_eq!(b.id, "12345");
        assert_eq!(b.title.as_deref(), Some("SUB001_John_Doe"));
        assert_eq!(b.status.as_deref(), Some("Approved"));
        assert!(b.is_mri_scan());
        assert_eq!(b.resource.as_deref(), Some("3T Diagnostic Scanner"));
        assert_eq!(b.project.as_deref(), Some("BRISKP (Brain network models)"));
        assert_eq!(
            b.display_range,
            Some((
                date(2026, 1, 27).at(14, 0, 0, 0),
                date(2026, 1, 27).at(15, 30, 0, 0)
            ))
        );
        assert!(b.range_start.is_none());
    }

    #[test]
    fn calpendo11_details() {
        let v = json!({
            "id": 7, "biskitType": "EEGScan",
            "properties": {
                "title": "SUB002_Smith_Jane", "status": "In Progress", "cancelled": false,
                "dateRange": {"start": "2026-11-26T15:00:00Z", "finish": "2026-11-26T16:00:00Z"},
                "resource": {"name": "EEG Lab", "formattedName": "EEG Lab (room A)"},
                "project": {"name": "COG", "formattedName": "COG (Cognition)"}
            }
        });
        let b = Booking::from_json(v, "7").unwrap();
        assert_eq!(b.title.as_deref(), Some("SUB002_Smith_Jane"));
        assert_eq!(b.status.as_deref(), Some("In Progress"));
        assert_eq!(b.resource.as_deref(), Some("EEG Lab"));
        assert_eq!(b.project.as_deref(), Some("COG (Cognition)"));
        assert!(b.display_range.is_none());
        assert!(matches!(b.range_start, Some(SourceTime::Exact(_))));
        assert!(matches!(b.range_end, Some(SourceTime::Exact(_))));
        // `end` instead of `finish`.
        let v = json!({"id": 8, "properties": {"cancelled": true,
            "dateRange": {"start": "2026-11-26T15:00:00Z", "end": "2026-11-26T16:00:00Z"}}});
        let b = Booking::from_json(v, "8").unwrap();
        assert!(b.range_end.is_some());
        assert!(b.cancelled);
        assert!(Booking::from_json(json!([1]), "9").is_none());
        // The id from the list when the details lack one.
        assert_eq!(Booking::from_json(json!({}), "10").unwrap().id, "10");
    }

    #[test]
    fn operator_shapes() {
        let a = json!({"biskits": [{"id": 1, "resource.name": "3T Diagnostic",
            "Operator.name": {"formattedName": "Jane Smith", "id": 201},
            "staffConformation": "Confirmed"}]});
        assert_eq!(parse_operator(&a).as_deref(), Some("Jane Smith"));
        let a2 = json!({"biskits": [{"id": 1, "Operator.name": {"name": "Jane Smith"}}]});
        assert_eq!(parse_operator(&a2).as_deref(), Some("Jane Smith"));
        let b = json!({"biskits": [{"id": 1, "properties": {"Operator": {"name": "Tech John Smith"}}}]});
        assert_eq!(parse_operator(&b).as_deref(), Some("Tech John Smith"));
        let s = json!({"biskits": [{"id": 1, "Operator.name": "Jo Bloggs"}]});
        assert_eq!(parse_operator(&s).as_deref(), Some("Jo Bloggs"));
        for hidden in [
            json!({"biskits": [{"id": 1, "Operator.name": "<Hidden>"}]}),
            json!({"biskits": [{"id": 1, "Operator.name": {"formattedName": "<Hidden>"}}]}),
            json!({"biskits": [{"id": 1, "properties": {"Operator": {"name": "<Hidden>"}}}]}),
            json!({"biskits": [{"id": 1, "properties": {"Operator": "<Hidden>"}}]}),
            json!({"biskits": [{"id": 1}]}),
            json!({"biskits": []}),
            json!({}),
        ] {
            assert_eq!(parse_operator(&hidden), None, "{hidden}");
        }
    }

    #[test]
    fn value_text_and_lookup() {
        let v = json!({"a": {"b": [{"c": 5}]}, "properties": {"title": "T"}, "n": null});
        assert_eq!(
            lookup(&v, "a.b.0.c").and_then(value_text).as_deref(),
            Some("5")
        );
        assert!(lookup(&v, "a.x").is_none());
        assert!(lookup(&v, "n").is_none());
        assert_eq!(
            lookup_with_properties(&v, "title")
                .and_then(value_text)
                .as_deref(),
            Some("T")
        );
        assert_eq!(value_text(&json!("  ")), None);
        assert_eq!(value_text(&json!({"name": "N"})).as_deref(), Some("N"));
    }
}
