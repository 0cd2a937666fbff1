//! The project's data dictionary: its fields, their instruments (forms), which
//! instruments repeat, and the `content=metadata` answer built from them.

use serde_json::{Map, Value, json};

/// Why a [`Project`] cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProjectError {
    /// A project needs at least its record id field.
    #[error("a project needs at least one field (the record id)")]
    NoFields,
    /// Two fields share a name.
    #[error("duplicate field {0:?}")]
    DuplicateField(String),
    /// A repeating instrument that has no field.
    #[error("repeating instrument {0:?} has no field")]
    UnknownRepeatingForm(String),
    /// The record id field (the first field) is on a repeating instrument.
    #[error("the record id field {field:?} is on the repeating instrument {form:?}")]
    RecordIdRepeats {
        /// The record id field.
        field: String,
        /// Its instrument.
        form: String,
    },
}

/// One row of the data dictionary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Variable name, e.g. `mri_date`.
    pub field_name: String,
    /// Instrument (form) it belongs to, e.g. `mri`.
    pub form_name: String,
    /// `text`, `radio`, `dropdown`, `yesno`, `notes`, ...
    pub field_type: String,
    /// The question as shown on the form.
    pub field_label: String,
    /// `select_choices_or_calculations`, e.g. `1, Male | 2, Female` (empty if none).
    pub choices: String,
    /// `text_validation_type_or_show_slider_number`: `date_ymd`, `time`,
    /// `time_hh_mm_ss`, `integer`, `number`, ... (empty if none).
    pub validation: String,
}

impl Field {
    /// A field of any type, without choices or validation.
    pub fn new(name: &str, form: &str, field_type: &str, label: &str) -> Field {
        Field {
            field_name: name.to_owned(),
            form_name: form.to_owned(),
            field_type: field_type.to_owned(),
            field_label: label.to_owned(),
            choices: String::new(),
            validation: String::new(),
        }
    }

    /// A free-text field.
    pub fn text(name: &str, form: &str, label: &str) -> Field {
        Field::new(name, form, "text", label)
    }

    /// The same field with this text validation (`date_ymd`, `time`, ...).
    pub fn validated(mut self, validation: &str) -> Field {
        self.validation = validation.to_owned();
        self
    }

    /// The same field with these choices (`1, Male | 2, Female`).
    pub fn with_choices(mut self, choices: &str) -> Field {
        self.choices = choices.to_owned();
        self
    }

    /// The field as REDCap's JSON metadata export shows it: every column of the data
    /// dictionary, all strings.
    fn to_json(&self) -> Value {
        json!({
            "field_name": self.field_name,
            "form_name": self.form_name,
            "section_header": "",
            "field_type": self.field_type,
            "field_label": self.field_label,
            "select_choices_or_calculations": self.choices,
            "field_note": "",
            "text_validation_type_or_show_slider_number": self.validation,
            "text_validation_min": "",
            "text_validation_max": "",
            "identifier": "",
            "branching_logic": "",
            "required_field": "",
            "custom_alignment": "",
            "question_number": "",
            "matrix_group_name": "",
            "matrix_ranking": "",
            "field_annotation": "",
        })
    }
}

/// A REDCap project's layout: its fields in data-dictionary order (the first is the
/// record id field) and its repeating instruments. Classic (not longitudinal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    fields: Vec<Field>,
    repeating: Vec<String>,
}

impl Default for Project {
    /// [`Project::cpip`].
    fn default() -> Self {
        Project::cpip()
    }
}

impl Project {
    /// A project with these fields (the first one is the record id) and these
    /// repeating instruments.
    pub fn new(fields: Vec<Field>, repeating_forms: &[&str]) -> Result<Project, ProjectError> {
        let first = fields.first().ok_or(ProjectError::NoFields)?;
        let mut seen = std::collections::HashSet::new();
        for f in &fields {
            if !seen.insert(f.field_name.as_str()) {
                return Err(ProjectError::DuplicateField(f.field_name.clone()));
            }
        }
        for form in repeating_forms {
            if !fields.iter().any(|f| f.form_name == *form) {
                return Err(ProjectError::UnknownRepeatingForm((*form).to_owned()));
            }
            if first.form_name == *form {
                return Err(ProjectError::RecordIdRepeats {
                    field: first.field_name.clone(),
                    form: first.form_name.clone(),
                });
            }
        }
        Ok(Project {
            repeating: repeating_forms.iter().map(|f| (*f).to_owned()).collect(),
            fields,
        })
    }

