//! Bytes derived from entries, kept with the read model's image: a C-FIND response
//! identifier encoded for one set of return keys, so that a query asking the same keys
//! again copies it instead of encoding the entry again.
//!
//! What the bytes mean is the caller's business: it names them by a *shape* (its own
//! exact description of how the bytes are made from an entry, compared byte for byte) and
//! makes them from the entry the first time. The store only guarantees that the bytes it
//! hands back were made from the same entry, in the same committed state: they live in the
//! image, which is immutable, and go with it when a write makes a new one.
//!
//! # Bounds
//!
//! At most [`MAX_SHAPES`] shapes per image, and at most [`MAX_DERIVED_BYTES`] per image
//! (the bytes kept plus 24 bytes per entry for each shape's slots); past either, entries
//! are simply not kept, and callers make their bytes each time, as without the cache.
//!
//! # Which scans keep
//!
//! Only a scan of at least [`KEEP_FROM_CANDIDATES`] candidates keeps new bytes (and makes
//! a new shape's slots); a smaller one uses what is kept but adds nothing. Encoding a
//! handful of responses is a small part of such a query's cost, while its bytes would
//! take the budget from the large answers, where encoding is most of it: PatientID
//! queries touch one entry each, but a day of them touches most of the worklist, and at
//! 100,000 entries they filled the budget before a universal query could keep anything.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Shapes (sets of return keys, character set, transfer syntax) kept per image. Consoles
/// of one site ask a handful.
pub const MAX_SHAPES: usize = 16;
/// Bytes kept per image, slots included: 26 MiB holds every response of a 10,000-entry
/// worklist for seven shapes (about 350 bytes per entry and shape), or about 75 % of the
/// universal answer of 100,000 entries, where the server stays under 100 MB at its peak
/// (docs/benchmarks.md, issue 19's fourth pass: 95 MB; 28 MiB reached 97 MB).
pub const MAX_DERIVED_BYTES: usize = 26 << 20;

/// Candidates (entries a scan visits, after its index and date range) from which a scan
/// keeps new bytes; see [Which scans keep](self#which-scans-keep).
pub const KEEP_FROM_CANDIDATES: usize = 16;

/// One entry's bytes of one shape, made once.
type Slot = OnceLock<Box<[u8]>>;

/// The slots of one shape: one per entry of the image.
type Slots = Arc<[Slot]>;

/// The derived bytes of one image.
pub(crate) struct DerivedCache {
    /// Entries of the image: the length of each shape's slots.
    entries: usize,
    shapes: Mutex<Vec<(Box<[u8]>, Slots)>>,
    /// Bytes charged so far (slots and kept bytes).
    charged: AtomicUsize,
}

impl DerivedCache {
    pub(crate) fn new(entries: usize) -> DerivedCache {
        DerivedCache {
            entries,
            shapes: Mutex::new(Vec::new()),
            charged: AtomicUsize::new(0),
        }
    }

    /// The slots of `shape`; when it has none yet, made if `make` (`None` when not, or
    /// when no more shapes fit).
    pub(crate) fn shape(&self, shape: &[u8], make: bool) -> Option<Slots> {
        let mut shapes = self.shapes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, slots)) = shapes.iter().find(|(s, _)| &**s == shape) {
            return Some(Arc::clone(slots));
        }
        if !make
            || shapes.len() >= MAX_SHAPES
            || !self.charge(self.entries * std::mem::size_of::<Slot>() + shape.len())
        {
            return None;
        }
        let slots: Slots = (0..self.entries).map(|_| Slot::new()).collect();
        shapes.push((shape.into(), Arc::clone(&slots)));
        Some(slots)
    }

    /// Takes `bytes` from the budget; false (nothing taken) when they do not fit.
    fn charge(&self, bytes: usize) -> bool {
        self.charged
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                c.checked_add(bytes).filter(|&n| n <= MAX_DERIVED_BYTES)
            })
            .is_ok()
    }

    /// The bytes of `shape` kept for the entry at `position`, through [`Derived`]; with
    /// `keep` false, new bytes are not kept (see [Which scans keep](self#which-scans-keep)).
    pub(crate) fn derived<'a>(
        &'a self,
        slots: Option<&'a Slots>,
        position: usize,
        keep: bool,
    ) -> Derived<'a> {
        Derived {
            slot: slots.and_then(|s| s.get(position)),
            cache: keep.then_some(self),
        }
    }
}

