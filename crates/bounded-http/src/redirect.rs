//! Redirects followed only within the request's origin.

use std::fmt;

use reqwest::StatusCode;
use reqwest::redirect::Policy;

/// The most redirects (each to the request's own origin) followed in a row.
pub const MAX_REDIRECTS: usize = 5;

/// Which redirect statuses are followed (to the request's own origin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Any: for GET requests whose credentials are in a header reqwest keeps only for the
    /// same origin.
    Any,
    /// Only 307 and 308, which keep the method and body: for a POST whose form holds the
    /// credentials (a 301, 302 or 303 would turn it into a GET without them).
    KeepingMethod,
}

/// Why a redirect was not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectRefusal {
    /// To another scheme, host or port than the request's.
    OtherOrigin,
    /// A 301, 302 or 303 under [`Follow::KeepingMethod`].
    MethodChange,
    /// One more than [`MAX_REDIRECTS`] in a row.
    TooMany,
}

/// A redirect that was not followed: nothing was sent to its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRefused {
    /// The source system, for messages (`Calpendo`, `REDCap`).
    pub system: &'static str,
    /// The setting that holds the server's address, for messages (`base_url`).
    pub setting: &'static str,
    /// Why.
    pub refusal: RedirectRefusal,
    /// The redirect's status.
    pub status: u16,
    /// The origin (`scheme://host:port`) of the request's URL.
    pub from: String,
    /// The origin of the redirect's target.
    pub to: String,
}

impl fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (system, setting) = (self.system, self.setting);
        let (from, status, to) = (&self.from, self.status, &self.to);
        match self.refusal {
            RedirectRefusal::OtherOrigin => write!(
                f,
                "{system} at {from} answered with a redirect (HTTP {status}) to another host, \
                 {to}; a redirect is followed only to the same scheme, host and port, and \
                 nothing (no credentials) was sent there. Check {setting} (if {to} is the \
                 {system} server's address now, set {setting} to it)"
            ),
            RedirectRefusal::MethodChange => write!(
                f,
                "{system} at {from} answered with a redirect (HTTP {status}) to {to}, which \
                 would turn the POST into a GET without its form; it was not followed. Set \
                 {setting} to the address it redirects to"
            ),
            RedirectRefusal::TooMany => write!(
                f,
                "{system} at {from} answered with more than {MAX_REDIRECTS} redirects in a \
                 row (the last, HTTP {status}, to {to}): a redirect loop; check {setting}"
            ),
        }
    }
}

impl std::error::Error for RedirectRefused {}

/// The redirect rules of one source's client.
#[derive(Debug, Clone, Copy)]
pub struct Redirects {
    /// The source system, for messages.
    pub system: &'static str,
    /// The setting that holds the server's address, for messages.
    pub setting: &'static str,
    /// Which statuses are followed.
    pub follow: Follow,
}

impl Redirects {
    /// Why a redirect with `status` to `to`, after `previous` URLs (the request's own
    /// first), is not followed; `None` to follow it.
    fn refusal(
        &self,
        status: StatusCode,
        from: Option<&reqwest::Url>,
        to: &reqwest::Url,
        previous: usize,
    ) -> Option<RedirectRefusal> {
        if from.map(reqwest::Url::origin) != Some(to.origin()) {
            return Some(RedirectRefusal::OtherOrigin);
        }
        let keeps_method = matches!(
            status,
            StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
        );
        if self.follow == Follow::KeepingMethod && !keeps_method {
            Some(RedirectRefusal::MethodChange)
        } else if previous > MAX_REDIRECTS {
            Some(RedirectRefusal::TooMany)
        } else {
            None
        }
    }

    /// The reqwest policy: follow a redirect these rules allow; refuse any other with
    /// [`RedirectRefused`] before anything is sent to its target.
    pub fn policy(self) -> Policy {
        Policy::custom(move |attempt| {
            // `previous` holds the request's own URL first, then each URL redirected from.
            let from = attempt.previous().first();
            let refusal = self.refusal(
                attempt.status(),
                from,
                attempt.url(),
                attempt.previous().len(),
            );
            match refusal {
                None => attempt.follow(),
                Some(refusal) => {
                    let refused = RedirectRefused {
                        system: self.system,
                        setting: self.setting,
                        refusal,
                        status: attempt.status().as_u16(),
                        from: from.map_or_else(|| "?".into(), |u| u.origin().ascii_serialization()),
                        to: attempt.url().origin().ascii_serialization(),
                    };
                    attempt.error(refused)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).expect("url")
    }

    const GET: Redirects = Redirects {
        system: "Calpendo",
        setting: "base_url",
        follow: Follow::Any,
    };
    const POST: Redirects = Redirects {
        system: "REDCap",
        setting: "api_url",
        follow: Follow::KeepingMethod,
    };

    #[test]
    fn only_the_same_origin_is_followed() {
        let from = url("https://cal.example.org/webdav/b");
        let found = StatusCode::FOUND;
        let same = url("https://cal.example.org/other");
        assert_eq!(GET.refusal(found, Some(&from), &same, 1), None);
        for other in [
            "http://cal.example.org/other",
            "https://evil.example.org/other",
            "https://cal.example.org:8443/other",
        ] {
            assert_eq!(
                GET.refusal(found, Some(&from), &url(other), 1),
                Some(RedirectRefusal::OtherOrigin),
                "{other}"
            );
        }
        assert_eq!(
            GET.refusal(found, Some(&from), &same, MAX_REDIRECTS + 1),
            Some(RedirectRefusal::TooMany)
        );
    }

    #[test]
    fn a_post_follows_only_what_keeps_its_form() {
        let from = url("https://redcap.example.org/api/");
        let to = url("https://redcap.example.org/api/v2/");
        assert_eq!(
            POST.refusal(StatusCode::FOUND, Some(&from), &to, 1),
            Some(RedirectRefusal::MethodChange)
        );
        for status in [
            StatusCode::TEMPORARY_REDIRECT,
            StatusCode::PERMANENT_REDIRECT,
        ] {
            assert_eq!(POST.refusal(status, Some(&from), &to, 1), None);
        }
    }

    #[test]
    fn messages_name_the_system_and_the_setting() {
        let refused = RedirectRefused {
            system: "REDCap",
            setting: "the API URL (REDCAP_API_URL or api_url)",
            refusal: RedirectRefusal::OtherOrigin,
            status: 302,
            from: "https://redcap.example.org".into(),
            to: "https://evil.example.org".into(),
        };
        let text = refused.to_string();
        assert!(
            text.starts_with("REDCap at https://redcap.example.org answered"),
            "{text}"
        );
        assert!(
            text.contains("Check the API URL (REDCAP_API_URL or api_url)"),
            "{text}"
        );
    }
}
