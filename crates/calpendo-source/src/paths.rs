//! The bulk list query's `paths`: which property paths a cycle asks Calpendo for
//! ([`list_paths`]), whether an answer carries them ([`answered_with_paths`]), and how a
//! path-named item becomes a details-shaped booking ([`item_as_details`]) and a window's
//! MRI operators a map by booking id ([`operators_by_id`]).
//!
//! Calpendo's query API answers `?paths=p1,p2` with each matching biskit's `id` and the
//! asked values named by their path (`"resource.name": "3T Diagnostic"`; a reference to
//! another biskit as `{"formattedName": ..., "id": ...}`). The paths asked are those the
//! default mapping reads plus every `field_mapping` source field (`properties.` dropped:
//! a mapping to `properties.description` asks for `description`).

use serde_json::{Map, Value};

use crate::booking::operator_of_item;
use crate::config::CalpendoConfig;

/// The paths the default mapping and the filters read.
pub const DEFAULT_PATHS: [&str; 9] = [
    "formattedName",
    "title",
    "status",
    "biskitType",
    "cancelled",
    "dateRange.start",
    "dateRange.finish",
    "resource.name",
    "project.formattedName",
];

/// The paths the window's MRI operator query asks.
pub const OPERATOR_PATHS: &str = "Operator.name";

/// Keys a plain list item carries too: their presence proves nothing about `paths`.
const PLAIN_LIST_KEYS: [&str; 5] = ["id", "formattedName", "title", "status", "biskitType"];

/// Every path the cycle asks for: the defaults, then each mapped source field not yet
/// asked (`id` comes anyway; `operator` comes from the operator query).
pub fn list_paths(config: &CalpendoConfig) -> Vec<String> {
    let mut paths: Vec<String> = DEFAULT_PATHS.iter().map(|p| p.to_string()).collect();
    for (_, rule) in config.field_mapping.iter() {
        let field = rule.source_field.trim();
        let path = field.strip_prefix("properties.").unwrap_or(field);
        if path.is_empty() || path == "id" || path == "operator" || path == "properties" {
            continue;
        }
        if !paths.iter().any(|p| p == path) {
            paths.push(path.to_string());
        }
    }
    paths
}

/// Whether every item carries at least one of the asked paths a plain list item lacks
/// (an empty list proves nothing and is taken as answered).
pub fn answered_with_paths(items: &[Value], paths: &[String]) -> bool {
    let telling: Vec<&str> = paths
        .iter()
        .map(String::as_str)
        .filter(|p| !PLAIN_LIST_KEYS.contains(p))
        .collect();
    items.iter().all(|item| {
        item.as_object()
            .is_some_and(|o| telling.iter().any(|p| o.contains_key(*p)))
    })
}

/// A path-named item as a booking's details: `id` and `formattedName` at the top,
/// every other path nested under `properties` (`resource.name` →
/// `properties.resource.name`), which is where [`crate::booking::Booking::from_json`]
/// and `field_mapping` paths look.
pub fn item_as_details(item: &Value) -> Value {
    let mut top = Map::new();
    let mut props = Value::Object(Map::new());
    if let Some(o) = item.as_object() {
        for (key, value) in o {
            if key == "id" || key == "formattedName" {
                top.insert(key.clone(), value.clone());
            } else {
                nest(&mut props, key, value.clone());
            }
        }
    }
    top.insert("properties".into(), props);
    Value::Object(top)
}

/// Sets `value` at the dot path `path` under `root`, making objects on the way (a value
/// already there that is not an object, other than null, is kept).
fn nest(root: &mut Value, path: &str, value: Value) {
    let mut cur = root;
    let mut segments = path.split('.').peekable();
    while let Some(seg) = segments.next() {
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(o) = cur else {
            return;
        };
        if segments.peek().is_none() {
            match o.get(seg) {
                Some(existing) if !existing.is_null() && value.is_null() => {}
                _ => {
                    o.insert(seg.to_string(), value);
                }
            }
            return;
        }
        cur = o.entry(seg.to_string()).or_insert(Value::Null);
    }
}

