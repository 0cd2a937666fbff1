//! API tokens: `mwlb_<public id>_<secret>`, where the public id (12 hex digits) finds the
//! stored row and the secret (64 hex digits, 256 random bits) is checked against the
//! stored Argon2id hash. Only the hash is ever stored; the token is shown once, when it is
//! created.
//!
//! Checking a token reveals nothing through its timing: a public id that no active token
//! has is checked against a dummy hash made with the same parameters, so it takes as long
//! as a known id with a wrong secret. Argon2 checks run one at a time, and each client
//! address may have at most [`MAX_CHECKS_PER_CLIENT`] of them waiting or running; more are
//! refused at once ([`TokenRejected::Busy`], `429`), so one client's guesses cannot make
//! another's sign-in wait behind them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
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
/// Argon2 checks one client address may have waiting or running at once.
pub const MAX_CHECKS_PER_CLIENT: usize = 2;
/// What a client refused for having too many checks under way is told to wait.
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

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
    /// The client has [`MAX_CHECKS_PER_CLIENT`] token checks under way already: not
    /// checked; it may try again after `retry_after`.
    #[error("too many token checks from this client address at once")]
    Busy {
        /// How long to wait.
        retry_after: Duration,
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

/// The hash an unknown public id is checked against: a random secret's, with the
/// parameters real tokens get (made once, at the first verifier).
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut secret = [0u8; SECRET_HEX / 2];
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut secret);
        rand::rng().fill_bytes(&mut salt);
        SaltString::encode_b64(&salt)
            .ok()
            .and_then(|salt| {
                hasher()
                    .hash_password(hex(&secret).as_bytes(), &salt)
                    .ok()
                    .map(|h| h.to_string())
            })
            .unwrap_or_default()
    })
}

/// The address a client's checks are counted under: an IPv4 address, or an IPv6 /64 (one
/// host usually has a whole /64). `None`: callers without an address share one count.
fn client_key(client: Option<IpAddr>) -> Option<IpAddr> {
    match client? {
        IpAddr::V4(v4) => Some(IpAddr::V4(v4)),
        IpAddr::V6(v6) => Some(match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
            }
        }),
    }
}

/// The Argon2 checks each client address has under way.
#[derive(Debug, Default)]
struct ClientChecks {
    under_way: Mutex<HashMap<Option<IpAddr>, usize>>,
}

/// One check under way, counted for its client until dropped.
struct CheckSlot<'a> {
    checks: &'a ClientChecks,
    key: Option<IpAddr>,
}

impl ClientChecks {
    /// A slot for one more check of `client`, or `None` when it has enough under way.
    fn enter(&self, client: Option<IpAddr>) -> Option<CheckSlot<'_>> {
        let key = client_key(client);
        let mut map = self.under_way.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key).or_default();
        if *n >= MAX_CHECKS_PER_CLIENT {
            return None;
        }
        *n += 1;
        Some(CheckSlot { checks: self, key })
    }
}

impl Drop for CheckSlot<'_> {
    fn drop(&mut self) {
        let mut map = self
            .checks
            .under_way
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// Splits a token into its public id and secret, or `None` when it is not of our form.
fn split(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (public, secret) = rest.split_once('_')?;
    let hexdigits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexdigits(public, PUBLIC_HEX) && hexdigits(secret, SECRET_HEX)).then_some((public, secret))
}

/// Checks presented tokens against the store, remembering recent successes so that only
/// the first request of a token pays for Argon2, running at most one Argon2 verification
/// at a time (so guessing cannot take the CPU from the DICOM server) and at most
/// [`MAX_CHECKS_PER_CLIENT`] per client address (so one client's guesses cannot queue
/// ahead of everyone else).
pub struct TokenVerifier {
    store: Store,
    verified: Mutex<HashMap<[u8; 32], (i64, Instant)>>,
    argon: tokio::sync::Semaphore,
    clients: ClientChecks,
    dummy_hash: &'static str,
}

impl TokenVerifier {
    /// A verifier over `store`. The first one made in a process makes the dummy hash
    /// (one Argon2 hash).
    pub fn new(store: Store) -> TokenVerifier {
        TokenVerifier {
            store,
            verified: Mutex::new(HashMap::new()),
            argon: tokio::sync::Semaphore::new(1),
            clients: ClientChecks::default(),
            dummy_hash: dummy_hash(),
        }
    }

