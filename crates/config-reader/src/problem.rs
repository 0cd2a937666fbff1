//! Where a config problem is, what it is, and the report that collects them.

use std::fmt;

/// Where a problem is: a key of the document or an environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// A dotted key path, like `server.port`, `sources[0].resources` or
    /// `field_mapping.patient_id._extract.pattern`; empty for the document (or the
    /// table being read) as a whole.
    Key(String),
    /// An environment variable, like `CALPENDO_PASSWORD`.
    Env(String),
}

impl Location {
    /// The key path or the variable's name, without saying which it is.
    pub fn name(&self) -> &str {
        match self {
            Location::Key(k) | Location::Env(k) => k,
        }
    }

    /// This location as seen from a table found at `parent`: a key path is prefixed with
    /// it; an environment variable stays what it is (the environment is the process's).
    pub fn within(self, parent: &str) -> Location {
        match self {
            Location::Key(k) => Location::Key(join(parent, &k)),
            env @ Location::Env(_) => env,
        }
    }
}

impl From<&str> for Location {
    fn from(key: &str) -> Location {
        Location::Key(key.to_string())
    }
}

impl From<String> for Location {
    fn from(key: String) -> Location {
        Location::Key(key)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Key(k) => f.write_str(k),
            Location::Env(name) => write!(f, "environment {name}"),
        }
    }
}

/// Joins a parent key path and a key (`server` + `port` = `server.port`); either may be
/// empty.
pub fn join(parent: &str, key: &str) -> String {
    match (parent.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (false, true) => parent.to_string(),
        (false, false) if key.starts_with('[') => format!("{parent}{key}"),
        (false, false) => format!("{parent}.{key}"),
    }
}

/// One thing wrong with (or, as a warning, worth noting about) the configuration.
///
/// Shown as `location: message`, or the message alone for the document as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problem {
    /// Where it is.
    pub key: Location,
    /// What is wrong, for a site admin; never holds a credential.
    pub message: String,
}

impl Problem {
    /// A problem at `key`.
    pub fn new(key: impl Into<Location>, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The same problem as seen from a table found at `parent` (see [`Location::within`]).
    pub fn within(self, parent: &str) -> Problem {
        Problem {
            key: self.key.within(parent),
            message: self.message,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Location::Key(k) if k.is_empty() => f.write_str(&self.message),
            key => write!(f, "{key}: {}", self.message),
        }
    }
}

/// Every problem and warning found while reading a config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Report {
    /// An empty report.
    pub fn new() -> Report {
        Report::default()
    }

    /// Adds a problem at `key`.
    pub fn problem(&mut self, key: impl Into<Location>, message: impl Into<String>) {
        self.problems.push(Problem::new(key, message));
    }

    /// Adds a problem made elsewhere.
    pub fn push(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// Adds problems made elsewhere.
    pub fn extend(&mut self, problems: impl IntoIterator<Item = Problem>) {
        self.problems.extend(problems);
    }

    /// Adds a warning: something the admin should know that does not stop the config
    /// from being used.
    pub fn warn(&mut self, key: impl Into<Location>, message: impl Into<String>) {
        self.warnings.push(Problem::new(key, message));
    }

    /// Whether no problem was found (warnings do not count).
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems found so far.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The warnings found so far.
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// The problems and the warnings.
    pub fn into_parts(self) -> (Vec<Problem>, Vec<Problem>) {
        (self.problems, self.warnings)
    }

    /// `value` with the warnings when no problem was found and `value` is there; every
    /// problem otherwise.
    pub fn finish<T>(self, value: Option<T>) -> Result<(T, Vec<Problem>), Vec<Problem>> {
        match value {
            Some(v) if self.problems.is_empty() => Ok((v, self.warnings)),
            _ => Err(self.problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_show_where() {
        let p = Problem::new("port", "99999 is out of range").within("server");
        assert_eq!(p.to_string(), "server.port: 99999 is out of range");
        let p = Problem::new(Location::Env("X_PASSWORD".into()), "not set").within("sources[0]");
        assert_eq!(p.to_string(), "environment X_PASSWORD: not set");
        assert_eq!(p.key.name(), "X_PASSWORD");
        let p = Problem::new("", "not valid TOML").within("");
        assert_eq!(p.to_string(), "not valid TOML");
        let p = Problem::new("", "expected a table").within("sources[1]");
        assert_eq!(p.to_string(), "sources[1]: expected a table");
        assert_eq!(join("resources", "[2]"), "resources[2]");
    }

    #[test]
    fn report_keeps_warnings_beside_problems() {
        let mut r = Report::new();
        r.warn("a", "note");
        assert!(r.is_ok());
        assert_eq!(r.clone().finish(Some(1)).unwrap().1.len(), 1);
        r.problem("b", "bad");
        assert_eq!(r.finish(Some(1)).unwrap_err().len(), 1);
    }
}