/// A window's MRI operators by booking id, in either shape seen; `None` for an absent
/// or hidden operator. Items without an id are left out.
pub fn operators_by_id(v: &Value) -> Vec<(String, Option<String>)> {
    let Some(items) = v.get("biskits").and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let id = match item.get("id")? {
                Value::Number(n) => n.to_string(),
                Value::String(s) if !s.trim().is_empty() => s.trim().to_string(),
                _ => return None,
            };
            Some((id, operator_of_item(item)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::booking::Booking;
    use crate::config::parse_config;
    use serde_json::json;

    fn env_ok(k: &str) -> Option<String> {
        match k {
            "CALPENDO_USERNAME" => Some("u".into()),
            "CALPENDO_PASSWORD" => Some("p".into()),
            _ => None,
        }
    }

    #[test]
    fn mapped_fields_are_asked_for() {
        let c = parse_config(
            &json!({"base_url": "https://x", "resources": ["3T"], "field_mapping": {
                "sps_location": "properties.description",
                "accession_number": "id",
                "performing_physician": "operator",
                "patient_name": "title",
                "referring_physician_name": "properties.booker.name"}}),
            &env_ok,
        )
        .unwrap();
        let paths = list_paths(&c);
        assert_eq!(&paths[..9], DEFAULT_PATHS.map(String::from).as_slice());
        assert_eq!(&paths[9..], ["booker.name", "description"]);
    }

    #[test]
    fn a_path_named_item_reads_as_details() {
        let item = json!({"id": 5, "formattedName": "[2026-11-26 09:00:00.0, 2026-11-26 10:00:00.0]",
            "title": "SUB5_X", "status": "Approved", "biskitType": "MRIScan",
            "resource.name": "3T Diagnostic",
            "project.formattedName": "BRISKP (Brain)", "project": null,
            "dateRange.start": "2026-11-26T09:00:00-06:00", "description": "D"});
        let b = Booking::from_json(item_as_details(&item), "5").unwrap();
        assert_eq!(b.title.as_deref(), Some("SUB5_X"));
        assert_eq!(b.status.as_deref(), Some("Approved"));
        assert!(b.is_mri_scan());
        assert_eq!(b.resource.as_deref(), Some("3T Diagnostic"));
        assert_eq!(b.project.as_deref(), Some("BRISKP (Brain)"));
        assert!(b.display_range.is_some() && b.range_start.is_some());
        assert_eq!(b.raw["properties"]["description"], "D");
        // A reference object reads by its formattedName.
        let item = json!({"id": 6, "project": {"formattedName": "P (x)", "id": 3}});
        let b = Booking::from_json(item_as_details(&item), "6").unwrap();
        assert_eq!(b.project.as_deref(), Some("P (x)"));
    }

    #[test]
    fn plain_items_are_told_apart() {
        let paths: Vec<String> = DEFAULT_PATHS.map(String::from).to_vec();
        let plain = json!([{"id": 1, "title": "T", "status": "Approved", "formattedName": "x"}]);
        let named = json!([{"id": 1, "title": "T", "resource.name": "3T"}]);
        assert!(!answered_with_paths(plain.as_array().unwrap(), &paths));
        assert!(answered_with_paths(named.as_array().unwrap(), &paths));
        assert!(answered_with_paths(&[], &paths));
    }

    #[test]
    fn operators_in_both_shapes() {
        let v = json!({"biskits": [
            {"id": 1, "Operator.name": {"formattedName": "Jane Smith", "id": 201}},
            {"id": "2", "properties": {"Operator": {"name": "Tech John"}}},
            {"id": 3, "Operator.name": "<Hidden>"},
            {"id": 4, "Operator.name": null},
            {"Operator.name": "no id"}]});
        assert_eq!(
            operators_by_id(&v),
            vec![
                ("1".into(), Some("Jane Smith".into())),
                ("2".into(), Some("Tech John".into())),
                ("3".into(), None),
                ("4".into(), None),
            ]
        );
        assert!(operators_by_id(&json!({})).is_empty());
    }
}
