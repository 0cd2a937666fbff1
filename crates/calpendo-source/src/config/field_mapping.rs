//! Reading `field_mapping`: each rule's source path and its optional `_extract` (a
//! regex with a group or a replacement template), every problem at its key path.

use std::collections::{BTreeMap, BTreeSet};

use config_reader::{Report, kind, suggestion};
use regex::Regex;
use serde_json::Value;

use crate::fields::{Extract, ExtractOutput, FieldMapping, FieldRule, Target};

fn check_path(path: &str, key: &str, p: &mut Report) -> bool {
    if path.trim().is_empty() {
        p.problem(key, "the source field path must not be empty");
        false
    } else if path.split('.').any(|seg| seg.trim().is_empty()) {
        p.problem(
            key,
            format!("{path:?} is not a dot path like \"properties.project.formattedName\""),
        );
        false
    } else {
        true
    }
}

/// Reads `field_mapping`: entry field → source field path, or `{source_field, _extract}`.
pub(crate) fn parse_field_mapping(v: &Value, p: &mut Report) -> FieldMapping {
    let mut mapping = FieldMapping::default();
    let Value::Object(m) = v else {
        p.problem(
            "field_mapping",
            format!(
                "must be a table/object of entry field = source field, not {}",
                kind(v)
            ),
        );
        return mapping;
    };
    let mut seen: BTreeMap<Target, String> = BTreeMap::new();
    for (name, rule) in m {
        let key = format!("field_mapping.{name}");
        let Some(target) = Target::from_name(name) else {
            let known: BTreeSet<&str> = Target::ALL.iter().map(|t| t.name()).collect();
            p.problem(
                key,
                format!(
                    "unknown entry field {name:?}{}; known fields: {}",
                    suggestion(name, known.iter().copied()),
                    known.into_iter().collect::<Vec<_>>().join(", ")
                ),
            );
            continue;
        };
        if let Some(other) = seen.get(&target) {
            p.problem(
                key,
                format!("maps the same field as field_mapping.{other} (an alias of {target})"),
            );
            continue;
        }
        seen.insert(target, name.clone());
        let Some(rule) = parse_rule(rule, &key, p) else {
            continue;
        };
        if target == Target::StudyInstanceUid
            && matches!(rule.source_field.as_str(), "id" | "properties.id")
        {
            p.warn(
                key,
                "a booking id is not a globally unique DICOM UID; the mapping is ignored \
                 and the stable derived UID (2.25.…) is used",
            );
            continue;
        }
        mapping.insert(target, rule);
    }
    mapping
}

fn parse_rule(v: &Value, key: &str, p: &mut Report) -> Option<FieldRule> {
    match v {
        Value::String(path) => check_path(path, key, p).then(|| FieldRule {
            source_field: path.trim().to_string(),
            extract: None,
        }),
        Value::Object(m) => {
            let mut ok = true;
            for k in m.keys() {
                if !matches!(k.as_str(), "source_field" | "_extract") {
                    p.problem(
                        format!("{key}.{k}"),
                        format!(
                            "unknown key {k:?}{} (expected source_field and _extract)",
                            suggestion(k, ["source_field", "_extract"])
                        ),
                    );
                    ok = false;
                }
            }
            let source_field = match m.get("source_field") {
                Some(Value::String(s)) => {
                    ok &= check_path(s, &format!("{key}.source_field"), p);
                    Some(s.trim().to_string())
                }
                Some(other) => {
                    p.problem(
                        format!("{key}.source_field"),
                        format!("must be a string, not {}", kind(other)),
                    );
                    None
                }
                None => {
                    p.problem(
                        format!("{key}.source_field"),
                        "required: the booking field to read, e.g. \"title\"",
                    );
                    None
                }
            };
            let extract = match m.get("_extract") {
                None => None,
                Some(x) => {
                    let e = parse_extract(x, &format!("{key}._extract"), p);
                    ok &= e.is_some();
                    e
                }
            };
            match source_field {
                Some(source_field) if ok => Some(FieldRule {
                    source_field,
                    extract,
                }),
                _ => None,
            }
        }
        other => {
            p.problem(
                key,
                format!(
                    "must be a source field path or {{source_field, _extract}}, not {}",
                    kind(other)
                ),
            );
            None
        }
    }
}