    /// Accepts or refuses `token`, presented by a client whose address is not known.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenRejected> {
        self.verify_from(token, None).await
    }

    /// Accepts or refuses `token`, presented from `client`. Records the use of an
    /// accepted one.
    pub async fn verify_from(
        &self,
        token: &str,
        client: Option<IpAddr>,
    ) -> Result<Principal, TokenRejected> {
        let (public, secret) = split(token.trim()).ok_or(TokenRejected::Malformed)?;
        let public = public.to_string();
        let store = self.store.clone();
        let record = store.run(move |s| s.active_token(&public)).await?;
        let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        let remembered = record.as_ref().is_some_and(|record| {
            let map = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&digest)
                .is_some_and(|(id, at)| *id == record.id && at.elapsed() < VERIFIED_TTL)
        });
        if !remembered {
            // An unknown id costs the same Argon2 check as a known one, against a dummy
            // hash, so that the time taken does not tell whether the id exists.
            let Some(_slot) = self.clients.enter(client) else {
                return Err(TokenRejected::Busy {
                    retry_after: BUSY_RETRY_AFTER,
                });
            };
            let Ok(_permit) = self.argon.acquire().await else {
                return Err(TokenRejected::Unknown);
            };
            let hash = record
                .as_ref()
                .map_or(self.dummy_hash, |r| r.secret_hash.as_str())
                .to_string();
            let secret = secret.to_string();
            let ok = tokio::task::spawn_blocking(move || {
                PasswordHash::new(&hash)
                    .map(|parsed| hasher().verify_password(secret.as_bytes(), &parsed).is_ok())
                    .unwrap_or(false)
            })
            .await
            .unwrap_or(false);
            let Some(record) = record.as_ref() else {
                return Err(TokenRejected::Unknown);
            };
            if !ok {
                return Err(TokenRejected::WrongSecret {
                    name: record.name.clone(),
                });
            }
            let mut map = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, (_, at)| at.elapsed() < VERIFIED_TTL);
            if map.len() < VERIFIED_MAX {
                map.insert(digest, (record.id, Instant::now()));
            }
        }
        let Some(record) = record else {
            return Err(TokenRejected::Unknown);
        };
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

    fn wrong_secret(token: &str) -> String {
        let mut wrong = token.to_string();
        let last = wrong.pop().expect("char");
        wrong.push(if last == '0' { '1' } else { '0' });
        wrong
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unknown_id_costs_as_much_as_a_wrong_secret() {
        let (_dir, store) = store();
        let t = create_token(&store, "ci", TokenRole::Read, Timestamp::now()).expect("create");
        let verifier = TokenVerifier::new(store);
        let wrong = wrong_secret(&t.token);
        let unknown = format!("mwlb_{}_{}", "0".repeat(12), "a".repeat(64));
        let time = |token: String| {
            let verifier = &verifier;
            async move {
                let start = Instant::now();
                assert!(verifier.verify(&token).await.is_err());
                start.elapsed()
            }
        };
        let (mut w, mut u) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            w.push(time(wrong.clone()).await);
            u.push(time(unknown.clone()).await);
        }
        w.sort();
        u.sort();
        assert!(
            u[1] * 2 >= w[1],
            "unknown id refused in {:?}, wrong secret in {:?}",
            u[1],
            w[1]
        );
        assert!(dummy_hash().starts_with("$argon2id$"));
        // The dummy has the parameters real tokens get.
        let params = |h: &str| h.split('$').nth(3).map(str::to_string);
        assert_eq!(params(dummy_hash()), params(&t.record.secret_hash));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_may_have_only_a_few_checks_under_way() {
        let (_dir, store) = store();
        let t = create_token(&store, "ci", TokenRole::Read, Timestamp::now()).expect("create");
        let good = create_token(&store, "ok", TokenRole::Read, Timestamp::now()).expect("create");
        let verifier = std::sync::Arc::new(TokenVerifier::new(store));
        let guesser = Some(IpAddr::from([10, 0, 0, 2]));
        let wrong = wrong_secret(&t.token);
        let guesses: Vec<_> = (0..10)
            .map(|_| {
                let (v, wrong) = (verifier.clone(), wrong.clone());
                tokio::spawn(async move { v.verify_from(&wrong, guesser).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Another address is not refused, and waits for at most the guesser's few.
        let other = Some(IpAddr::from([10, 0, 0, 3]));
        let p = verifier
            .verify_from(&good.token, other)
            .await
            .expect("accepted");
        assert_eq!(p.name, "ok");
        let mut busy = 0;
        for g in guesses {
            match g.await.expect("task") {
                Err(TokenRejected::Busy { retry_after }) => {
                    assert_eq!(retry_after, BUSY_RETRY_AFTER);
                    busy += 1;
                }
                Err(TokenRejected::WrongSecret { .. }) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(busy, 10 - MAX_CHECKS_PER_CLIENT);
        // Slots are given back: the guesser may be checked again.
        assert!(matches!(
            verifier.verify_from(&wrong, guesser).await,
            Err(TokenRejected::WrongSecret { .. })
        ));
    }

    #[test]
    fn clients_are_counted_by_address_and_ipv6_by_64() {
        let v6 = |s: &str| Some(s.parse::<IpAddr>().expect("address"));
        assert_eq!(client_key(v6("2001:db8:1:2::5")), v6("2001:db8:1:2::"));
        assert_eq!(
            client_key(v6("2001:db8:1:2:ffff::1")),
            client_key(v6("2001:db8:1:2::7"))
        );
        assert_ne!(client_key(v6("2001:db8:1:3::1")), v6("2001:db8:1:2::"));
        assert_eq!(client_key(v6("::ffff:10.0.0.1")), v6("10.0.0.1"));
        assert_eq!(client_key(v6("10.0.0.1")), v6("10.0.0.1"));
        assert_eq!(client_key(None), None);
    }
}
