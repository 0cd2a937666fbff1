//! An HTTP answer as the admin interface's end-to-end tests read it (`admin_e2e`,
//! `dicomweb_e2e`).

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// An HTTP answer: status, headers and body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// The body as JSON (panics, naming the answer, when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// A header's value, or "" when absent.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    /// Asserts the status.
    pub fn expect(&self, status: StatusCode) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.body);
        self
    }

    /// The answer's items (it must be a 200 JSON array).
    pub fn items(&self) -> Vec<Value> {
        self.expect(StatusCode::OK);
        match self.json() {
            Value::Array(items) => items,
            other => panic!("not an array: {other}"),
        }
    }
}
