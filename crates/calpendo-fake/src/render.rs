//! JSON bodies in the shapes Calpendo answers with.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use crate::{BookingShape, FakeBooking};

/// `YYYY-MM-DD HH:MM:SS.0`, the web UI's form of a local date-time.
fn ui_datetime(dt: DateTime) -> String {
    format!(
        "{}.{}",
        dt.strftime("%Y-%m-%d %H:%M:%S"),
        dt.millisecond() / 100
    )
}

/// `[start, end]` as the web UI shows a booking's range, in Calpendo's local time.
pub(crate) fn formatted_name(b: &FakeBooking) -> String {
    format!("[{}, {}]", ui_datetime(b.start), ui_datetime(b.end))
}

/// A stable, plausible-looking id for a named entity (person, project, resource).
pub(crate) fn stable_id(name: &str) -> i64 {
    // FNV-1a: stable across runs and Rust versions.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    1000 + i64::try_from(hash % 9000).unwrap_or(0)
}

/// One entry of a list-query response.
pub(crate) fn list_entry(b: &FakeBooking) -> Value {
    json!({
        "id": b.id,
        "formattedName": formatted_name(b),
        "title": b.title,
        "status": b.status,
        "biskitType": b.biskit_type,
    })
}

/// The local civil time as a UTC timestamp in Calpendo's zone.
fn to_timestamp(tz: &TimeZone, dt: DateTime) -> Result<Timestamp, jiff::Error> {
    tz.to_timestamp(dt)
}

/// `2025-02-03T20:18Z`.
fn iso_minutes_utc(ts: Timestamp) -> String {
    ts.to_zoned_datetime(TimeZone::UTC)
        .strftime("%Y-%m-%dT%H:%MZ")
        .to_string()
}

/// ISO 8601 with `Z` (`2026-11-26T16:00:00Z`) or with the zone's offset
/// (`2026-11-26T09:00:00-07:00`).
fn iso_instant(tz: &TimeZone, dt: DateTime, zulu: bool) -> Result<String, jiff::Error> {
    let ts = to_timestamp(tz, dt)?;
    Ok(if zulu {
        ts.to_string()
    } else {
        ts.display_with_offset(tz.to_offset(ts)).to_string()
    })
}

fn named(name: &str, formatted: bool) -> Value {
    if formatted {
        json!({ "formattedName": name, "id": stable_id(name), "name": name })
    } else {
        json!({ "name": name, "id": stable_id(name) })
    }
}

/// Text before the first `(`, trimmed: the project's short name.
fn project_short_name(formatted: &str) -> &str {
    formatted.split('(').next().unwrap_or(formatted).trim()
}

/// The booking-detail response, shaped by `b.shape`.
pub(crate) fn detail(b: &FakeBooking, tz: &TimeZone) -> Result<Value, jiff::Error> {
    let start_ts = to_timestamp(tz, b.start)?;
    // Created a week or two before the start, modified a little later.
    let created = start_ts.checked_sub(SignedDuration::from_hours(
        24 * (7 + b.id.rem_euclid(7)) + b.id.rem_euclid(11),
    ))?;
    let modified = created.checked_add(SignedDuration::from_mins(90 + b.id.rem_euclid(240)))?;
    let cancelled = b.status == "Cancelled";

    let mut props = Map::new();
    props.insert("resource".into(), named(&b.resource, true));
    if let Some(project) = &b.project {
        props.insert(
            "project".into(),
            json!({
                "formattedName": project,
                "id": stable_id(project),
                "name": project_short_name(project),
            }),
        );
    }
    if let Some(booker) = &b.booker {
        props.insert("booker".into(), named(booker, false));
    }
    if let Some(owner) = &b.owner {
        props.insert("owner".into(), named(owner, false));
    }
    props.insert(
        "durationInMinutes".into(),
        json!(b.end.duration_since(b.start).as_mins()),
    );
    props.insert("description".into(), json!(b.description));
    props.insert("cancelled".into(), json!(cancelled));
    props.insert(
        "cancellationReason".into(),
        if cancelled {
            json!("Participant unavailable")
        } else {
            Value::Null
        },
    );
    props.insert("created".into(), json!(iso_minutes_utc(created)));
    props.insert("modified".into(), json!(iso_minutes_utc(modified)));

    Ok(match b.shape {
        BookingShape::Classic => json!({
            "id": b.id,
            "formattedName": formatted_name(b),
            "title": b.title,
            "status": b.status,
            "biskitType": b.biskit_type,
            "properties": props,
        }),
        BookingShape::Calpendo11 => {
            // Vary the forms so that clients handle all of them: the end key by id
            // parity, `Z` versus offset by the next bit.
            let end_key = if b.id.rem_euclid(2) == 0 {
                "finish"
            } else {
                "end"
            };
            let zulu = b.id.rem_euclid(4) >= 2;
            let mut range = Map::new();
            range.insert("start".into(), json!(iso_instant(tz, b.start, zulu)?));
            range.insert(end_key.into(), json!(iso_instant(tz, b.end, zulu)?));
            props.insert("title".into(), json!(b.title));
            props.insert("status".into(), json!(b.status));
            props.insert("dateRange".into(), Value::Object(range));
            json!({
                "id": b.id,
                "biskitType": b.biskit_type,
                "properties": props,
            })
        }
    })
}

