//! A data set in the PS3.19 Native DICOM Model (`application/dicom+xml`, PS3.18 8.7.3.2):
//! one `NativeDicomModel` document per data set.
//!
//! - each attribute is a `DicomAttribute` with `tag` (eight upper-case hex digits), `vr`
//!   and, for a tag in the dictionary, `keyword`; in tag order;
//! - a zero-length attribute, and a sequence without items, have no child; values are
//!   `Value number="n"` from 1, an empty value among several an empty `Value`;
//! - PN values are `PersonName number="n"` with `Alphabetic`, `Ideographic` and
//!   `Phonetic` (only the groups present), each split into `FamilyName`, `GivenName`,
//!   `MiddleName`, `NamePrefix` and `NameSuffix` (only the components present);
//! - sequence items are `Item number="n"` holding their attributes; the bulk VRs (OB, OW,
//!   UN, ...) are `InlineBinary` (base64);
//! - text is what the JSON model holds (the same trimming of DICOM padding, the same
//!   splitting at `\`), escaped by quick-xml; a carriage return is written `&#13;` so a
//!   parser's end-of-line handling keeps it, and a character XML 1.0 cannot hold (a
//!   control character other than tab, line feed and carriage return) becomes U+FFFD.
//!
//! The document is UTF-8 with an XML declaration saying so, in the model's namespace
//! (`http://dicom.nema.org/PS3.19/models/NativeDICOM`), with `xml:space="preserve"` (a
//! value's spaces are data).

use std::borrow::Cow;
use std::io;

