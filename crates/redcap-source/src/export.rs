//! Reading REDCap's answers: the data dictionary ([`Metadata`]) and the flat record
//! export (rows of `field → text`), and which fields a record export asks for
//! ([`wanted_fields`]). Pure.

use std::collections::HashMap;

use serde_json::Value;

use crate::config::RedcapConfig;

/// The column REDCap puts a repeat row's instrument in.
pub const REPEAT_INSTRUMENT: &str = "redcap_repeat_instrument";
/// The column REDCap puts a repeat row's instance number in.
pub const REPEAT_INSTANCE: &str = "redcap_repeat_instance";
/// The record id field when the data dictionary is empty.
pub const DEFAULT_RECORD_ID_FIELD: &str = "record_id";
/// The baseline fields Pylantir always asks for besides the configured ones
/// (`redcap_plugin.py`, `fetch_entries`), less the three visit fields.
pub const CPIP_FIELDS: [&str; 5] = [
    "study_id",
    "family_id",
    "youth_dob_y",
    "demo_sex",
    "neuro_pcp",
];
/// The field Patient's Sex is read from unless `field_mapping` names another.
pub const SEX_FIELD: &str = "demo_sex";

/// Why an answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShapeError(pub String);

/// What the data dictionary says about the fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Field names in dictionary order; the first is the record id field.
    pub fields: Vec<String>,
    /// Field → its choices (`1, Male | 2, Female`), for fields that have some.
    pub choices: HashMap<String, String>,
}

impl Metadata {
    /// Reads a `content=metadata` answer: a list of objects with `field_name`.
    pub fn from_json(v: &Value) -> Result<Metadata, ShapeError> {
        let Value::Array(items) = v else {
            return Err(ShapeError("the metadata answer is not a list".into()));
        };
        let mut m = Metadata::default();
        for (i, item) in items.iter().enumerate() {
            let name = item
                .get("field_name")
                .and_then(Value::as_str)
                .ok_or_else(|| ShapeError(format!("metadata item {i} has no field_name")))?;
            m.fields.push(name.to_string());
            if let Some(c) = item
                .get("select_choices_or_calculations")
                .and_then(Value::as_str)
                .filter(|c| !c.trim().is_empty())
            {
                m.choices.insert(name.to_string(), c.to_string());
            }
        }
        Ok(m)
    }

    /// The record id field: the dictionary's first.
    pub fn record_id_field(&self) -> &str {
        self.fields
            .first()
            .map_or(DEFAULT_RECORD_ID_FIELD, String::as_str)
    }

    /// Whether the dictionary has `field`.
    pub fn has(&self, field: &str) -> bool {
        self.fields.iter().any(|f| f == field)
    }
}

/// The fields a record export asks for, as Pylantir asks (`redcap_plugin.py`): the
/// mapped ones, then the record id, the CPIP baseline fields and the visit fields, then
/// the templates' fields; only those the dictionary has, each once. (REDCap adds the
/// repeat columns by itself.)
pub fn wanted_fields(config: &RedcapConfig, meta: &Metadata) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let visit = [
        config.instance_field.as_str(),
        config.date_field.as_str(),
        config.time_field.as_str(),
    ];
    let candidates = config
        .field_mapping
        .fields()
        .chain([meta.record_id_field()])
        .chain(CPIP_FIELDS)
        .chain(visit)
        .chain(config.patient_id_template.fields())
        .chain(config.patient_name_template.fields());
    for f in candidates {
        if meta.has(f) && !out.iter().any(|o| o == f) {
            out.push(f.to_string());
        }
    }
    out
}

/// One row of a flat export: field → text (numbers as their text, `null` as absent).
pub type Row = HashMap<String, String>;

/// Reads a `content=record&type=flat` answer: a list of objects.
pub fn parse_rows(v: Value) -> Result<Vec<Row>, ShapeError> {
    let Value::Array(items) = v else {
        return Err(ShapeError("the record export answer is not a list".into()));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(map) = item else {
                return Err(ShapeError(format!(
                    "record export row {i} is not an object"
                )));
            };
            Ok(map
                .into_iter()
                .filter_map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s,
                        Value::Null => return None,
                        other => other.to_string(),
                    };
                    Some((k, text))
                })
                .collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_and_rows_read() {
        let m = Metadata::from_json(&json!([
            {"field_name": "record_id", "select_choices_or_calculations": ""},
            {"field_name": "demo_sex", "select_choices_or_calculations": "1, Male | 2, Female"}
        ]))
        .expect("metadata");
        assert_eq!(m.record_id_field(), "record_id");
        assert_eq!(
            m.choices.get("demo_sex").map(String::as_str),
            Some("1, Male | 2, Female")
        );
        assert!(Metadata::from_json(&json!({"error": "x"})).is_err());
        assert!(Metadata::from_json(&json!([{"name": "x"}])).is_err());
        let rows = parse_rows(json!([{"record_id": "1", "n": 3, "z": null}])).expect("rows");
        assert_eq!(rows[0].get("n").map(String::as_str), Some("3"));
        assert!(!rows[0].contains_key("z"));
        assert!(parse_rows(json!([1])).is_err());
        assert!(parse_rows(json!({})).is_err());
    }
}
