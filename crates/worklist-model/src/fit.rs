//! Values fitted to what consoles accept, before an entry is stored.
//!
//! Consoles reject or misread values that DICOM itself allows or that a source sends as
//! it has them. GE's worklist client, for one, rejects an item whose Scheduled Station AE
//! Title is empty, whose person name has a component over 64 characters, or whose values
//! hold a backslash. [`fit`] applies these rules to every entry a source fetched, and
//! returns what it changed, so that the caller can warn naming the record and the field
//! (never the value):
//!
//! - a backslash (the value separator) becomes `/`, except in free text (LT, ST, UT);
//! - in a person name, `=` (which starts the ideographic group: `Doe=X^Jane` shows as
//!   "Doe") becomes a space, a title such as "Dr." at the start of the given name moves to
//!   the prefix component (`Example^Dr Alice` → `Example^Alice^^Dr`), components past the
//!   fifth join the fifth, and a group over 64 characters is shortened by cutting its
//!   longest components first, so the given name survives a very long family name;
//! - a name or description longer than its VR allows is cut at a word boundary when one
//!   is near. Identifiers and codes (subject ID, accession number, UIDs, AE titles,
//!   modality) are never cut: a cut subject ID could be another subject's, so such a
//!   value is refused by the store's checks instead;
//! - an entry without a Scheduled Station AE Title takes one made from its station name
//!   under the AE rules (`3T Prisma Fit` → `3T_PRISMA_FIT`), and one without a Modality
//!   takes `OT` (other), so no item goes out with these empty.

use std::fmt;

use dicom_core::VR;

use crate::model::{TEXT_ATTRIBUTES, WorklistEntry};
use crate::validate::{AE_MAX, PN_GROUP_MAX, ae_problem};

/// The attributes whose values [`fit`] may shorten: names and descriptions.
const SHORTENED: &[&str] = &[
    "patient_name",
    "study_description",
    "referring_physician_name",
    "requested_procedure_description",
    "station_name",
    "performing_physician_name",
    "sps_description",
    "sps_location",
    "protocol_code_meaning",
];

/// Titles that go to a person name's prefix component, compared without a final `.` and
/// ignoring case.
const TITLES: &[&str] = &["dr", "prof", "mr", "mrs", "ms", "miss", "mx", "sir", "rev"];

/// The Modality of an entry whose source gives none: "other" (PS3.3 C.7.3.1.1.1).
pub const UNKNOWN_MODALITY: &str = "OT";

/// What [`fit`] did to one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// Backslashes became `/`.
    Backslash,
    /// A person name's `=` became a space.
    GroupSeparator,
    /// A title moved from the given name to the prefix component.
    Title,
    /// Person name components past the fifth were joined into the fifth.
    Components,
    /// The value was cut from this many characters.
    Cut {
        /// Its length before.
        from: usize,
    },
    /// A value was made because the source gave none (station AE title from the station
    /// name, Modality `OT`).
    Filled,
}

impl fmt::Display for Fix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fix::Backslash => f.write_str("backslash replaced by /"),
            Fix::GroupSeparator => f.write_str("'=' in a person name replaced by a space"),
            Fix::Title => f.write_str("title moved to the name prefix"),
            Fix::Components => f.write_str("name components past the fifth joined"),
            Fix::Cut { from } => write!(f, "cut from {from} characters"),
            Fix::Filled => f.write_str("empty, filled in"),
        }
    }
}

/// One change [`fit`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    /// The attribute's column ([`crate::model::TextAttribute::column`]).
    pub column: &'static str,
    /// What was done.
    pub fix: Fix,
}

/// Fits `entry`'s values to what consoles accept (the rules: this module's doc) and says
/// what it changed.
pub fn fit(entry: &mut WorklistEntry) -> Vec<Fitted> {
    let mut changed = Vec::new();
    fill_station_and_modality(entry, &mut changed);
    for attribute in TEXT_ATTRIBUTES {
        if !SHORTENED.contains(&attribute.column) {
            continue;
        }
        let Some(value) = (attribute.get)(entry) else {
            continue;
        };
        let mut value = value.to_string();
        let mut fixes = Vec::new();
        if !matches!(attribute.vr, VR::LT | VR::ST | VR::UT) && value.contains('\\') {
            value = value.replace('\\', "/");
            fixes.push(Fix::Backslash);
        }
        if attribute.vr == VR::PN {
            fit_person_name(&mut value, &mut fixes);
        } else {
            let from = value.chars().count();
            if from > attribute.max_chars {
                value = cut_at_word(&value, attribute.max_chars);
                fixes.push(Fix::Cut { from });
            }
        }
        if fixes.is_empty() {
            continue;
        }
        (attribute.set)(entry, Some(value));
        changed.extend(fixes.into_iter().map(|fix| Fitted {
            column: attribute.column,
            fix,
        }));
    }
    changed
}

