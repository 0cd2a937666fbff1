//! The admin interface's API tokens, as stored: a name, a role, a public id (the part of a
//! token used to find its row) and a hash of its secret. Making and checking the hash is
//! the admin interface's business; the store never sees a secret.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    /// Read the worklist, sync runs and status.
    Read,
    /// Everything `read` may, plus manual entries, status overrides and "sync now".
    Write,
}

impl TokenRole {
    /// The stored name: `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRole::Read => "read",
            TokenRole::Write => "write",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<TokenRole> {
        match s {
            "read" => Some(TokenRole::Read),
            "write" => Some(TokenRole::Write),
            _ => None,
        }
    }
}

/// A stored token (without its secret, which is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Row id.
    pub id: i64,
    /// The admin's name for it (unique among tokens not revoked).
    pub name: String,
    /// The public part of the token, used to find its row.
    pub public_id: String,
    /// What it may do.
    pub role: TokenRole,
    /// The hash of its secret (a PHC string).
    pub secret_hash: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last accepted, if ever.
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// Why a token could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum TokenStoreError {
    /// A token not revoked has this name already.
    #[error("a token named {0:?} exists already (revoke it first, or choose another name)")]
    NameTaken(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

const COLUMNS: &str =
    "id, name, public_id, role, secret_hash, created_at, last_used_at, revoked_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<(i64, [Option<String>; 7])> {
    Ok((
        row.get(0)?,
        [
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
        ],
    ))
}

fn into_record((id, cols): (i64, [Option<String>; 7])) -> Result<TokenRecord, StoreError> {
    let corrupt = |column: &'static str, reason: String| StoreError::Corrupt {
        row_id: id,
        column,
        reason,
    };
    let [name, public_id, role, hash, created, used, revoked] = cols;
    let time = |column: &'static str, v: Option<String>| -> Result<Option<Timestamp>, StoreError> {
        v.map(|t| t.parse().map_err(|e| corrupt(column, format!("{e}"))))
            .transpose()
    };
    Ok(TokenRecord {
        id,
        name: name.unwrap_or_default(),
        public_id: public_id.unwrap_or_default(),
        role: role
            .as_deref()
            .and_then(TokenRole::parse)
            .ok_or_else(|| corrupt("role", format!("{role:?}")))?,
        secret_hash: hash.unwrap_or_default(),
        created_at: time("created_at", created)?
            .ok_or_else(|| corrupt("created_at", "missing".into()))?,
        last_used_at: time("last_used_at", used)?,
        revoked_at: time("revoked_at", revoked)?,
    })
}

/// Stores a new token.
pub(crate) fn insert(
    conn: &Connection,
    name: &str,
    public_id: &str,
    role: TokenRole,
    secret_hash: &str,
    now: Timestamp,
) -> Result<TokenRecord, TokenStoreError> {
    let taken: Option<i64> = conn
        .query_row(
            "SELECT id FROM api_tokens WHERE name = ?1 AND revoked_at IS NULL",
            [name],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::from)?;
    if taken.is_some() {
        return Err(TokenStoreError::NameTaken(name.to_string()));
    }
    conn.execute(
        "INSERT INTO api_tokens (name, public_id, role, secret_hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![name, public_id, role.as_str(), secret_hash, now.to_string()],
    )
    .map_err(StoreError::from)?;
    let id = conn.last_insert_rowid();
    let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE id = ?1");
    let raw = conn
        .query_row(&sql, [id], from_row)
        .map_err(StoreError::from)?;
    Ok(into_record(raw)?)
}

/// The token with this public id, unless it was revoked.
pub(crate) fn active(
    conn: &Connection,
    public_id: &str,
) -> Result<Option<TokenRecord>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM api_tokens WHERE public_id = ?1 AND revoked_at IS NULL");
    conn.prepare_cached(&sql)?
        .query_row([public_id], from_row)
        .optional()?
        .map(into_record)
        .transpose()
}

/// Every token (revoked ones too), oldest first.
pub(crate) fn list(conn: &Connection) -> Result<Vec<TokenRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens ORDER BY id");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], from_row)?;
    rows.map(|r| r.map_err(StoreError::from).and_then(into_record))
        .collect()
}

/// Revokes the active token called `name`; false when there is none.
pub(crate) fn revoke(conn: &Connection, name: &str, now: Timestamp) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE api_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
        params![name, now.to_string()],
    )?;
    Ok(n > 0)
}

/// Records that a token was accepted.
pub(crate) fn touch(conn: &Connection, id: i64, now: Timestamp) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1",
        params![id, now.to_string()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn create_find_revoke_reuse_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("w.db")).expect("open");
        let now = Timestamp::now();
        let t = store
            .insert_token("ci", "pub1", TokenRole::Read, "$hash1", now)
            .expect("insert");
        assert_eq!(t.role, TokenRole::Read);
        assert!(matches!(
            store.insert_token("ci", "pub2", TokenRole::Write, "$hash2", now),
            Err(TokenStoreError::NameTaken(_))
        ));
        let found = store.active_token("pub1").expect("find").expect("found");
        assert_eq!(found.secret_hash, "$hash1");
        store.touch_token(found.id, now).expect("touch");
        assert!(
            store
                .active_token("pub1")
                .expect("find")
                .expect("found")
                .last_used_at
                .is_some()
        );
        assert!(store.revoke_token("ci", now).expect("revoke"));
        assert!(!store.revoke_token("ci", now).expect("revoke twice"));
        assert!(store.active_token("pub1").expect("find").is_none());
        store
            .insert_token("ci", "pub3", TokenRole::Write, "$hash3", now)
            .expect("the name is free again");
        let all = store.list_tokens().expect("list");
        assert_eq!(all.len(), 2);
        assert!(all[0].revoked_at.is_some());
    }
}
