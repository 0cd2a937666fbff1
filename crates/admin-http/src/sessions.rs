//! Status-page logins: a random session id in an HttpOnly, SameSite=Strict cookie, mapped
//! in memory to the token that logged in (and checked against the store on every request,
//! so revoking the token ends its sessions). Each session has its own CSRF token for the
//! page's forms. Sessions do not survive a restart.
//!
//! Each token may have [`MAX_SESSIONS_PER_TOKEN`] sessions: signing in once more ends that
//! token's oldest, never another token's. All tokens together may have [`MAX_SESSIONS`];
//! beyond it, the oldest session of the token that has the most is ended.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;

/// The cookie's name.
pub(crate) const COOKIE: &str = "mwlbridge_session";
/// At most this many live sessions per token; its oldest is ended beyond it.
pub(crate) const MAX_SESSIONS_PER_TOKEN: usize = 16;
/// At most this many live sessions in all; beyond it, the oldest session of the token
/// with the most is ended.
pub(crate) const MAX_SESSIONS: usize = 4096;

/// One login.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The token that logged in.
    pub(crate) token_id: i64,
    /// Secret the page's forms must echo.
    pub(crate) csrf: String,
    created: Instant,
}

/// The live sessions.
pub(crate) struct Sessions {
    lifetime: Duration,
    map: Mutex<HashMap<String, Session>>,
}

/// 256 random bits in hex.
pub(crate) fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Sessions {
    pub(crate) fn new(lifetime: Duration) -> Sessions {
        Sessions {
            lifetime,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Opens a session for `token_id`; returns its id.
    pub(crate) fn open(&self, token_id: i64) -> String {
        let id = random_hex();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.created.elapsed() < self.lifetime);
        let oldest_of = |map: &HashMap<String, Session>, token: i64| {
            map.iter()
                .filter(|(_, s)| s.token_id == token)
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone())
        };
        let own = map.values().filter(|s| s.token_id == token_id).count();
        if own >= MAX_SESSIONS_PER_TOKEN
            && let Some(oldest) = oldest_of(&map, token_id)
        {
            map.remove(&oldest);
        } else if map.len() >= MAX_SESSIONS {
            let mut per_token: HashMap<i64, usize> = HashMap::new();
            for s in map.values() {
                *per_token.entry(s.token_id).or_default() += 1;
            }
            let busiest = per_token
                .into_iter()
                .max_by_key(|(id, n)| (*n, *id))
                .map(|(id, _)| id);
            if let Some(oldest) = busiest.and_then(|t| oldest_of(&map, t)) {
                map.remove(&oldest);
            }
        }
        map.insert(
            id.clone(),
            Session {
                token_id,
                csrf: random_hex(),
                created: Instant::now(),
            },
        );
        id
    }

    /// The live session with this id.
    pub(crate) fn get(&self, id: &str) -> Option<Session> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id)
            .filter(|s| s.created.elapsed() < self.lifetime)
            .cloned()
    }

    /// Ends a session.
    pub(crate) fn close(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// The cookie lifetime in seconds.
    pub(crate) fn max_age(&self) -> u64 {
        self.lifetime.as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_close() {
        let s = Sessions::new(Duration::from_millis(50));
        let id = s.open(7);
        assert_eq!(s.get(&id).map(|x| x.token_id), Some(7));
        assert!(s.get("other").is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(s.get(&id).is_none(), "expired");
        let id = Sessions::new(Duration::from_secs(60)).open(1);
        assert_eq!(id.len(), 64);
        let s = Sessions::new(Duration::from_secs(60));
        let id = s.open(1);
        s.close(&id);
        assert!(s.get(&id).is_none());
    }

    #[test]
    fn sessions_are_capped_per_token_not_globally() {
        let s = Sessions::new(Duration::from_secs(60));
        let admin = s.open(1);
        let first_reader = s.open(2);
        let readers: Vec<String> = (0..260).map(|_| s.open(2)).collect();
        assert!(s.get(&admin).is_some(), "another token's sign-ins ended it");
        assert!(
            s.get(&first_reader).is_none(),
            "the reader's oldest outlived its cap"
        );
        let live = readers.iter().filter(|id| s.get(id).is_some()).count();
        assert_eq!(live, MAX_SESSIONS_PER_TOKEN);
        assert!(
            readers[260 - MAX_SESSIONS_PER_TOKEN..]
                .iter()
                .all(|id| s.get(id).is_some())
        );
    }

    #[test]
    fn past_the_overall_cap_the_token_with_the_most_sessions_gives_one_up() {
        let s = Sessions::new(Duration::from_secs(60));
        let lonely = s.open(0);
        // Many tokens, each at its own cap: the map is full.
        let mut token = 1;
        while s.map.lock().expect("lock").len() < MAX_SESSIONS {
            for _ in 0..MAX_SESSIONS_PER_TOKEN {
                if s.map.lock().expect("lock").len() < MAX_SESSIONS {
                    s.open(token);
                }
            }
            token += 1;
        }
        s.open(token + 1);
        assert!(s.get(&lonely).is_some());
        assert_eq!(s.map.lock().expect("lock").len(), MAX_SESSIONS);
    }
}