/// Gives an entry without a station AE title one made from its station name, and one
/// without a modality `OT`.
fn fill_station_and_modality(entry: &mut WorklistEntry, changed: &mut Vec<Fitted>) {
    let blank = |v: &Option<String>| v.as_deref().is_none_or(|v| v.trim().is_empty());
    if blank(&entry.station_ae_title)
        && let Some(ae) = entry.station_name.as_deref().and_then(ae_title_from)
    {
        entry.station_ae_title = Some(ae);
        changed.push(Fitted {
            column: "station_ae_title",
            fix: Fix::Filled,
        });
    }
    if blank(&entry.modality) {
        entry.modality = Some(UNKNOWN_MODALITY.to_string());
        changed.push(Fitted {
            column: "modality",
            fix: Fix::Filled,
        });
    }
}

/// An AE title made from a name: ASCII letters and digits upper-cased, every other run of
/// characters one `_`, at most 16 characters; `None` when nothing is left.
pub fn ae_title_from(name: &str) -> Option<String> {
    let mut ae = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            ae.push(c.to_ascii_uppercase());
        } else if !ae.is_empty() && !ae.ends_with('_') {
            ae.push('_');
        }
    }
    let ae: String = ae.chars().take(AE_MAX).collect();
    let ae = ae.trim_end_matches('_').to_string();
    (ae_problem(&ae).is_none()).then_some(ae)
}

/// The rules for a person name (this module's doc), recording what they changed.
fn fit_person_name(value: &mut String, fixes: &mut Vec<Fix>) {
    if value.contains('=') {
        *value = value.replace('=', " ");
        fixes.push(Fix::GroupSeparator);
    }
    let mut components: Vec<String> = value.split('^').map(|c| c.trim().to_string()).collect();
    if components.len() > 5 {
        let tail = components.split_off(4).join(" ");
        components.push(tail);
        fixes.push(Fix::Components);
    }
    if move_title(&mut components) {
        fixes.push(Fix::Title);
    }
    let from = joined_len(&components);
    if from > PN_GROUP_MAX {
        shorten_components(&mut components);
        fixes.push(Fix::Cut { from });
    }
    while components.len() > 1 && components.last().is_some_and(String::is_empty) {
        components.pop();
    }
    let fitted = components.join("^");
    if fixes.is_empty() {
        return;
    }
    *value = fitted;
}

/// Moves a title at the start of the given name (the second component) to the prefix
/// (the fourth), when the prefix is empty; whether it did.
fn move_title(components: &mut Vec<String>) -> bool {
    let Some(given) = components.get(1) else {
        return false;
    };
    let Some(first) = given.split_whitespace().next() else {
        return false;
    };
    let bare = first.trim_end_matches('.').to_ascii_lowercase();
    if !TITLES.contains(&bare.as_str()) {
        return false;
    }
    if components.get(3).is_some_and(|p| !p.is_empty()) {
        return false;
    }
    let title = first.to_string();
    let rest = given[first.len()..].trim().to_string();
    while components.len() < 4 {
        components.push(String::new());
    }
    components[1] = rest;
    components[3] = title;
    true
}

/// The length in characters of the components joined with `^`.
fn joined_len(components: &[String]) -> usize {
    components.iter().map(|c| c.chars().count()).sum::<usize>() + components.len() - 1
}

/// Cuts the longest component, again and again, until the group fits in
/// [`PN_GROUP_MAX`] characters.
fn shorten_components(components: &mut [String]) {
    while joined_len(components) > PN_GROUP_MAX {
        let excess = joined_len(components) - PN_GROUP_MAX;
        let Some(longest) = (0..components.len()).max_by_key(|&i| components[i].chars().count())
        else {
            return;
        };
        let len = components[longest].chars().count();
        let keep = len.saturating_sub(excess).max(1);
        if keep >= len {
            // Every component is one character: cannot happen within 64 characters and
            // five components, but never loop.
            return;
        }
        components[longest] = cut_at_word(&components[longest], keep);
    }
}

