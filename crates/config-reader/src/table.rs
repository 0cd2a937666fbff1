//! [`Table`]: a reader over one table (object) of a config document that remembers which
//! keys were read, so that every other key can be reported as unknown.
//!
//! A `null` value (JSON) counts as absent. The getters accept the forms admins write
//! today: booleans also as Pylantir's `"True"`/`"False"`/`"1"`/`"0"` strings; whole
//! numbers only as JSON/TOML integers; seconds as any number.

use serde_json::{Map, Value};

use crate::problem::{Problem, Report, join};

/// The kind of a value, for messages: `a string`, `a list`, ...
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

/// ` (did you mean "x"?)` when a known word is close to `word` (at most 2 edits, or a
/// quarter of the known word's length for long ones); empty otherwise.
pub fn suggestion<'k>(word: &str, known: impl IntoIterator<Item = &'k str>) -> String {
    known
        .into_iter()
        .map(|k| (strsim::levenshtein(word, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| format!(" (did you mean {k:?}?)"))
        .unwrap_or_default()
}

/// Reads one table of the document, remembering which keys were read.
#[derive(Debug, Clone)]
pub struct Table<'a> {
    map: &'a Map<String, Value>,
    path: String,
    read: Vec<&'static str>,
}

impl<'a> Table<'a> {
    /// A reader over `map`, found at `path` (`""` for the root).
    pub fn new(map: &'a Map<String, Value>, path: impl Into<String>) -> Table<'a> {
        Table {
            map,
            path: path.into(),
            read: Vec::new(),
        }
    }

    /// The key path of this table.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The key path of a key of this table.
    pub fn key(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The key path of item `i` of the list at `key`, e.g. `resources[2]`.
    pub fn item_key(&self, key: &str, i: usize) -> String {
        format!("{}[{i}]", self.key(key))
    }

    /// Whether `key` is present (and not `null`); does not mark it read.
    pub fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    /// The raw value of `key`, marking it read.
    pub fn raw(&mut self, key: &'static str) -> Option<&'a Value> {
        if !self.read.contains(&key) {
            self.read.push(key);
        }
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Adds a problem at `key` of this table.
    pub fn problem(&self, report: &mut Report, key: &str, message: impl Into<String>) {
        report.problem(self.key(key), message);
    }

    fn wrong_kind(&self, report: &mut Report, key: &str, expected: &str, found: &Value) {
        self.problem(
            report,
            key,
            format!("expected {expected}, found {}", kind(found)),
        );
    }

    /// A string value.
    pub fn string(&mut self, key: &'static str, report: &mut Report) -> Option<String> {
        match self.raw(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong_kind(report, key, "a string", other);
                None
            }
        }
    }

    /// A boolean; Pylantir's `"True"`/`"False"` strings (and `"1"`/`"0"`) are accepted too.
    pub fn boolean(&mut self, key: &'static str, report: &mut Report) -> Option<bool> {
        match self.raw(key)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) if matches!(s.to_ascii_lowercase().as_str(), "true" | "1") => {
                Some(true)
            }
            Value::String(s) if matches!(s.to_ascii_lowercase().as_str(), "false" | "0") => {
                Some(false)
            }
            other => {
                self.wrong_kind(report, key, "true or false", other);
                None
            }
        }
    }

    /// A whole number within `min..=max`.
    pub fn integer(
        &mut self,
        key: &'static str,
        min: i64,
        max: i64,
        report: &mut Report,
    ) -> Option<i64> {
        let v = self.raw(key)?;
        match v.as_i64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                self.problem(
                    report,
                    key,
                    format!("{n} is out of range; expected {min} to {max}"),
                );
                None
            }
            None => {
                self.wrong_kind(report, key, "a whole number", v);
                None
            }
        }
    }

    /// A number of seconds, above `min` (or from 0 when `zero_allowed`) and at most `max`.
    pub fn seconds(
        &mut self,
        key: &'static str,
        zero_allowed: bool,
        max: f64,
        report: &mut Report,
    ) -> Option<f64> {
        let v = self.raw(key)?;
        let Some(s) = v.as_f64() else {
            self.wrong_kind(report, key, "a number of seconds", v);
            return None;
        };
        let ok = s.is_finite() && s <= max && (s > 0.0 || (zero_allowed && s == 0.0));
        if !ok {
            let range = if zero_allowed {
                format!("from 0 to {max}")
            } else {
                format!("above 0 and at most {max}")
            };
            self.problem(
                report,
                key,
                format!("{s} is out of range; expected a number of seconds {range}"),
            );
            return None;
        }
        Some(s)
    }

    /// A list of strings.
    pub fn strings(&mut self, key: &'static str, report: &mut Report) -> Option<Vec<String>> {
        let v = self.raw(key)?;
        let Value::Array(items) = v else {
            self.wrong_kind(report, key, "a list of strings", v);
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.clone()),
                other => {
                    ok = false;
                    report.problem(
                        self.item_key(key, i),
                        format!("expected a string, found {}", kind(other)),
                    );
                }
            }
        }
        ok.then_some(out)
    }

    /// A nested table.
    pub fn table(&mut self, key: &'static str, report: &mut Report) -> Option<Table<'a>> {
        let path = self.key(key);
        match self.raw(key)? {
            Value::Object(map) => Some(Table::new(map, path)),
            other => {
                self.wrong_kind(report, key, "a table", other);
                None
            }
        }
    }

    /// Keys present but never read, in the document's order.
    pub fn unread(&self) -> Vec<String> {
        self.map
            .keys()
            .filter(|k| !self.read.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    /// Reports every key present but never read as unknown (a typo, most often), with
    /// the closest key that was read as a suggestion.
    pub fn reject_unknown(&self, report: &mut Report) {
        for k in self.unread() {
            report.push(Problem::new(
                self.key(&k),
                unknown_key(&k, self.read.iter().copied()),
            ));
        }
    }
}

/// The message for an unknown key: `unknown key "x"`, with a suggestion when one of
/// `known` is close.
pub fn unknown_key<'k>(key: &str, known: impl IntoIterator<Item = &'k str>) -> String {
    format!("unknown key {key:?}{}", suggestion(key, known))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn getters_report_at_the_key_path() {
        let doc = json!({"port": 99999, "on": "True", "names": ["a", 3], "resourcez": 1});
        let mut t = Table::new(doc.as_object().unwrap(), "server");
        let mut r = Report::new();
        assert_eq!(t.integer("port", 1, 65_535, &mut r), None);
        assert_eq!(t.boolean("on", &mut r), Some(true));
        assert_eq!(t.strings("names", &mut r), None);
        assert_eq!(t.strings("resources", &mut r), None);
        t.reject_unknown(&mut r);
        let text: Vec<String> = r.problems().iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "server.port: 99999 is out of range; expected 1 to 65535",
                "server.names[1]: expected a string, found a number",
                "server.resourcez: unknown key \"resourcez\" (did you mean \"resources\"?)",
            ]
        );
    }

    #[test]
    fn seconds_ranges() {
        let doc = json!({"a": 0, "b": 0.5, "c": -1, "d": "x"});
        let mut t = Table::new(doc.as_object().unwrap(), "");
        let mut r = Report::new();
        assert_eq!(t.seconds("a", true, 10.0, &mut r), Some(0.0));
        assert_eq!(t.seconds("a", false, 10.0, &mut r), None);
        assert_eq!(t.seconds("b", false, 10.0, &mut r), Some(0.5));
        assert_eq!(t.seconds("c", true, 10.0, &mut r), None);
        assert_eq!(t.seconds("d", true, 10.0, &mut r), None);
        assert_eq!(r.problems().len(), 3);
    }
}
