//! API tokens: `mwlb_<public id>_<secret>`, where the public id (12 hex digits) finds the
//! stored row and the secret (64 hex digits, 256 random bits) is checked against the
//! stored Argon2id hash. Only the hash is ever stored; the token is shown once, when it is
//! created.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use jiff::Timestamp;
use rand::RngCore;
use sha2::{Digest, Sha256};
use worklist_store::{Store, StoreError, TokenRecord, TokenRole, TokenStoreError};

const PREFIX: &str = "mwlb_";
const PUBLIC_HEX: usize = 12;
const SECRET_HEX: usize = 64;
/// How long a verified token is remembered (its row is still checked on every request,
/// so a revocation takes effect at once; only the Argon2 work is saved).
const VERIFIED_TTL: Duration = Duration::from_secs(300);
/// A token's last use is written at most this often.
const USE_RECORD_INTERVAL_SECS: i64 = 60;
/// At most this many remembered verifications.
const VERIFIED_MAX: usize = 1024;

/// A token just created: the only time its secret exists outside the admin's hands.
#[derive(Debug)]
pub struct NewToken {
    /// The whole token, to hand to the admin.
    pub token: String,
    /// Its stored row.
    pub record: TokenRecord,
}

/// Why a token could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TokenCreateError {
    /// The name is empty, too long or has characters other than letters, digits, `-`,
    /// `_` and `.`.
    #[error("token name {0:?} is not usable: use 1 to 64 letters, digits, '-', '_' or '.'")]
    BadName(String),
    /// Hashing failed.
    #[error("hashing the token failed: {0}")]
    Hash(String),
    /// Storing failed.
    #[error(transparent)]
    Store(#[from] TokenStoreError),
}

/// Why a presented token was refused. The token itself is never part of the message.
#[derive(Debug, thiserror::Error)]
pub enum TokenRejected {
    /// Not of the `mwlb_...` form.
    #[error("malformed token")]
    Malformed,
    /// No active token has this public id (never created, or revoked).
    #[error("unknown or revoked token")]
    Unknown,
    /// The public id is known but the secret is wrong.
    #[error("wrong secret for token {name:?}")]
    WrongSecret {
        /// The token's name (safe to log).
        name: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An accepted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's row id.
    pub token_id: i64,
    /// The token's name.
    pub name: String,
    /// What it may do.
    pub role: TokenRole,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn hasher() -> Argon2<'static> {
    // Argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane): OWASP's baseline.
    Argon2::default()
}

/// Creates, hashes and stores a new token; returns it with its record.
pub fn create_token(
    store: &Store,
    name: &str,
    role: TokenRole,
    now: Timestamp,
) -> Result<NewToken, TokenCreateError> {
    if !valid_name(name) {
        return Err(TokenCreateError::BadName(name.to_string()));
    }
    let mut rng = rand::rng();
    let mut public = [0u8; PUBLIC_HEX / 2];
    let mut secret = [0u8; SECRET_HEX / 2];
    rng.fill_bytes(&mut public);
    rng.fill_bytes(&mut secret);
    let (public, secret) = (hex(&public), hex(&secret));
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| TokenCreateError::Hash(e.to_string()))?;
    let hash = hasher()
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|e| TokenCreateError::Hash(e.to_string()))?
        .to_string();
    let record = store.insert_token(name, &public, role, &hash, now)?;
    Ok(NewToken {
        token: format!("{PREFIX}{public}_{secret}"),
        record,
    })
}

/// Splits a token into its public id and secret, or `None` when it is not of our form.
fn split(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (public, secret) = rest.split_once('_')?;
    let hexdigits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexdigits(public, PUBLIC_HEX) && hexdigits(secret, SECRET_HEX)).then_some((public, secret))
}

/// Checks presented tokens against the store, remembering recent successes so that only
/// the first request of a token pays for Argon2, and running at most one Argon2
/// verification at a time (so guessing cannot take the CPU from the DICOM server).
pub struct TokenVerifier {
    store: Store,
    verified: Mutex<HashMap<[u8; 32], (i64, Instant)>>,
    argon: tokio::sync::Semaphore,
}