/// `s` cut to at most `max` characters: at the last space when that keeps at least half
/// of them, else exactly at `max`; without trailing blanks.
fn cut_at_word(s: &str, max: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= max {
        return s.to_string();
    }
    let at_word = chars[max] == ' ' || chars[max - 1] == ' ';
    let end = if at_word {
        max
    } else {
        chars[..max]
            .iter()
            .rposition(|&c| c == ' ')
            .filter(|&i| i >= max / 2)
            .unwrap_or(max)
    };
    chars[..end]
        .iter()
        .collect::<String>()
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn entry() -> WorklistEntry {
        let mut e = WorklistEntry::new(
            "calpendo",
            "101",
            "SUB101",
            date(2026, 12, 4).at(9, 0, 0, 0),
        );
        e.modality = Some("MR".into());
        e.station_ae_title = Some("MRI_3T".into());
        e
    }

    fn fitted_name(name: &str) -> (Option<String>, Vec<Fix>) {
        let mut e = entry();
        e.patient_name = Some(name.into());
        let fixes = fit(&mut e).into_iter().map(|f| f.fix).collect();
        (e.patient_name, fixes)
    }

    #[test]
    fn an_equals_sign_does_not_start_a_group() {
        let (name, fixes) = fitted_name("Doe=X^Jane");
        assert_eq!(name.as_deref(), Some("Doe X^Jane"));
        assert_eq!(fixes, [Fix::GroupSeparator]);
    }

    #[test]
    fn a_title_moves_to_the_prefix() {
        let (name, fixes) = fitted_name("Example^Dr. Alice");
        assert_eq!(name.as_deref(), Some("Example^Alice^^Dr."));
        assert_eq!(fixes, [Fix::Title]);
        assert_eq!(fitted_name("Smith^Prof").0.as_deref(), Some("Smith^^^Prof"));
        // A given name that only looks like one, and a prefix already there.
        assert_eq!(fitted_name("Drew^Drummond").1, []);
        assert_eq!(fitted_name("Smith^Dr Alice^^Prof").1, []);
    }

    #[test]
    fn a_long_family_name_is_cut_before_the_given_name() {
        let family = "Wolfeschlegelsteinhausenbergerdorff Wolfeschlegelsteinhausenberger";
        let (name, fixes) = fitted_name(&format!("{family}^Hubert Blaine"));
        let name = name.expect("name");
        assert!(name.chars().count() <= PN_GROUP_MAX, "{name}");
        assert!(name.ends_with("^Hubert Blaine"), "{name}");
        assert!(
            name.starts_with("Wolfeschlegelsteinhausenbergerdorff"),
            "{name}"
        );
        assert_eq!(fixes, [Fix::Cut { from: 80 }]);
        assert_eq!(crate::validate::pn_problem(&name), None);
    }

    #[test]
    fn ten_thousand_characters_fit_and_are_said() {
        let (name, fixes) = fitted_name(&format!("{}^Jane", "x".repeat(10_000)));
        let name = name.expect("name");
        assert_eq!(name.chars().count(), PN_GROUP_MAX);
        assert!(name.ends_with("^Jane"));
        assert_eq!(fixes, [Fix::Cut { from: 10_005 }]);
    }

    #[test]
    fn extra_components_join_the_fifth() {
        let (name, fixes) = fitted_name("a^b^c^d^e^f^g");
        assert_eq!(name.as_deref(), Some("a^b^c^d^e f g"));
        assert_eq!(fixes, [Fix::Components]);
    }

    #[test]
    fn descriptions_are_cut_at_a_word() {
        let mut e = entry();
        e.station_name = Some("3T Diagnostic Scanner".into());
        e.study_description = Some(format!("{} tail", "word ".repeat(14)));
        e.sps_location = Some("Room\\B".into());
        let fixes = fit(&mut e);
        assert_eq!(e.station_name.as_deref(), Some("3T Diagnostic"));
        assert_eq!(e.study_description.as_deref().map(str::len), Some(64));
        assert_eq!(e.sps_location.as_deref(), Some("Room/B"));
        let columns: Vec<(&str, Fix)> = fixes.into_iter().map(|f| (f.column, f.fix)).collect();
        assert_eq!(
            columns,
            [
                ("study_description", Fix::Cut { from: 75 }),
                ("station_name", Fix::Cut { from: 21 }),
                ("sps_location", Fix::Backslash),
            ]
        );
    }

    #[test]
    fn identifiers_are_never_cut() {
        let mut e = entry();
        e.patient_id = "S".repeat(80);
        assert_eq!(fit(&mut e), []);
        assert_eq!(
            e.patient_id.len(),
            80,
            "refused by the store's checks instead"
        );
    }

    #[test]
    fn an_empty_station_and_modality_are_filled() {
        let mut e = entry();
        e.station_ae_title = None;
        e.modality = None;
        e.station_name = Some("EEG Lab (room A)".into());
        let fixes = fit(&mut e);
        assert_eq!(e.station_ae_title.as_deref(), Some("EEG_LAB_ROOM_A"));
        assert_eq!(e.modality.as_deref(), Some(UNKNOWN_MODALITY));
        assert_eq!(fixes.len(), 2);
        assert!(fixes.iter().all(|f| f.fix == Fix::Filled));
        assert_eq!(ae_title_from("  "), None);
        assert_eq!(
            ae_title_from("Siemens MAGNETOM Prisma Fit 3T").as_deref(),
            Some("SIEMENS_MAGNETOM")
        );
    }

    #[test]
    fn a_fitted_entry_has_nothing_left_to_fit() {
        let mut e = entry();
        e.patient_name = Some(format!("Doe=X^Dr {}\\y", "z".repeat(90)));
        e.station_name = Some("x".repeat(40));
        assert!(!fit(&mut e).is_empty());
        assert_eq!(fit(&mut e), [], "idempotent");
        assert_eq!(e.problems(), []);
    }
}
