//! Reading DICOMweb payloads back in the end-to-end tests (`dicomweb_e2e`,
//! `dicomweb_mpps_e2e`): DICOM JSON and PS3.19 XML data sets flattened to the same
//! comparable form, and `multipart/related` bodies split into their parts.

use std::collections::BTreeMap;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde_json::Value;

/// The Native DICOM Model's namespace.
pub const NATIVE_DICOM: &str = "http://dicom.nema.org/PS3.19/models/NativeDICOM";

/// Attribute values by dotted path (`00400100.00080060`), as text: values joined by `\`,
/// a person name as its groups joined by `=`; a sequence gives its item count. Specific
/// Character Set is left out.
pub type Flat = BTreeMap<String, String>;

/// A DICOM JSON object, flattened.
pub fn flat_json(obj: &Value, prefix: &str, out: &mut Flat) {
    let Value::Object(map) = obj else {
        panic!("not an object: {obj}")
    };
    for (tag, attr) in map {
        if tag == "00080005" {
            continue;
        }
        let key = format!("{prefix}{tag}");
        let vr = attr["vr"].as_str().expect("vr");
        let values = attr.get("Value").and_then(Value::as_array);
        if vr == "SQ" {
            let items = values.cloned().unwrap_or_default();
            out.insert(key.clone(), format!("{} items", items.len()));
            for item in &items {
                flat_json(item, &format!("{key}."), out);
            }
            continue;
        }
        let text = values
            .map(|vs| {
                vs.iter()
                    .map(|v| match v {
                        Value::Null => String::new(),
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Object(pn) => ["Alphabetic", "Ideographic", "Phonetic"]
                            .iter()
                            .map(|g| pn.get(*g).and_then(Value::as_str).unwrap_or_default())
                            .collect::<Vec<_>>()
                            .join("=")
                            .trim_end_matches('=')
                            .to_string(),
                        other => panic!("unexpected value {other}"),
                    })
                    .collect::<Vec<_>>()
                    .join("\\")
            })
            .unwrap_or_default();
        out.insert(key, text);
    }
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.try_get_attribute(name)
        .expect("attribute syntax")
        .map(|a| {
            a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                .expect("attribute value")
                .into_owned()
        })
}

/// The number="n" of `e`, which must be `expected`.
fn check_number(e: &BytesStart<'_>, expected: usize, doc: &str) {
    let n = attr(e, "number").unwrap_or_else(|| panic!("no number in {doc}"));
    assert_eq!(n, expected.to_string(), "numbered in order: {doc}");
}

/// One `DicomAttribute` being read.
struct Open {
    key: String,
    tag: String,
    vr: String,
    values: Vec<String>,
    items: usize,
}

