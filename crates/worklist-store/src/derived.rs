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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Shapes (sets of return keys, character set, transfer syntax) kept per image. Consoles
/// of one site ask a handful.
pub const MAX_SHAPES: usize = 16;
/// Bytes kept per image, slots included: 16 MiB holds every response of a 10,000-entry
/// worklist for two shapes, or a week of 100,000 entries.
pub const MAX_DERIVED_BYTES: usize = 16 << 20;

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

    /// The slots of `shape`, made on first use; `None` when no more shapes fit.
    pub(crate) fn shape(&self, shape: &[u8]) -> Option<Slots> {
        let mut shapes = self.shapes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, slots)) = shapes.iter().find(|(s, _)| &**s == shape) {
            return Some(Arc::clone(slots));
        }
        if shapes.len() >= MAX_SHAPES
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

    /// The bytes of `shape` kept for the entry at `position`, through [`Derived`].
    pub(crate) fn derived<'a>(&'a self, slots: Option<&'a Slots>, position: usize) -> Derived<'a> {
        Derived {
            slot: slots.and_then(|s| s.get(position)),
            cache: Some(self),
        }
    }
}

/// The derived bytes of one entry, for one shape: those kept, or a place to keep them.
/// Entries read from SQLite (no image) have none, and keep nothing.
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
        let a = cache.shape(b"a").expect("shape a");
        let b = cache.shape(b"b").expect("shape b");
        assert!(Arc::ptr_eq(&a, &cache.shape(b"a").expect("a again")));
        let d = cache.derived(Some(&a), 1);
        assert_eq!(d.get(), None);
        d.keep(b"one");
        d.keep(b"other");
        assert_eq!(cache.derived(Some(&a), 1).get(), Some(&b"one"[..]));
        assert_eq!(cache.derived(Some(&b), 1).get(), None, "another shape");
        assert_eq!(cache.derived(Some(&a), 2).get(), None, "another entry");
        assert_eq!(cache.derived(Some(&a), 3).get(), None, "past the image");
        Derived::none().keep(b"x");
        assert_eq!(Derived::none().get(), None);
        for i in 2..MAX_SHAPES {
            assert!(cache.shape(format!("s{i}").as_bytes()).is_some());
        }
        assert!(cache.shape(b"one too many").is_none());
    }

    #[test]
    fn nothing_is_kept_past_the_byte_budget() {
        let cache = DerivedCache::new(2);
        let a = cache.shape(b"a").expect("shape");
        let big = vec![0u8; MAX_DERIVED_BYTES];
        cache.derived(Some(&a), 0).keep(&big);
        assert_eq!(cache.derived(Some(&a), 0).get(), None);
        cache.derived(Some(&a), 1).keep(b"small");
        assert_eq!(cache.derived(Some(&a), 1).get(), Some(&b"small"[..]));
        assert!(
            DerivedCache::new(MAX_DERIVED_BYTES).shape(b"x").is_none(),
            "slots past the budget"
        );
    }
}
