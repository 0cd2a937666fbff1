//! The patient name's search-key columns (`patient_name_key`, `patient_name_groups`,
//! schema version 5): their values for a name ([`worklist_model::pn::name_search_key`]),
//! written with every entry, and their recomputation when the store opens.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use worklist_model::pn;

use crate::error::StoreError;

/// The columns derived from the patient name, written with an entry's values (never read
/// back into an entry), in [`values`]' order.
pub(crate) const COLUMNS: [&str; 2] = ["patient_name_key", "patient_name_groups"];

/// The values of [`COLUMNS`] for a patient name.
pub(crate) fn values(patient_name: Option<&str>) -> [Value; 2] {
    let (key, groups) = pn::name_search_key(patient_name);
    [key.map_or(Value::Null, Value::Text), Value::Integer(groups)]
}

/// The `store_settings` row naming the case folding that wrote the name keys.
const FOLDING_SETTING: &str = "patient_name_key_folding";

/// Computes the name search keys of the rows that have none yet (written before schema
/// version 5, or by an older mwlbridge still running), or of every row when they were
/// written with another case folding ([`pn::fold_version`]), in one transaction. Takes
/// the write lock only when there is something to do.
pub(crate) fn refresh(conn: &mut Connection) -> Result<(), StoreError> {
    let current = pn::fold_version();
    let needs = |conn: &Connection| -> Result<(bool, bool), rusqlite::Error> {
        let folding: Option<String> = conn
            .query_row(
                "SELECT value FROM store_settings WHERE name = ?1",
                [FOLDING_SETTING],
                |r| r.get(0),
            )
            .optional()?;
        let refold = folding.as_deref() != Some(current.as_str());
        let missing: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM worklist_entries WHERE patient_name_groups IS NULL)",
            [],
            |r| r.get(0),
        )?;
        Ok((refold, missing))
    };
    if needs(conn)? == (false, false) {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Again under the write lock: another process may have done it meanwhile.
    let (refold, missing) = needs(&tx)?;
    if refold || missing {
        let rows: Vec<(i64, Option<String>)> = {
            let sql = if refold {
                "SELECT id, patient_name FROM worklist_entries"
            } else {
                "SELECT id, patient_name FROM worklist_entries WHERE patient_name_groups IS NULL"
            };
            let mut stmt = tx.prepare(sql)?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        let sets: Vec<String> = COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ?{}", i + 2))
            .collect();
        let mut stmt = tx.prepare(&format!(
            "UPDATE worklist_entries SET {} WHERE id = ?1",
            sets.join(", ")
        ))?;
        for (id, name) in &rows {
            let [key, groups] = values(name.as_deref());
            stmt.execute(params![id, key, groups])?;
        }
        drop(stmt);
        tx.execute(
            "INSERT INTO store_settings (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            params![FOLDING_SETTING, current],
        )?;
        tracing::info!(
            rows = rows.len(),
            folding = %current,
            "patient name search keys computed"
        );
    }
    tx.commit()?;
    Ok(())
}
