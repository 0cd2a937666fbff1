//! A booking's properties by data path (`resource.name`, `Operator.name`, ...): what a
//! query term compares and what a `paths` answer carries.
//!
//! A path the fake does not know is `None`: a query term on it is refused (400), a
//! `paths` answer carries `null` for it (a real server has site-specific properties the
//! fake cannot know).

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use crate::FakeBooking;
use crate::render::{formatted_name, stable_id};

/// One property value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Prop {
    /// No value (Calpendo's `__NULL__`).
    Null,
    /// Text.
    Text(String),
    /// A reference to another biskit, by its display name: sent as
    /// `{"formattedName": ..., "id": ...}`, compared as its display name.
    Ref(String),
    /// A civil date-time in Calpendo's zone.
    Time(DateTime),
    /// A whole number.
    Number(i64),
    /// A flag.
    Bool(bool),
}

/// The kind of a known path, which decides how a query value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Time,
    Number,
    Bool,
}

/// The kind of a path, `None` when the fake does not know it.
pub(crate) fn kind(path: &str) -> Option<Kind> {
    Some(match path {
        "id" | "durationInMinutes" => Kind::Number,
        "dateRange.start" | "dateRange.finish" | "dateRange.end" | "updated" => Kind::Time,
        "cancelled" => Kind::Bool,
        "title"
        | "status"
        | "biskitType"
        | "formattedName"
        | "description"
        | "resource"
        | "resource.name"
        | "resource.formattedName"
        | "project"
        | "project.name"
        | "project.formattedName"
        | "booker"
        | "booker.name"
        | "owner"
        | "owner.name"
        | "Operator"
        | "Operator.name"
        | "staffConformation" => Kind::Text,
        _ => return None,
    })
}

/// The value of `path` for a booking last changed at `updated`; `None` for an unknown
/// path.
pub(crate) fn value(b: &FakeBooking, path: &str, updated: DateTime) -> Option<Prop> {
    let text = |s: &str| Prop::Text(s.to_owned());
    let opt = |o: &Option<String>, f: fn(&str) -> Prop| o.as_deref().map_or(Prop::Null, f);
    let reference = |s: &str| Prop::Ref(s.to_owned());
    let mri_operator = if b.biskit_type == "MRIScan" {
        &b.operator
    } else {
        &None
    };
    Some(match path {
        "id" => Prop::Number(b.id),
        "durationInMinutes" => Prop::Number(b.end.duration_since(b.start).as_mins()),
        "dateRange.start" => Prop::Time(b.start),
        "dateRange.finish" | "dateRange.end" => Prop::Time(b.end),
        "updated" => Prop::Time(updated),
        "cancelled" => Prop::Bool(b.status == "Cancelled"),
        "title" => text(&b.title),
        "status" => text(&b.status),
        "biskitType" => text(&b.biskit_type),
        "formattedName" => Prop::Text(formatted_name(b)),
        "description" => opt(&b.description, |s| Prop::Text(s.to_owned())),
        "resource" => reference(&b.resource),
        "resource.name" | "resource.formattedName" => text(&b.resource),
        "project" => opt(&b.project, |s| Prop::Ref(s.to_owned())),
        "project.formattedName" => opt(&b.project, |s| Prop::Text(s.to_owned())),
        "project.name" => opt(&b.project, |s| {
            Prop::Text(s.split('(').next().unwrap_or(s).trim().to_owned())
        }),
        "booker" => opt(&b.booker, |s| Prop::Ref(s.to_owned())),
        "booker.name" => opt(&b.booker, |s| Prop::Text(s.to_owned())),
        "owner" => opt(&b.owner, |s| Prop::Ref(s.to_owned())),
        "owner.name" => opt(&b.owner, |s| Prop::Text(s.to_owned())),
        // Calpendo answers `Operator.name` with the operator's reference (seen by Pylantir).
        "Operator" | "Operator.name" => opt(mri_operator, |s| Prop::Ref(s.to_owned())),
        "staffConformation" => {
            if b.biskit_type != "MRIScan" {
                Prop::Null
            } else if b.status == "Approved" {
                text("Confirmed")
            } else {
                text("Unconfirmed")
            }
        }
        _ => return None,
    })
}

impl Prop {
    /// The value's text, for the text relations (`CONTAINS`, ...); `None` for null.
    pub(crate) fn text(&self) -> Option<String> {
        match self {
            Prop::Null => None,
            Prop::Text(s) | Prop::Ref(s) => Some(s.clone()),
            Prop::Time(t) => Some(t.to_string()),
            Prop::Number(n) => Some(n.to_string()),
            Prop::Bool(b) => Some(b.to_string()),
        }
    }

    /// The value as a `paths` answer carries it: times as ISO 8601 with the zone's
    /// offset, references as `{"formattedName", "id"}`.
    pub(crate) fn to_json(&self, tz: &TimeZone) -> Value {
        match self {
            Prop::Null => Value::Null,
            Prop::Text(s) => json!(s),
            Prop::Ref(name) => json!({ "formattedName": name, "id": stable_id(name) }),
            Prop::Time(t) => match tz.to_timestamp(*t) {
                Ok(ts) => json!(ts.display_with_offset(tz.to_offset(ts)).to_string()),
                Err(_) => Value::Null,
            },
            Prop::Number(n) => json!(n),
            Prop::Bool(b) => json!(b),
        }
    }
}

/// One booking as a `paths` answer carries it: its `id`, then every asked path (known
/// or not) named by its path.
pub(crate) fn with_paths(
    b: &FakeBooking,
    paths: &[String],
    updated: DateTime,
    tz: &TimeZone,
) -> Value {
    let mut item = serde_json::Map::new();
    item.insert("id".into(), json!(b.id));
    for p in paths {
        let v = value(b, p, updated).map_or(Value::Null, |v| v.to_json(tz));
        item.insert(p.clone(), v);
    }
    Value::Object(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BookingShape;
    use jiff::civil::date;

    fn booking() -> FakeBooking {
        FakeBooking {
            id: 7,
            start: date(2026, 11, 26).at(9, 0, 0, 0),
            end: date(2026, 11, 26).at(10, 30, 0, 0),
            title: "SUB007_Doe_Jane".into(),
            status: "Approved".into(),
            biskit_type: "MRIScan".into(),
            resource: "3T Diagnostic".into(),
            project: Some("BRISKP (Brain)".into()),
            booker: None,
            owner: None,
            operator: Some("Jane Smith".into()),
            description: None,
            shape: BookingShape::Classic,
        }
    }

    #[test]
    fn paths_name_values_and_references() {
        let tz = jiff::tz::TimeZoneDatabase::bundled()
            .get("America/Regina")
            .unwrap();
        let paths: Vec<String> = [
            "resource.name",
            "Operator.name",
            "project",
            "dateRange.start",
            "description",
            "colour",
        ]
        .map(String::from)
        .to_vec();
        let v = with_paths(&booking(), &paths, date(2026, 11, 1).at(0, 0, 0, 0), &tz);
        assert_eq!(v["id"], 7);
        assert_eq!(v["resource.name"], "3T Diagnostic");
        assert_eq!(v["Operator.name"]["formattedName"], "Jane Smith");
        assert!(v["Operator.name"]["id"].is_i64());
        assert_eq!(v["project"]["formattedName"], "BRISKP (Brain)");
        assert_eq!(v["dateRange.start"], "2026-11-26T09:00:00-06:00");
        assert!(v["description"].is_null());
        assert!(v["colour"].is_null());
        assert_eq!(v.as_object().unwrap().len(), 7);
    }
}
