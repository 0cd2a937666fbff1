//! Patient ID and patient name templates: `sub_{study_id}_ses_{instance}_fam_{family_id}
//! _site_{site}`. Pure.
//!
//! A placeholder names a REDCap field, or `site` (the configured site) or `instance`
//! (the visit's instance field). The values of `study_id` and `family_id` are shaped as
//! Pylantir shapes them (see [`crate::shape`]); other fields are taken as REDCap sends
//! them. `{{` and `}}` stand for literal braces.

use std::fmt;

/// Pylantir's PatientID: `sub_{study}_ses_{instance}_fam_{family}_site_{site}`.
pub const DEFAULT_PATIENT_ID: &str = "sub_{study_id}_ses_{instance}_fam_{family_id}_site_{site}";
/// Pylantir's PatientName: `cpip-id-{study}^fa-{family}`.
pub const DEFAULT_PATIENT_NAME: &str = "cpip-id-{study_id}^fa-{family_id}";

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Site,
    Instance,
    Field(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// Why a template could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{` without its `}`, or a `}` alone.
    #[error("unbalanced brace at character {0} (write {{{{ or }}}} for a literal brace)")]
    Unbalanced(usize),
    /// `{}` or a name that is not a REDCap field name.
    #[error("{0:?} is not a REDCap field name (lower-case letters, digits and _)")]
    BadName(String),
}

impl Template {
    /// Parses a template.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|(_, n)| *n == '{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().is_some_and(|(_, n)| *n == '}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(TemplateError::Unbalanced(i)),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some((_, '}')) => break,
                            Some((_, ch)) => name.push(ch),
                            None => return Err(TemplateError::Unbalanced(i)),
                        }
                    }
                    let valid = !name.is_empty()
                        && name
                            .chars()
                            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
                    if !valid {
                        return Err(TemplateError::BadName(name));
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(match name.as_str() {
                        "site" => Piece::Site,
                        "instance" => Piece::Instance,
                        _ => Piece::Field(name),
                    });
                }
                _ => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template { pieces })
    }

    /// The REDCap fields the template names, in order.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Field(f) => Some(f.as_str()),
            _ => None,
        })
    }

    /// The template with its placeholders filled: `field` gives a REDCap field's value
    /// (empty when absent).
    pub fn render(&self, site: &str, instance: &str, field: &dyn Fn(&str) -> String) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Site => out.push_str(site),
                Piece::Instance => out.push_str(instance),
                Piece::Field(f) => out.push_str(&field(f)),
            }
        }
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.pieces {
            match p {
                Piece::Text(t) => f.write_str(&t.replace('{', "{{").replace('}', "}}"))?,
                Piece::Site => f.write_str("{site}")?,
                Piece::Instance => f.write_str("{instance}")?,
                Piece::Field(n) => write!(f, "{{{n}}}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_render_pylantirs_identifiers() {
        let id = Template::parse(DEFAULT_PATIENT_ID).expect("default parses");
        let name = Template::parse(DEFAULT_PATIENT_NAME).expect("default parses");
        let field = |f: &str| match f {
            "study_id" => "FAKE101".to_string(),
            "family_id" => "FAKE01".to_string(),
            _ => String::new(),
        };
        assert_eq!(
            id.render("792", "1", &field),
            "sub_FAKE101_ses_1_fam_FAKE01_site_792"
        );
        assert_eq!(name.render("792", "1", &field), "cpip-id-FAKE101^fa-FAKE01");
        assert_eq!(
            id.fields().collect::<Vec<_>>(),
            vec!["study_id", "family_id"]
        );
        assert_eq!(id.to_string(), DEFAULT_PATIENT_ID);
    }

    #[test]
    fn braces_and_bad_names() {
        let t = Template::parse("{{x}}-{subject}").expect("parses");
        assert_eq!(t.render("", "", &|f: &str| f.to_uppercase()), "{x}-SUBJECT");
        assert_eq!(Template::parse("a{b"), Err(TemplateError::Unbalanced(1)));
        assert_eq!(Template::parse("a}b"), Err(TemplateError::Unbalanced(1)));
        assert_eq!(
            Template::parse("{}"),
            Err(TemplateError::BadName(String::new()))
        );
        assert_eq!(
            Template::parse("{Study ID}"),
            Err(TemplateError::BadName("Study ID".into()))
        );
    }
}