/// The derived bytes of one entry, for one shape: those kept, or a place to keep them.
/// Entries read from SQLite (no image) have none, and keep nothing; nor does a scan of
/// few candidates (see [Which scans keep](self#which-scans-keep)).
#[derive(Clone, Copy)]
pub struct Derived<'a> {
    slot: Option<&'a Slot>,
    cache: Option<&'a DerivedCache>,
}

impl<'a> Derived<'a> {
    /// Nothing kept, nowhere to keep: an entry read from SQLite.
    pub fn none() -> Derived<'static> {
        Derived {
            slot: None,
            cache: None,
        }
    }

    /// The bytes kept for this entry, if any.
    pub fn get(&self) -> Option<&'a [u8]> {
        self.slot.and_then(|s| s.get()).map(|b| &**b)
    }

    /// Keeps a copy of `bytes`, the entry's bytes of this shape, when the budget allows
    /// (and none are kept yet).
    pub fn keep(&self, bytes: &[u8]) {
        let (Some(slot), Some(cache)) = (self.slot, self.cache) else {
            return;
        };
        if slot.get().is_none() && cache.charge(bytes.len()) {
            // Two scans may make the same bytes at once: the first kept wins, the other's
            // charge stays spent (rare, and bounded by the budget anyway).
            let _ = slot.set(bytes.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_kept_per_shape_and_entry_within_bounds() {
        let cache = DerivedCache::new(3);
        let a = cache.shape(b"a", true).expect("shape a");
        let b = cache.shape(b"b", true).expect("shape b");
        assert!(Arc::ptr_eq(&a, &cache.shape(b"a", false).expect("a again")));
        let d = cache.derived(Some(&a), 1, true);
        assert_eq!(d.get(), None);
        d.keep(b"one");
        d.keep(b"other");
        assert_eq!(cache.derived(Some(&a), 1, true).get(), Some(&b"one"[..]));
        assert_eq!(
            cache.derived(Some(&b), 1, true).get(),
            None,
            "another shape"
        );
        assert_eq!(
            cache.derived(Some(&a), 2, true).get(),
            None,
            "another entry"
        );
        assert_eq!(
            cache.derived(Some(&a), 3, true).get(),
            None,
            "past the image"
        );
        cache.derived(Some(&b), 0, false).keep(b"not kept");
        assert_eq!(
            cache.derived(Some(&b), 0, true).get(),
            None,
            "kept by a small scan"
        );
        assert!(
            cache.shape(b"new", false).is_none(),
            "a small scan makes no shape"
        );
        Derived::none().keep(b"x");
        assert_eq!(Derived::none().get(), None);
        for i in 2..MAX_SHAPES {
            assert!(cache.shape(format!("s{i}").as_bytes(), true).is_some());
        }
        assert!(cache.shape(b"one too many", true).is_none());
    }

    #[test]
    fn nothing_is_kept_past_the_byte_budget() {
        let cache = DerivedCache::new(2);
        let a = cache.shape(b"a", true).expect("shape");
        let big = vec![0u8; MAX_DERIVED_BYTES];
        cache.derived(Some(&a), 0, true).keep(&big);
        assert_eq!(cache.derived(Some(&a), 0, true).get(), None);
        cache.derived(Some(&a), 1, true).keep(b"small");
        assert_eq!(cache.derived(Some(&a), 1, true).get(), Some(&b"small"[..]));
        assert!(
            DerivedCache::new(MAX_DERIVED_BYTES)
                .shape(b"x", true)
                .is_none(),
            "slots past the budget"
        );
    }
}