/// A PS3.19 `NativeDicomModel` document, parsed with quick-xml and flattened like
/// [`flat_json`]: PN components are joined by `^` (trailing empty ones dropped). Panics,
/// naming the document, on anything the model does not allow where we write.
pub fn flat_xml(doc: &str) -> Flat {
    const GROUPS: [&str; 3] = ["Alphabetic", "Ideographic", "Phonetic"];
    const COMPONENTS: [&str; 5] = [
        "FamilyName",
        "GivenName",
        "MiddleName",
        "NamePrefix",
        "NameSuffix",
    ];
    let mut reader = Reader::from_str(doc);
    let mut out = Flat::new();
    let mut open: Vec<Open> = Vec::new();
    let mut prefixes: Vec<String> = vec![String::new()];
    let mut text: Option<String> = None;
    let mut name: Option<[[String; 5]; 3]> = None;
    let mut group = 0;
    let mut component = 0;
    let mut root = false;
    let begin = |e: &BytesStart<'_>,
                 open: &mut Vec<Open>,
                 prefixes: &[String],
                 name: &mut Option<[[String; 5]; 3]>,
                 text: &mut Option<String>,
                 group: &mut usize,
                 component: &mut usize| {
        let local = e.name().as_ref().to_string();
        match local.as_str() {
            "DicomAttribute" => {
                let tag = attr(e, "tag").unwrap_or_else(|| panic!("no tag: {doc}"));
                assert_eq!(tag.len(), 8, "{doc}");
                let vr = attr(e, "vr").unwrap_or_else(|| panic!("no vr: {doc}"));
                let prefix = prefixes.last().cloned().unwrap_or_default();
                open.push(Open {
                    key: format!("{prefix}{tag}"),
                    tag,
                    vr,
                    values: Vec::new(),
                    items: 0,
                });
            }
            "Value" => {
                let a = open
                    .last()
                    .unwrap_or_else(|| panic!("Value outside: {doc}"));
                check_number(e, a.values.len() + 1, doc);
                *text = Some(String::new());
            }
            "PersonName" => {
                let a = open.last().unwrap_or_else(|| panic!("PN outside: {doc}"));
                assert_eq!(a.vr, "PN", "{doc}");
                check_number(e, a.values.len() + 1, doc);
                *name = Some(Default::default());
            }
            g if GROUPS.contains(&g) => {
                *group = GROUPS.iter().position(|x| *x == g).unwrap_or_default();
            }
            c if COMPONENTS.contains(&c) => {
                *component = COMPONENTS.iter().position(|x| *x == c).unwrap_or_default();
                *text = Some(String::new());
            }
            other => panic!("unexpected element {other} in {doc}"),
        }
    };
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Decl(_) => {}
            Event::Start(e) if !root => {
                assert_eq!(e.name().as_ref(), "NativeDicomModel", "{doc}");
                assert_eq!(attr(&e, "xmlns").as_deref(), Some(NATIVE_DICOM), "{doc}");
                root = true;
            }
            Event::Start(e) if e.name().as_ref() == "Item" => {
                let a = open
                    .last_mut()
                    .unwrap_or_else(|| panic!("Item outside: {doc}"));
                assert_eq!(a.vr, "SQ", "{doc}");
                check_number(&e, a.items + 1, doc);
                a.items += 1;
                prefixes.push(format!("{}.", a.key));
            }
            Event::Empty(e) if e.name().as_ref() == "Item" => {
                let a = open
                    .last_mut()
                    .unwrap_or_else(|| panic!("Item outside: {doc}"));
                check_number(&e, a.items + 1, doc);
                a.items += 1;
            }
            Event::Start(e) => begin(
                &e,
                &mut open,
                &prefixes,
                &mut name,
                &mut text,
                &mut group,
                &mut component,
            ),
            Event::Empty(e) => {
                begin(
                    &e,
                    &mut open,
                    &prefixes,
                    &mut name,
                    &mut text,
                    &mut group,
                    &mut component,
                );
                // An element without content ends where it starts.
                end(
                    e.name().as_ref(),
                    &mut open,
                    &mut out,
                    &mut name,
                    &mut text,
                    group,
                    component,
                );
            }
            Event::Text(t) => {
                if let Some(s) = &mut text {
                    s.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().expect("character reference") {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&r)
                        .unwrap_or_else(|| panic!("unknown entity {:?} in {doc}", &*r))
                        .to_string(),
                };
                if let Some(s) = &mut text {
                    s.push_str(&resolved);
                }
            }
            Event::End(e) if e.name().as_ref() == "Item" => {
                prefixes.pop();
            }
            Event::End(e) if e.name().as_ref() == "NativeDicomModel" => {}
            Event::End(e) => end(
                e.name().as_ref(),
                &mut open,
                &mut out,
                &mut name,
                &mut text,
                group,
                component,
            ),
            Event::Eof => break,
            other => panic!("unexpected {other:?} in {doc}"),
        }
    }
    assert!(root && open.is_empty(), "a whole document: {doc}");
    out
}

fn end(
    element: &str,
    open: &mut Vec<Open>,
    out: &mut Flat,
    name: &mut Option<[[String; 5]; 3]>,
    text: &mut Option<String>,
    group: usize,
    component: usize,
) {
    match element {
        "DicomAttribute" => {
            let a = open.pop().expect("an open attribute");
            if a.tag == "00080005" {
                return;
            }
            let v = if a.vr == "SQ" {
                format!("{} items", a.items)
            } else {
                a.values.join("\\")
            };
            out.insert(a.key, v);
        }
        "Value" => {
            let v = text.take().unwrap_or_default();
            open.last_mut().expect("open").values.push(v);
        }
        "PersonName" => {
            let groups = name.take().unwrap_or_default();
            let joined = groups
                .iter()
                .map(|g| g.join("^").trim_end_matches('^').to_string())
                .collect::<Vec<_>>()
                .join("=")
                .trim_end_matches('=')
                .to_string();
            open.last_mut().expect("open").values.push(joined);
        }
        "Alphabetic" | "Ideographic" | "Phonetic" => {}
        _ => {
            // A name component.
            let v = text.take().unwrap_or_default();
            if let Some(n) = name.as_mut() {
                n[group][component] = v;
            }
        }
    }
}

/// The parts of a `multipart/related` body whose `Content-Type` is `content_type`: each
/// part's own `Content-Type` and content. Checks the delimiters.
pub fn multipart_parts(content_type: &str, body: &str) -> Vec<(String, String)> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .unwrap_or_else(|| panic!("no boundary in {content_type}"))
        .trim_matches('"');
    if body.is_empty() {
        return Vec::new();
    }
    let close = format!("--{boundary}--\r\n");
    let inner = body
        .strip_suffix(&close)
        .unwrap_or_else(|| panic!("not closed by {close:?}: {body}"));
    let delimiter = format!("--{boundary}\r\n");
    let mut parts = Vec::new();
    for (i, chunk) in inner.split(&delimiter).enumerate() {
        if i == 0 {
            assert_eq!(chunk, "", "no preamble");
            continue;
        }
        let (head, content) = chunk
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in part {i}: {chunk}"));
        let content = content
            .strip_suffix("\r\n")
            .unwrap_or_else(|| panic!("part {i} does not end in CRLF"));
        let ct = head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no Content-Type in part {i}: {head}"));
        parts.push((ct, content.to_string()));
    }
    parts
}

/// `s` percent-encoded for a query value.
pub fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
