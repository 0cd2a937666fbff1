//! What every data source's HTTP client shares, so that a hostile or misconfigured server
//! can neither exhaust memory nor draw credentials elsewhere:
//!
//! - [`body`]: a response body read under a size limit, refused before reading when its
//!   `Content-Length` is over the limit, and stopped at the first chunk past it;
//! - [`redirect`]: redirects followed only to the request's own origin (scheme, host,
//!   port), at most [`redirect::MAX_REDIRECTS`] in a row, and, for a source that POSTs
//!   its credentials, only with the statuses that keep the method and body (307, 308).
//!
//! The errors carry the source system's name and the setting an admin should check, so
//! each source's messages stay in its own words (`Calpendo ... check base_url`).

pub mod body;
pub mod redirect;

pub use body::{BodyError, ResponseTooLarge, read_body};
pub use redirect::{Follow, RedirectRefusal, RedirectRefused, Redirects};

/// The first error of type `T` in `e`'s chain (`e` itself included).
pub fn find_cause<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        cur = err.source();
    }
    None
}