impl TokenVerifier {
    /// A verifier over `store`.
    pub fn new(store: Store) -> TokenVerifier {
        TokenVerifier {
            store,
            verified: Mutex::new(HashMap::new()),
            argon: tokio::sync::Semaphore::new(1),
        }
    }

    /// Accepts or refuses `token`. Records the use of an accepted one.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenRejected> {
        let (public, secret) = split(token.trim()).ok_or(TokenRejected::Malformed)?;
        let public = public.to_string();
        let store = self.store.clone();
        let record = store
            .run(move |s| s.active_token(&public))
            .await?
            .ok_or(TokenRejected::Unknown)?;
        let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        let remembered = {
            let map = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&digest)
                .is_some_and(|(id, at)| *id == record.id && at.elapsed() < VERIFIED_TTL)
        };
        if !remembered {
            let Ok(_permit) = self.argon.acquire().await else {
                return Err(TokenRejected::Unknown);
            };
            let hash = record.secret_hash.clone();
            let secret = secret.to_string();
            let ok = tokio::task::spawn_blocking(move || {
                PasswordHash::new(&hash)
                    .map(|parsed| hasher().verify_password(secret.as_bytes(), &parsed).is_ok())
                    .unwrap_or(false)
            })
            .await
            .unwrap_or(false);
            if !ok {
                return Err(TokenRejected::WrongSecret { name: record.name });
            }
            let mut map = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, (_, at)| at.elapsed() < VERIFIED_TTL);
            if map.len() < VERIFIED_MAX {
                map.insert(digest, (record.id, Instant::now()));
            }
        }
        let id = record.id;
        let now = Timestamp::now();
        // Recording the use is bookkeeping: at most once a minute per token (a write on
        // every request would queue behind the sync's writes), and a failure must not
        // refuse the request.
        let stale = record
            .last_used_at
            .is_none_or(|at| now.duration_since(at).as_secs() >= USE_RECORD_INTERVAL_SECS);
        if stale && let Err(e) = self.store.run(move |s| s.touch_token(id, now)).await {
            tracing::warn!(error = %e, "could not record a token's use");
        }
        Ok(Principal {
            token_id: record.id,
            name: record.name,
            role: record.role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("w.db")).expect("open");
        (dir, store)
    }

    #[test]
    fn token_form() {
        assert!(split("mwlb_0123456789ab_").is_none());
        let good = format!("mwlb_0123456789ab_{}", "f".repeat(64));
        assert_eq!(split(&good).map(|(p, _)| p), Some("0123456789ab"));
        assert!(split(&good.replace("mwlb_", "mwlx_")).is_none());
        assert!(split(&format!("{good}0")).is_none());
        assert!(split(&good.replace('f', "g")).is_none());
    }

    #[test]
    fn names_are_checked() {
        let (_dir, store) = store();
        for bad in ["", "has space", "ünï", &"x".repeat(65)] {
            assert!(matches!(
                create_token(&store, bad, TokenRole::Read, Timestamp::now()),
                Err(TokenCreateError::BadName(_))
            ));
        }
    }

    #[tokio::test]
    async fn created_tokens_verify_and_revoked_ones_do_not() {
        let (_dir, store) = store();
        let t = create_token(&store, "ci", TokenRole::Write, Timestamp::now()).expect("create");
        assert!(
            !t.record.secret_hash.contains(&t.token[18..]),
            "secret stored in clear"
        );
        assert!(t.record.secret_hash.starts_with("$argon2id$"));
        let verifier = TokenVerifier::new(store.clone());
        let p = verifier.verify(&t.token).await.expect("accepted");
        assert_eq!((p.name.as_str(), p.role), ("ci", TokenRole::Write));
        // Second time: remembered, still accepted.
        verifier.verify(&t.token).await.expect("accepted again");
        let mut wrong = t.token.clone();
        let last = wrong.pop().expect("char");
        wrong.push(if last == '0' { '1' } else { '0' });
        assert!(matches!(
            verifier.verify(&wrong).await,
            Err(TokenRejected::WrongSecret { .. })
        ));
        assert!(matches!(
            verifier.verify("Bearer nonsense").await,
            Err(TokenRejected::Malformed)
        ));
        store.revoke_token("ci", Timestamp::now()).expect("revoke");
        assert!(matches!(
            verifier.verify(&t.token).await,
            Err(TokenRejected::Unknown)
        ));
    }
}