fn parse_extract(v: &Value, key: &str, p: &mut Report) -> Option<Extract> {
    let Value::Object(m) = v else {
        p.problem(
            key,
            format!(
                "must be a table/object with pattern and group or template, not {}",
                kind(v)
            ),
        );
        return None;
    };
    let mut ok = true;
    for k in m.keys() {
        if !matches!(k.as_str(), "pattern" | "group" | "template") {
            p.problem(
                format!("{key}.{k}"),
                format!(
                    "unknown key {k:?}{} (expected pattern, group or template)",
                    suggestion(k, ["pattern", "group", "template"])
                ),
            );
            ok = false;
        }
    }
    let pattern = match m.get("pattern") {
        Some(Value::String(s)) => match Regex::new(s) {
            Ok(r) => Some(r),
            Err(e) => {
                p.problem(
                    format!("{key}.pattern"),
                    format!("invalid regular expression: {e}"),
                );
                None
            }
        },
        Some(other) => {
            p.problem(
                format!("{key}.pattern"),
                format!("must be a string, not {}", kind(other)),
            );
            None
        }
        None => {
            p.problem(format!("{key}.pattern"), "required: the regular expression");
            None
        }
    };
    let group = match m.get("group") {
        None => None,
        Some(g) => match g.as_u64() {
            Some(n) => Some(n as usize),
            None => {
                p.problem(
                    format!("{key}.group"),
                    format!("must be a whole number (0 is the whole match), not {g}"),
                );
                ok = false;
                None
            }
        },
    };
    let template = match m.get("template") {
        None => None,
        Some(Value::String(t)) => Some(t.clone()),
        Some(other) => {
            p.problem(
                format!("{key}.template"),
                format!("must be a string, not {}", kind(other)),
            );
            ok = false;
            None
        }
    };
    if group.is_some() && template.is_some() {
        p.problem(key, "give either group or template, not both");
        ok = false;
    }
    let pattern = pattern?;
    if let Some(n) = group
        && n >= pattern.captures_len()
    {
        p.problem(
            format!("{key}.group"),
            format!(
                "the pattern has {} capture group(s); group {n} does not exist",
                pattern.captures_len() - 1
            ),
        );
        ok = false;
    }
    if let Some(t) = &template {
        for name in template_refs(t) {
            let exists = match name.parse::<usize>() {
                Ok(n) => n < pattern.captures_len(),
                Err(_) => pattern.capture_names().flatten().any(|c| c == name),
            };
            if !exists {
                p.problem(
                    format!("{key}.template"),
                    format!(
                        "refers to group {name:?}, which the pattern lacks (write ${{1}} \
                         when a letter, digit or _ follows a group number)"
                    ),
                );
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    let output = match template {
        Some(t) => ExtractOutput::Template(t),
        None => ExtractOutput::Group(group.unwrap_or(0)),
    };
    Some(Extract { pattern, output })
}

/// The group names a replacement template refers to (`$1`, `$name`, `${name}`), as the
/// regex crate reads them.
fn template_refs(t: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = t.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        if b.get(i + 1) == Some(&b'$') {
            i += 2;
            continue;
        }
        if b.get(i + 1) == Some(&b'{') {
            if let Some(end) = t[i + 2..].find('}') {
                out.push(t[i + 2..i + 2 + end].to_string());
                i += end + 3;
            } else {
                i += 1;
            }
            continue;
        }
        let start = i + 1;
        let mut j = start;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        if j > start {
            out.push(t[start..j].to_string());
        }
        i = j.max(i + 1);
    }
    out
}