    /// The layout Pylantir's REDCap source expects (its CPIP projects): `record_id,
    /// study_id, family_id, youth_dob_y, demo_sex, neuro_pcp` on the `baseline`
    /// instrument, and the repeating instrument `mri` with `mri_instance, mri_date`
    /// (`date_ymd`), `mri_time` (`time`), `mri_wt_lbs, scheduled_date, scheduled_time`
    /// (free text, as staff type them), `referring_physician, performing_physician,
    /// station_name, status`.
    pub fn cpip() -> Project {
        let b = "baseline";
        let m = "mri";
        let fields = vec![
            Field::text("record_id", b, "Record ID"),
            Field::text("study_id", b, "Study ID"),
            Field::text("family_id", b, "Family ID"),
            Field::text("youth_dob_y", b, "Youth year of birth").validated("integer"),
            Field::new("demo_sex", b, "radio", "Sex assigned at birth")
                .with_choices("1, Male | 2, Female"),
            Field::new(
                "neuro_pcp",
                b,
                "yesno",
                "Followed by neurology (not primary care)",
            ),
            Field::text("mri_instance", m, "MRI session number").validated("integer"),
            Field::text("mri_date", m, "MRI date").validated("date_ymd"),
            Field::text("mri_time", m, "MRI start time").validated("time"),
            Field::text("mri_wt_lbs", m, "Weight (lbs)").validated("number"),
            Field::text("scheduled_date", m, "Scheduled date (as booked)"),
            Field::text("scheduled_time", m, "Scheduled time (as booked)"),
            Field::text("referring_physician", m, "Referring physician"),
            Field::text("performing_physician", m, "Performing physician"),
            Field::text("station_name", m, "Scanner station name"),
            Field::text("status", m, "Visit status"),
        ];
        // The list above satisfies every rule `new` checks; build it directly so that
        // this constructor cannot fail.
        Project {
            fields,
            repeating: vec![m.to_owned()],
        }
    }

    /// The record id field: the first field of the data dictionary.
    pub fn record_id_field(&self) -> &str {
        self.fields
            .first()
            .map_or("record_id", |f| f.field_name.as_str())
    }

    /// All fields, in data-dictionary order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The repeating instruments.
    pub fn repeating_forms(&self) -> &[String] {
        &self.repeating
    }

    /// Whether `form` is a repeating instrument.
    pub fn is_repeating(&self, form: &str) -> bool {
        self.repeating.iter().any(|r| r == form)
    }

    /// The instruments, in the order their first field appears.
    pub fn forms(&self) -> Vec<&str> {
        let mut forms: Vec<&str> = Vec::new();
        for f in &self.fields {
            if !forms.contains(&f.form_name.as_str()) {
                forms.push(&f.form_name);
            }
        }
        forms
    }

    /// The field named `name`, if the project has it.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.field_name == name)
    }

    /// The columns of a full flat export, in REDCap's order: each instrument's fields
    /// followed by its `{form}_complete` status field.
    pub(crate) fn export_columns(&self) -> Vec<Column> {
        let mut columns = Vec::with_capacity(self.fields.len() + 4);
        for form in self.forms() {
            for f in self.fields.iter().filter(|f| f.form_name == form) {
                columns.push(Column {
                    name: f.field_name.clone(),
                    form: form.to_owned(),
                });
            }
            columns.push(Column {
                name: format!("{form}_complete"),
                form: form.to_owned(),
            });
        }
        columns
    }

    /// The `content=metadata` answer: the data dictionary, optionally only some
    /// fields (`fields[]`) and instruments (`forms[]`); both empty means all.
    pub(crate) fn metadata(&self, fields: &[String], forms: &[String]) -> Value {
        let all = fields.is_empty() && forms.is_empty();
        let rows = self
            .fields
            .iter()
            .filter(|f| all || fields.contains(&f.field_name) || forms.contains(&f.form_name))
            .map(Field::to_json)
            .collect();
        Value::Array(rows)
    }

    /// The `content=project` answer: the project information REDCap exports.
    pub(crate) fn info(&self) -> Value {
        let mut info = Map::new();
        info.insert("project_id".into(), json!(1));
        info.insert("project_title".into(), json!("Fake REDCap project"));
        info.insert("is_longitudinal".into(), json!(0));
        info.insert(
            "has_repeating_instruments_or_events".into(),
            json!(i32::from(!self.repeating.is_empty())),
        );
        info.insert("record_autonumbering_enabled".into(), json!(0));
        Value::Object(info)
    }
}

/// One column of a flat export and the instrument it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) form: String,
}