/// The MRI operator look-up response (`{"biskits": []}` for no booking or a
/// booking that is not an `MRIScan`).
pub(crate) fn operator(b: Option<&FakeBooking>) -> Value {
    let Some(b) = b.filter(|b| b.biskit_type == "MRIScan") else {
        return json!({ "biskits": [] });
    };
    let entry = if b.id.rem_euclid(2) == 0 {
        let mut entry = Map::new();
        entry.insert("id".into(), json!(b.id));
        entry.insert("resource.name".into(), json!(b.resource));
        if let Some(op) = &b.operator {
            entry.insert(
                "Operator.name".into(),
                json!({ "formattedName": op, "id": stable_id(op) }),
            );
        }
        let confirmation = if b.status == "Approved" {
            "Confirmed"
        } else {
            "Unconfirmed"
        };
        entry.insert("staffConformation".into(), json!(confirmation));
        Value::Object(entry)
    } else {
        let mut props = Map::new();
        if let Some(op) = &b.operator {
            props.insert("Operator".into(), json!({ "name": op }));
        }
        json!({ "id": b.id, "properties": props })
    };
    json!({ "biskits": [entry] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn edmonton() -> TimeZone {
        jiff::tz::TimeZoneDatabase::bundled()
            .get("America/Edmonton")
            .unwrap()
    }

    /// A zone whose rules have not changed in decades: UTC-6 all year.
    fn regina() -> TimeZone {
        jiff::tz::TimeZoneDatabase::bundled()
            .get("America/Regina")
            .unwrap()
    }

    fn booking(id: i64, shape: BookingShape) -> FakeBooking {
        FakeBooking {
            id,
            start: date(2026, 11, 26).at(9, 0, 0, 0),
            end: date(2026, 11, 26).at(10, 30, 0, 0),
            title: "SUB001_Doe_Jane".into(),
            status: "Cancelled".into(),
            biskit_type: "MRIScan".into(),
            resource: "3T Diagnostic".into(),
            project: Some("BRISKP (Brain network models)".into()),
            booker: Some("Dr. A".into()),
            owner: None,
            operator: Some("Op".into()),
            description: None,
            shape,
        }
    }

    #[test]
    fn formatted_name_shape() {
        let b = booking(1, BookingShape::Classic);
        assert_eq!(
            formatted_name(&b),
            "[2026-11-26 09:00:00.0, 2026-11-26 10:30:00.0]"
        );
    }

    #[test]
    fn classic_detail() {
        let v = detail(&booking(7, BookingShape::Classic), &edmonton()).unwrap();
        assert_eq!(v["title"], "SUB001_Doe_Jane");
        let p = &v["properties"];
        assert_eq!(p["project"]["name"], "BRISKP");
        assert_eq!(p["durationInMinutes"], 90);
        assert_eq!(p["cancelled"], true);
        assert!(p.get("owner").is_none());
        let created = p["created"].as_str().unwrap();
        assert_eq!(created.len(), "2025-02-03T20:18Z".len(), "{created}");
        assert!(created.ends_with('Z'));
    }

    #[test]
    fn calpendo11_ranges_vary() {
        let tz = regina();
        let cases = [
            (
                4,
                "finish",
                "2026-11-26T09:00:00-06:00",
                "2026-11-26T10:30:00-06:00",
            ),
            (
                5,
                "end",
                "2026-11-26T09:00:00-06:00",
                "2026-11-26T10:30:00-06:00",
            ),
            (6, "finish", "2026-11-26T15:00:00Z", "2026-11-26T16:30:00Z"),
            (7, "end", "2026-11-26T15:00:00Z", "2026-11-26T16:30:00Z"),
        ];
        for (id, key, start, end) in cases {
            let v = detail(&booking(id, BookingShape::Calpendo11), &tz).unwrap();
            assert!(v.get("title").is_none() && v.get("formattedName").is_none());
            let range = &v["properties"]["dateRange"];
            assert_eq!(range["start"], start, "id {id}");
            assert_eq!(range[key], end, "id {id}");
        }
    }

    #[test]
    fn offset_follows_the_zone_rules() {
        // Edmonton: whatever offset the bundled database gives for that instant.
        let tz = edmonton();
        let mut b = booking(4, BookingShape::Calpendo11);
        for day in [date(2026, 7, 1), date(2026, 1, 15)] {
            b.start = day.at(9, 0, 0, 0);
            b.end = day.at(10, 0, 0, 0);
            let v = detail(&b, &tz).unwrap();
            let start = v["properties"]["dateRange"]["start"].as_str().unwrap();
            assert!(start.starts_with(&format!("{day}T09:00:00")), "{start}");
            assert_eq!(start.len(), "2026-07-01T09:00:00-06:00".len(), "{start}");
            let instant: Timestamp = start.parse().unwrap();
            assert_eq!(instant, tz.to_timestamp(b.start).unwrap());
        }
        // Summer time in Paris.
        let paris = jiff::tz::TimeZoneDatabase::bundled()
            .get("Europe/Paris")
            .unwrap();
        b.start = date(2026, 7, 1).at(9, 0, 0, 0);
        let v = detail(&b, &paris).unwrap();
        assert_eq!(
            v["properties"]["dateRange"]["start"],
            "2026-07-01T09:00:00+02:00"
        );
        b.start = date(2026, 12, 1).at(9, 0, 0, 0);
        b.end = date(2026, 12, 1).at(10, 0, 0, 0);
        let v = detail(&b, &paris).unwrap();
        assert_eq!(
            v["properties"]["dateRange"]["start"],
            "2026-12-01T09:00:00+01:00"
        );
    }

    #[test]
    fn stable_ids_are_stable() {
        assert_eq!(stable_id("3T Diagnostic"), stable_id("3T Diagnostic"));
        assert!((1000..10000).contains(&stable_id("x")));
    }
}
