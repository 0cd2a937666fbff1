//! A reader over a parsed config document that collects every problem with its key path,
//! instead of stopping at the first.

use serde_json::{Map, Value};

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `server.port` or `sources[0].resources`.
    pub key: String,
    /// What is wrong, for a site admin.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// Reads one table (object) of the document, remembering which keys were read.
pub struct Table<'a> {
    map: &'a Map<String, Value>,
    path: String,
    read: Vec<&'static str>,
}

/// Joins a parent path and a key.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

impl<'a> Table<'a> {
    /// A reader over `map`, found at `path`.
    pub fn new(map: &'a Map<String, Value>, path: impl Into<String>) -> Table<'a> {
        Table {
            map,
            path: path.into(),
            read: Vec::new(),
        }
    }

    /// Path of a key of this table.
    pub fn key(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The raw value of `key`, marking it read.
    pub fn raw(&mut self, key: &'static str) -> Option<&'a Value> {
        self.read.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A string value.
    pub fn string(&mut self, key: &'static str, problems: &mut Vec<Problem>) -> Option<String> {
        match self.raw(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                problems.push(Problem {
                    key: self.key(key),
                    message: format!("expected a string, found {}", kind(other)),
                });
                None
            }
        }
    }

    /// A boolean; Pylantir's `"True"`/`"False"` strings are accepted too.
    pub fn boolean(&mut self, key: &'static str, problems: &mut Vec<Problem>) -> Option<bool> {
        match self.raw(key)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) if matches!(s.to_ascii_lowercase().as_str(), "true" | "1") => {
                Some(true)
            }
            Value::String(s) if matches!(s.to_ascii_lowercase().as_str(), "false" | "0") => {
                Some(false)
            }
            other => {
                problems.push(Problem {
                    key: self.key(key),
                    message: format!("expected true or false, found {}", kind(other)),
                });
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
        problems: &mut Vec<Problem>,
    ) -> Option<i64> {
        let v = self.raw(key)?;
        match v.as_i64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                problems.push(Problem {
                    key: self.key(key),
                    message: format!("{n} is out of range; expected {min} to {max}"),
                });
                None
            }
            None => {
                problems.push(Problem {
                    key: self.key(key),
                    message: format!("expected a whole number, found {}", kind(v)),
                });
                None
            }
        }
    }

    /// A list of strings.
    pub fn strings(
        &mut self,
        key: &'static str,
        problems: &mut Vec<Problem>,
    ) -> Option<Vec<String>> {
        let v = self.raw(key)?;
        let Value::Array(items) = v else {
            problems.push(Problem {
                key: self.key(key),
                message: format!("expected a list of strings, found {}", kind(v)),
            });
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.clone()),
                other => {
                    ok = false;
                    problems.push(Problem {
                        key: format!("{}[{i}]", self.key(key)),
                        message: format!("expected a string, found {}", kind(other)),
                    });
                }
            }
        }
        ok.then_some(out)
    }

    /// A nested table.
    pub fn table(&mut self, key: &'static str, problems: &mut Vec<Problem>) -> Option<Table<'a>> {
        let path = self.key(key);
        match self.raw(key)? {
            Value::Object(map) => Some(Table::new(map, path)),
            other => {
                problems.push(Problem {
                    key: path,
                    message: format!("expected a table, found {}", kind(other)),
                });
                None
            }
        }
    }

    /// Keys present but never read.
    pub fn unread(&self) -> Vec<String> {
        self.map
            .keys()
            .filter(|k| !self.read.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    /// Reports every key present but never read as unknown (a typo, most often).
    pub fn reject_unknown(&self, problems: &mut Vec<Problem>) {
        for k in self.unread() {
            problems.push(Problem {
                key: self.key(&k),
                message: "unknown key".into(),
            });
        }
    }
}
