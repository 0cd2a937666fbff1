//! `mwlbridge export`: the worklist as DICOM worklist files for DCMTK `wlmscpfs` or
//! Orthanc's worklist plugin.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context;
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use mwl_scp::{MWL_FIND, MwlQuery, ResponseCharset, identity};
use worklist_store::{EntryFilter, StepStatus, identifiers};

use crate::failure::Failure;
use crate::load::{config_only, open_store, response_charset};

/// Prefix of the files this command writes, so a new export replaces an old one.
const FILE_PREFIX: &str = "mwlbridge-";

/// Writes one `.wl` file per step offered to consoles (the statuses a query without one
/// is answered with), plus `lockfile`.
pub async fn run(config_path: &Path, dir: &Path) -> Result<(), Failure> {
    let config = config_only(config_path)?;
    let charset = response_charset(&config)?;
    let store = open_store(&config)?;
    let filter = EntryFilter {
        statuses: StepStatus::ALL
            .into_iter()
            .filter(|s| s.offered_by_default())
            .collect(),
        ..EntryFilter::default()
    };
    let entries = store
        .run(move |s| s.list(&filter))
        .await
        .context("reading the worklist")
        .map_err(Failure::Runtime)?;
    let written =
        write_files(dir, entries.iter().map(|s| &s.entry), charset).map_err(Failure::Runtime)?;
    println!("{written} worklist files written to {}", dir.display());
    Ok(())
}

/// Writes the files; returns how many. Earlier exports' files are removed first.
pub fn write_files<'a>(
    dir: &Path,
    entries: impl Iterator<Item = &'a worklist_store::WorklistEntry>,
    charset: ResponseCharset,
) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for old in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = old?.path();
        let ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(FILE_PREFIX) && n.ends_with(".wl"));
        if ours {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    // wlmscpfs refuses a worklist directory without this file.
    std::fs::write(dir.join("lockfile"), b"")
        .with_context(|| format!("writing {}", dir.join("lockfile").display()))?;
    let query = MwlQuery::every_attribute();
    let mut used = HashSet::new();
    let mut n = 0;
    for entry in entries {
        let mut dataset = query.response(entry, charset);
        // Type 2 return keys we hold no value for: present and empty, as wlmscpfs expects
        // of a worklist file (it warns about each file without them).
        for tag in [
            tags::REFERENCED_STUDY_SEQUENCE,
            tags::REFERENCED_PATIENT_SEQUENCE,
        ] {
            if dataset.get(tag).is_none() {
                dataset.put(DataElement::new(
                    tag,
                    VR::SQ,
                    DataSetSequence::<InMemDicomObject>::empty(),
                ));
            }
        }
        // Type 1C and absent without a protocol: wlmscpfs ignores a file whose Scheduled
        // Protocol Code Sequence is present but empty ("incomplete").
        if entry.protocol_code_value.is_none() {
            dataset.update_value(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE, |v| {
                for item in v.items_mut().into_iter().flatten() {
                    item.remove_element(tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE);
                }
            });
        }
        let instance = identifiers::study_instance_uid(
            &entry.source,
            &format!("{}/worklist-file", entry.source_record_id),
        );
        let meta = FileMetaTableBuilder::new()
            .media_storage_sop_class_uid(MWL_FIND)
            .media_storage_sop_instance_uid(instance)
            .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
            .implementation_class_uid(identity::IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(identity::implementation_version_name())
            .build()
            .context("building the file meta information")?;
        let name = unique_name(
            &mut used,
            &sanitize(&format!("{}-{}", entry.source, entry.source_record_id)),
        );
        let path = dir.join(name);
        dataset
            .with_exact_meta(meta)
            .write_to_file(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        n += 1;
    }
    Ok(n)
}

/// The file name of an entry whose sanitized identity is `stem`: record ids that differ
/// only in characters a file name cannot keep (`a/b`, `a b`, `a_b`) get `-2`, `-3`, ...
/// so no file overwrites another.
fn unique_name(used: &mut HashSet<String>, stem: &str) -> String {
    let mut name = format!("{FILE_PREFIX}{stem}.wl");
    let mut k = 2;
    while !used.insert(name.clone()) {
        name = format!("{FILE_PREFIX}{stem}-{k}.wl");
        k += 1;
    }
    name
}

/// A file-name-safe form of an identity.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_sanitize_alike_get_distinct_file_names() {
        let mut used = HashSet::new();
        let names: Vec<String> = ["a/b", "a b", "a_b", "a_b-2"]
            .iter()
            .map(|id| unique_name(&mut used, &sanitize(&format!("calpendo-{id}"))))
            .collect();
        let distinct: HashSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), 4, "{names:?}");
        assert_eq!(names[0], format!("{FILE_PREFIX}calpendo-a_b.wl"));
        assert_eq!(names[1], format!("{FILE_PREFIX}calpendo-a_b-2.wl"));
    }
}
