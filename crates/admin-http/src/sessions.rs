//! Status-page logins: a random session id in an HttpOnly, SameSite=Strict cookie, mapped
//! in memory to the token that logged in (and checked against the store on every request,
//! so revoking the token ends its sessions). Each session has its own CSRF token for the
//! page's forms. Sessions do not survive a restart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;

/// The cookie's name.
pub(crate) const COOKIE: &str = "mwlbridge_session";
/// At most this many live sessions; the oldest is dropped beyond it.
const MAX_SESSIONS: usize = 256;

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

fn random_hex() -> String {
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
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
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
}