use base64::Engine;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::header::Header;
use dicom_core::value::Value as DicomValue;
use dicom_core::{PrimitiveValue, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemElement;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

/// The Native DICOM Model's XML namespace.
pub(crate) const NAMESPACE: &str = "http://dicom.nema.org/PS3.19/models/NativeDICOM";

/// The PN component element names, in a component group's `^`-separated order.
const NAME_COMPONENTS: [&str; 5] = [
    "FamilyName",
    "GivenName",
    "MiddleName",
    "NamePrefix",
    "NameSuffix",
];

/// The PN component group element names, in the value's `=`-separated order.
const NAME_GROUPS: [&str; 3] = ["Alphabetic", "Ideographic", "Phonetic"];

/// `obj` as one `NativeDicomModel` document.
pub(crate) fn document(obj: &InMemDicomObject) -> io::Result<Vec<u8>> {
    let mut w = Writer::new(Vec::with_capacity(4096));
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("NativeDicomModel")
        .with_attribute(("xmlns", NAMESPACE))
        .with_attribute(("xml:space", "preserve"))
        .write_inner_content(|w| data_set(w, obj))?;
    Ok(w.into_inner())
}

fn data_set(w: &mut Writer<Vec<u8>>, obj: &InMemDicomObject) -> io::Result<()> {
    for e in obj {
        attribute(w, e)?;
    }
    Ok(())
}

fn attribute(w: &mut Writer<Vec<u8>>, e: &InMemElement) -> io::Result<()> {
    let tag = e.tag();
    let hex = format!("{:04X}{:04X}", tag.group(), tag.element());
    let vr = e.vr();
    let mut el = w
        .create_element("DicomAttribute")
        .with_attribute(("tag", hex.as_str()))
        .with_attribute(("vr", vr.to_string()));
    let entry = StandardDataDictionary.by_tag(tag);
    if let Some(entry) = entry {
        el = el.with_attribute(("keyword", entry.alias()));
    }
    match e.value() {
        DicomValue::Sequence(seq) if !seq.items().is_empty() => {
            el.write_inner_content(|w| {
                for (n, item) in seq.items().iter().enumerate() {
                    w.create_element("Item")
                        .with_attribute(("number", (n + 1).to_string().as_str()))
                        .write_inner_content(|w| data_set(w, item))?;
                }
                Ok(())
            })?;
        }
        DicomValue::Primitive(v) if !matches!(v, PrimitiveValue::Empty) => match content(vr, v) {
            Some(c) => {
                el.write_inner_content(|w| c.write(w))?;
            }
            None => {
                el.write_empty()?;
            }
        },
        // Zero-length, a sequence without items (and pixel data, never in a worklist).
        _ => {
            el.write_empty()?;
        }
    }
    Ok(())
}

/// What a primitive attribute holds.
enum Content {
    /// Base64 of the bytes of a bulk VR.
    Binary(String),
    /// The values (`None`: an empty value), as `Value` or, for PN, `PersonName`.
    Values {
        pn: bool,
        values: Vec<Option<String>>,
    },
}

impl Content {
    fn write(&self, w: &mut Writer<Vec<u8>>) -> io::Result<()> {
        match self {
            Content::Binary(b64) => {
                w.create_element("InlineBinary")
                    .write_text_content(BytesText::new(b64))?;
            }
            Content::Values { pn, values } => {
                for (n, v) in values.iter().enumerate() {
                    let number = (n + 1).to_string();
                    let name = if *pn { "PersonName" } else { "Value" };
                    let el = w
                        .create_element(name)
                        .with_attribute(("number", number.as_str()));
                    match v {
                        None => {
                            el.write_empty()?;
                        }
                        Some(s) if *pn => {
                            el.write_inner_content(|w| person_name(w, s))?;
                        }
                        Some(s) => {
                            el.write_text_content(text(s))?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The content of a primitive attribute; `None` when it holds no value.
fn content(vr: VR, v: &PrimitiveValue) -> Option<Content> {
    match vr {
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN => {
            let bytes = v.to_bytes();
            if bytes.is_empty() {
                return None;
            }
            let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
            return Some(Content::Binary(b64));
        }
        _ => {}
    }
    let raw: Vec<String> = match vr {
        // One value, whatever it holds (a backslash is text there).
        VR::LT | VR::ST | VR::UT | VR::UR => vec![v.to_str().into_owned()],
        _ => v
            .to_multi_str()
            .iter()
            .flat_map(|s| s.split('\\'))
            .map(str::to_string)
            .collect(),
    };
    let values: Vec<Option<String>> = raw
        .iter()
        .map(|r| {
            let s = match vr {
                // Leading spaces are significant there.
                VR::LT | VR::ST | VR::UT => r.trim_end_matches([' ', '\0']),
                _ => r.trim_matches([' ', '\0']),
            };
            (!s.is_empty()).then(|| s.to_string())
        })
        .collect();
    if values.iter().all(Option::is_none) {
        return None;
    }
    Some(Content::Values {
        pn: vr == VR::PN,
        values,
    })
}

/// A PN value's groups and components, empty ones left out.
fn person_name(w: &mut Writer<Vec<u8>>, s: &str) -> io::Result<()> {
    for (group, name) in s.split('=').zip(NAME_GROUPS) {
        if group.is_empty() {
            continue;
        }
        w.create_element(name).write_inner_content(|w| {
            for (component, cname) in group.split('^').zip(NAME_COMPONENTS) {
                if !component.is_empty() {
                    w.create_element(cname)
                        .write_text_content(text(component))?;
                }
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// `s` as XML character data: escaped by quick-xml, a carriage return as a character
/// reference, a character XML 1.0 cannot hold replaced by U+FFFD.
fn text(s: &str) -> BytesText<'static> {
    let allowed: Cow<'_, str> = if s.chars().all(xml_char) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(
            s.chars()
                .map(|c| if xml_char(c) { c } else { '\u{FFFD}' })
                .collect(),
        )
    };
    let escaped = quick_xml::escape::escape(allowed.as_ref()).replace('\r', "&#13;");
    BytesText::from_escaped(escaped)
}

/// Whether XML 1.0 may hold `c` as character data.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::DataElement;
    use dicom_core::value::DataSetSequence;
    use dicom_dictionary_std::tags;

    fn doc(obj: &InMemDicomObject) -> String {
        String::from_utf8(document(obj).expect("written")).expect("UTF-8")
    }

    /// The document without its declaration and root element.
    fn body(obj: &InMemDicomObject) -> String {
        let d = doc(obj);
        let start = d.find("preserve\">").map_or(0, |i| i + "preserve\">".len());
        let end = d.rfind("</NativeDicomModel>").unwrap_or(d.len());
        d[start..end].to_string()
    }

    fn one(tag: dicom_core::Tag, vr: VR, v: PrimitiveValue) -> InMemDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(tag, vr, v));
        obj
    }

    #[test]
    fn the_document_is_a_native_dicom_model() {
        let d = doc(&one(tags::MODALITY, VR::CS, PrimitiveValue::from("MR")));
        assert_eq!(
            d,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <NativeDicomModel xmlns=\"http://dicom.nema.org/PS3.19/models/NativeDICOM\" \
             xml:space=\"preserve\">\
             <DicomAttribute tag=\"00080060\" vr=\"CS\" keyword=\"Modality\">\
             <Value number=\"1\">MR</Value></DicomAttribute></NativeDicomModel>"
        );
    }

    #[test]
    fn person_names_are_split_into_groups_and_components() {
        let obj = one(
            tags::PATIENT_NAME,
            VR::PN,
            PrimitiveValue::from("Doe^Jane^^Dr=王^小东 "),
        );
        assert_eq!(
            body(&obj),
            "<DicomAttribute tag=\"00100010\" vr=\"PN\" keyword=\"PatientName\">\
             <PersonName number=\"1\">\
             <Alphabetic><FamilyName>Doe</FamilyName><GivenName>Jane</GivenName>\
             <NamePrefix>Dr</NamePrefix></Alphabetic>\
             <Ideographic><FamilyName>王</FamilyName><GivenName>小东</GivenName></Ideographic>\
             </PersonName></DicomAttribute>"
        );
        // Only a phonetic group.
        let obj = one(tags::PATIENT_NAME, VR::PN, PrimitiveValue::from("==ヤマダ"));
        assert!(
            body(&obj).contains(
                "<PersonName number=\"1\"><Phonetic><FamilyName>ヤマダ</FamilyName>\
                 </Phonetic></PersonName>"
            ),
            "{}",
            body(&obj)
        );
    }

    #[test]
    fn sequences_hold_numbered_items() {
        let mut step = InMemDicomObject::new_empty();
        step.put(DataElement::new(
            tags::MODALITY,
            VR::CS,
            PrimitiveValue::from("MR"),
        ));
        step.put(DataElement::new(
            tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(Vec::<InMemDicomObject>::new()),
        ));
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![step, InMemDicomObject::new_empty()]),
        ));
        assert_eq!(
            body(&obj),
            "<DicomAttribute tag=\"00400100\" vr=\"SQ\" \
             keyword=\"ScheduledProcedureStepSequence\">\
             <Item number=\"1\">\
             <DicomAttribute tag=\"00080060\" vr=\"CS\" keyword=\"Modality\">\
             <Value number=\"1\">MR</Value></DicomAttribute>\
             <DicomAttribute tag=\"00400008\" vr=\"SQ\" \
             keyword=\"ScheduledProtocolCodeSequence\"/>\
             </Item><Item number=\"2\"></Item></DicomAttribute>"
        );
    }

    #[test]
    fn empty_values() {
        let mut obj = one(tags::PATIENT_ID, VR::LO, PrimitiveValue::Empty);
        obj.put(DataElement::new(
            tags::ACCESSION_NUMBER,
            VR::SH,
            PrimitiveValue::from("  "),
        ));
        obj.put(DataElement::new(
            dicom_core::Tag(0x0010, 0x1000), // OtherPatientIDs (retired)
            VR::LO,
            PrimitiveValue::Strs(["A".to_string(), String::new()].into_iter().collect()),
        ));
        assert_eq!(
            body(&obj),
            "<DicomAttribute tag=\"00080050\" vr=\"SH\" keyword=\"AccessionNumber\"/>\
             <DicomAttribute tag=\"00100020\" vr=\"LO\" keyword=\"PatientID\"/>\
             <DicomAttribute tag=\"00101000\" vr=\"LO\" keyword=\"OtherPatientIDs\">\
             <Value number=\"1\">A</Value><Value number=\"2\"/></DicomAttribute>"
        );
    }

    #[test]
    fn text_is_escaped() {
        let obj = one(
            tags::REQUESTED_PROCEDURE_DESCRIPTION,
            VR::LO,
            PrimitiveValue::from("MR <head> & \"neck\" 'x'"),
        );
        let b = body(&obj);
        assert!(
            b.contains(
                "<Value number=\"1\">MR &lt;head&gt; &amp; &quot;neck&quot; &apos;x&apos;</Value>"
            ),
            "{b}"
        );
        let obj = one(
            tags::PATIENT_COMMENTS,
            VR::LT,
            PrimitiveValue::from(" line 1\r\nline 2\u{1}<"),
        );
        let b = body(&obj);
        assert!(
            b.contains("<Value number=\"1\"> line 1&#13;\nline 2\u{FFFD}&lt;</Value>"),
            "{b}"
        );
        let obj = one(
            tags::PATIENT_NAME,
            VR::PN,
            PrimitiveValue::from("O<Brien^A&B"),
        );
        assert!(
            body(&obj)
                .contains("<FamilyName>O&lt;Brien</FamilyName><GivenName>A&amp;B</GivenName>"),
            "{}",
            body(&obj)
        );
    }

    #[test]
    fn numbers_and_binary() {
        let mut obj = one(tags::PATIENT_WEIGHT, VR::DS, PrimitiveValue::from("72.5 "));
        obj.put(DataElement::new(
            tags::PIXEL_PADDING_VALUE,
            VR::OB,
            PrimitiveValue::U8([1u8, 2, 3].into_iter().collect()),
        ));
        let b = body(&obj);
        assert!(b.contains("<Value number=\"1\">72.5</Value>"), "{b}");
        assert!(b.contains("<InlineBinary>AQID</InlineBinary>"), "{b}");
    }
}
