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
//! # Layout
//!
//! A shape holds one 8-byte slot per entry, saying where the entry's bytes are, and the
//! bytes themselves in chunks of about [`CHUNK_BYTES`]. A scan gathers what it keeps in a
//! [`Gathered`] buffer of its own and publishes it as one chunk when the buffer is full
//! and when the scan ends; only then do the entries' slots point at it. Entries another
//! scan published meanwhile (two consoles asking the same large query at once) are left
//! out of the chunk and given back to the budget, so each is kept once. (The first
//! layout, a 24-byte slot and an allocation per entry, charged 2.4 MB of slots at 100,000
//! entries where this one charges 0.9 MB, and what the allocator rounded up went uncounted.)
//!
//! # Bounds
//!
//! At most [`MAX_SHAPES`] shapes per image, and at most [`MAX_DERIVED_BYTES`] per image
//! (the bytes kept, plus each shape's slots and chunk table); past either, entries are
//! simply not kept, and callers make their bytes each time, as without the cache.
//!
//! # Which scans keep
//!
//! Only a scan of at least [`KEEP_FROM_CANDIDATES`] candidates keeps new bytes (and makes
//! a new shape's slots); a smaller one uses what is kept but adds nothing. Encoding a
//! handful of responses is a small part of such a query's cost, while its bytes would
//! take the budget from the large answers, where encoding is most of it: PatientID
//! queries touch one entry each, but a day of them touches most of the worklist, and at
//! 100,000 entries they filled the budget before a universal query could keep anything.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Shapes (sets of return keys, character set, transfer syntax) kept per image. Consoles
/// of one site ask a handful.
pub const MAX_SHAPES: usize = 16;
/// Bytes kept per image, slots and chunk tables included: 28 MiB holds every response of
/// a 10,000-entry worklist for eight shapes (about 330 bytes per entry and shape), or
/// nearly all of the universal answer of 100,000 entries, where the server stays under
/// 100 MB at its peak (docs/benchmarks.md, issue 19's fourth pass: 97 MB under a mixed
/// load, 29 MiB reached 98 MB).
pub const MAX_DERIVED_BYTES: usize = 28 << 20;

/// Candidates (entries a scan visits, after its index and date range) from which a scan
/// keeps new bytes; see [Which scans keep](self#which-scans-keep).
pub const KEEP_FROM_CANDIDATES: usize = 16;

/// Bytes a scan gathers before it publishes them as a chunk.
pub const CHUNK_BYTES: usize = 64 << 10;

/// Chunks a shape can hold: a scan that keeps anything publishes at least one, so this
/// also bounds the scans that add to a shape (past it, nothing more is kept).
const MAX_CHUNKS: usize = 4096;

/// Where an entry's bytes are, packed in a slot: the chunk's number plus one (0: none
/// kept), the offset in the chunk and the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    chunk: usize,
    offset: usize,
    len: usize,
}

const LEN_BITS: u32 = 16;
const OFFSET_BITS: u32 = 28;

impl Place {
    /// The slot value; `None` when a part does not fit its bits.
    fn pack(self) -> Option<u64> {
        let chunk = u64::try_from(self.chunk.checked_add(1)?).ok()?;
        let offset = u64::try_from(self.offset).ok()?;
        let len = u64::try_from(self.len).ok()?;
        let fits = chunk < 1 << (64 - OFFSET_BITS - LEN_BITS)
            && offset < 1 << OFFSET_BITS
            && len < 1 << LEN_BITS;
        fits.then_some(chunk << (OFFSET_BITS + LEN_BITS) | offset << LEN_BITS | len)
    }

    /// The place a slot value names; `None` for an empty slot.
    fn unpack(v: u64) -> Option<Place> {
        let chunk = (v >> (OFFSET_BITS + LEN_BITS)) as usize;
        let mask = |bits: u32| (1u64 << bits) - 1;
        (chunk != 0).then(|| Place {
            chunk: chunk - 1,
            offset: ((v >> LEN_BITS) & mask(OFFSET_BITS)) as usize,
            len: (v & mask(LEN_BITS)) as usize,
        })
    }
}

/// The kept bytes of one shape.
pub(crate) struct Kept {
    /// One per entry of the image: a packed [`Place`], 0 when nothing is kept.
    slots: Box<[AtomicU64]>,
    /// Published chunks; a slot names one only once it is set.
    chunks: Box<[OnceLock<Box<[u8]>>]>,
    /// Chunks taken so far (some may not be set yet).
    taken: AtomicUsize,
}

impl Kept {
    fn new(entries: usize) -> Kept {
        Kept {
            slots: (0..entries).map(|_| AtomicU64::new(0)).collect(),
            chunks: (0..MAX_CHUNKS).map(|_| OnceLock::new()).collect(),
            taken: AtomicUsize::new(0),
        }
    }

    /// What a shape of `entries` entries costs before any bytes are kept.
    fn cost(entries: usize) -> usize {
        entries * std::mem::size_of::<AtomicU64>()
            + MAX_CHUNKS * std::mem::size_of::<OnceLock<Box<[u8]>>>()
    }

    /// The bytes kept for the entry at `position`, if any.
    fn get(&self, position: usize) -> Option<&[u8]> {
        let place = Place::unpack(self.slots.get(position)?.load(Ordering::Acquire))?;
        let chunk = self.chunks.get(place.chunk)?.get()?;
        chunk.get(place.offset..place.offset + place.len)
    }

    /// Whether every chunk is taken (nothing more can be kept).
    fn full(&self) -> bool {
        self.taken.load(Ordering::Relaxed) >= MAX_CHUNKS
    }

    /// Makes what `gathered` holds a chunk and points its entries' slots at it, leaving
    /// out the entries another scan published meanwhile; `gathered` is emptied. Returns
    /// the bytes left out.
    fn publish(&self, gathered: &mut Gathered) -> usize {
        // Two scans of one large query at once gather the same entries: each is kept
        // (and charged) once, not once per scan.
        let mut bytes = Vec::with_capacity(gathered.bytes.len());
        let mut places = Vec::with_capacity(gathered.entries.len());
        let mut left_out = 0;
        for &(position, offset, len) in &gathered.entries {
            let published = self
                .slots
                .get(position)
                .is_none_or(|s| s.load(Ordering::Relaxed) != 0);
            match gathered.bytes.get(offset..offset + len) {
                Some(b) if !published => {
                    places.push((position, bytes.len(), len));
                    bytes.extend_from_slice(b);
                }
                _ => left_out += len,
            }
        }
        gathered.bytes.clear();
        gathered.entries.clear();
        if places.is_empty() {
            return left_out;
        }
        let chunk = self.taken.fetch_add(1, Ordering::Relaxed);
        let Some(cell) = self.chunks.get(chunk) else {
            return left_out + bytes.len();
        };
        if cell.set(bytes.into_boxed_slice()).is_err() {
            // Never: each chunk number is taken once.
            return left_out;
        }
        for (position, offset, len) in places {
            let place = Place { chunk, offset, len };
            if let (Some(slot), Some(v)) = (self.slots.get(position), place.pack()) {
                // Set only if empty: a slot never changes once set.
                let _ = slot.compare_exchange(0, v, Ordering::Release, Ordering::Relaxed);
            }
        }
        left_out
    }
}

/// What one scan keeps, until it is published: the bytes one after another, and each
/// entry's position, offset and length.
#[derive(Default)]
pub(crate) struct Gathered {
    bytes: Vec<u8>,
    entries: Vec<(usize, usize, usize)>,
}

/// Each shape's description and kept bytes.
type Shapes = Vec<(Box<[u8]>, Arc<Kept>)>;

/// The derived bytes of one image.
pub(crate) struct DerivedCache {
    /// Entries of the image: the length of each shape's slots.
    entries: usize,
    shapes: Mutex<Shapes>,
    /// Bytes charged so far (slots, chunk tables and kept bytes).
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

    /// The kept bytes of `shape`; when it has none yet, made if `make` (`None` when not,
    /// or when no more shapes fit).
    pub(crate) fn shape(&self, shape: &[u8], make: bool) -> Option<Arc<Kept>> {
        let mut shapes = self.shapes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, kept)) = shapes.iter().find(|(s, _)| &**s == shape) {
            return Some(Arc::clone(kept));
        }
        if !make
            || shapes.len() >= MAX_SHAPES
            || !self.charge(Kept::cost(self.entries) + shape.len())
        {
            return None;
        }
        let kept = Arc::new(Kept::new(self.entries));
        shapes.push((shape.into(), Arc::clone(&kept)));
        Some(kept)
    }

    /// Publishes what a scan gathered for `kept` (see [`Kept::publish`]), giving back to
    /// the budget the bytes left out. A scan calls it when it ends.
    pub(crate) fn publish(&self, kept: &Kept, gathered: &mut Gathered) {
        let left_out = kept.publish(gathered);
        if left_out > 0 {
            self.charged.fetch_sub(left_out, Ordering::Relaxed);
        }
    }

    /// Takes `bytes` from the budget; false (nothing taken) when they do not fit.
    fn charge(&self, bytes: usize) -> bool {
        self.charged
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                c.checked_add(bytes).filter(|&n| n <= MAX_DERIVED_BYTES)
            })
            .is_ok()
    }

    /// The bytes of a shape (`kept`) kept for the entry at `position`, through
    /// [`Derived`]; new bytes are gathered in `gather` (see [`Kept::publish`]), or not kept
    /// when it is `None` (see [Which scans keep](self#which-scans-keep)).
    pub(crate) fn derived<'a>(
        &'a self,
        kept: Option<&'a Kept>,
        position: usize,
        gather: Option<&'a RefCell<Gathered>>,
    ) -> Derived<'a> {
        Derived {
            kept,
            position,
            keeping: gather.map(|g| (self, g)),
        }
    }
}

/// The derived bytes of one entry, for one shape: those kept, or a place to keep them.
/// Entries read from SQLite (no image) have none, and keep nothing; nor does a scan of
/// few candidates (see [Which scans keep](self#which-scans-keep)).
#[derive(Clone, Copy)]
pub struct Derived<'a> {
    kept: Option<&'a Kept>,
    position: usize,
    keeping: Option<(&'a DerivedCache, &'a RefCell<Gathered>)>,
}

impl<'a> Derived<'a> {
    /// Nothing kept, nowhere to keep: an entry read from SQLite.
    pub fn none() -> Derived<'static> {
        Derived {
            kept: None,
            position: 0,
            keeping: None,
        }
    }

    /// The bytes kept for this entry, if any.
    pub fn get(&self) -> Option<&'a [u8]> {
        self.kept.and_then(|k| k.get(self.position))
    }

    /// Keeps a copy of `bytes`, the entry's bytes of this shape, when the budget allows
    /// (and none are kept yet). They are found once the scan publishes them: when it has
    /// gathered [`CHUNK_BYTES`], and when it ends.
    pub fn keep(&self, bytes: &[u8]) {
        let (Some(kept), Some((cache, gather))) = (self.kept, self.keeping) else {
            return;
        };
        if self.get().is_some()
            || bytes.len() >= 1 << LEN_BITS
            || kept.full()
            || !cache.charge(bytes.len())
        {
            return;
        }
        let mut g = gather.borrow_mut();
        if g.bytes.capacity() == 0 {
            // A chunk and one more response of ordinary size: the buffer seldom grows.
            g.bytes.reserve_exact(CHUNK_BYTES + 1024);
        }
        let offset = g.bytes.len();
        g.bytes.extend_from_slice(bytes);
        g.entries.push((self.position, offset, bytes.len()));
        if g.bytes.len() >= CHUNK_BYTES {
            cache.publish(kept, &mut g);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps `bytes` for `position` of `kept` as one scan does, published at once.
    fn keep(cache: &DerivedCache, kept: &Kept, position: usize, bytes: &[u8]) {
        let gather = RefCell::new(Gathered::default());
        cache
            .derived(Some(kept), position, Some(&gather))
            .keep(bytes);
        cache.publish(kept, &mut gather.borrow_mut());
    }

    fn get<'a>(cache: &'a DerivedCache, kept: &'a Kept, position: usize) -> Option<&'a [u8]> {
        cache.derived(Some(kept), position, None).get()
    }

    #[test]
    fn places_pack_and_unpack() {
        for place in [
            Place {
                chunk: 0,
                offset: 0,
                len: 0,
            },
            Place {
                chunk: MAX_CHUNKS - 1,
                offset: (1 << OFFSET_BITS) - 1,
                len: (1 << LEN_BITS) - 1,
            },
        ] {
            let v = place.pack().expect("fits");
            assert_ne!(v, 0, "a kept place is never the empty slot");
            assert_eq!(Place::unpack(v), Some(place));
        }
        assert_eq!(Place::unpack(0), None);
        let too_long = Place {
            chunk: 0,
            offset: 0,
            len: 1 << LEN_BITS,
        };
        assert_eq!(too_long.pack(), None);
    }

    #[test]
    fn bytes_are_kept_per_shape_and_entry_within_bounds() {
        let cache = DerivedCache::new(3);
        let a = cache.shape(b"a", true).expect("shape a");
        let b = cache.shape(b"b", true).expect("shape b");
        assert!(Arc::ptr_eq(&a, &cache.shape(b"a", false).expect("a again")));
        assert_eq!(get(&cache, &a, 1), None);
        keep(&cache, &a, 1, b"one");
        keep(&cache, &a, 1, b"other");
        assert_eq!(get(&cache, &a, 1), Some(&b"one"[..]));
        assert_eq!(get(&cache, &b, 1), None, "another shape");
        assert_eq!(get(&cache, &a, 2), None, "another entry");
        assert_eq!(get(&cache, &a, 3), None, "past the image");
        // Two scans gathered entry 2 before either published: the first published stays.
        let (first, second) = (RefCell::default(), RefCell::default());
        cache.derived(Some(&a), 2, Some(&first)).keep(b"first");
        cache.derived(Some(&a), 2, Some(&second)).keep(b"second");
        cache.publish(&a, &mut first.borrow_mut());
        let kept_once = cache.charged.load(Ordering::Relaxed);
        cache.publish(&a, &mut second.borrow_mut());
        assert_eq!(get(&cache, &a, 2), Some(&b"first"[..]));
        assert_eq!(
            cache.charged.load(Ordering::Relaxed),
            kept_once - b"second".len(),
            "the second scan's bytes given back"
        );
        cache.derived(Some(&b), 0, None).keep(b"not kept");
        assert_eq!(get(&cache, &b, 0), None, "kept by a small scan");
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
    fn a_scan_publishes_when_its_chunk_is_full_and_at_its_end() {
        let n = 2 * CHUNK_BYTES / 1000 + 2;
        let cache = DerivedCache::new(n);
        let kept = cache.shape(b"a", true).expect("shape");
        let gather = RefCell::new(Gathered::default());
        let bytes = |i: usize| vec![(i % 251) as u8; 1000];
        for i in 0..n {
            cache.derived(Some(&kept), i, Some(&gather)).keep(&bytes(i));
        }
        // The first chunk filled after 66 entries: those are found, the rest not yet.
        let full = CHUNK_BYTES.div_ceil(1000);
        assert_eq!(get(&cache, &kept, 0), Some(&bytes(0)[..]));
        assert_eq!(get(&cache, &kept, full - 1), Some(&bytes(full - 1)[..]));
        assert_eq!(get(&cache, &kept, n - 1), None, "gathered, not published");
        cache.publish(&kept, &mut gather.borrow_mut());
        for i in 0..n {
            assert_eq!(get(&cache, &kept, i), Some(&bytes(i)[..]), "entry {i}");
        }
    }

    #[test]
    fn concurrent_scans_keep_each_entry_once_and_right() {
        let n = 3000;
        let cache = DerivedCache::new(n);
        let kept = cache.shape(b"a", true).expect("shape");
        // 100 bytes each: a chunk every 656 entries, so scans read each other's chunks.
        let bytes = |i: usize| {
            let mut b = format!("entry {i}").into_bytes();
            b.resize(100, b'.');
            b
        };
        std::thread::scope(|s| {
            for t in 0..4 {
                let (cache, kept) = (&cache, &kept);
                s.spawn(move || {
                    let gather = RefCell::new(Gathered::default());
                    // Every entry, each scan from its own starting point.
                    for k in 0..n {
                        let i = (k + t * n / 4) % n;
                        let d = cache.derived(Some(kept), i, Some(&gather));
                        match d.get() {
                            Some(b) => assert_eq!(b, &bytes(i)[..], "entry {i}"),
                            None => d.keep(&bytes(i)),
                        }
                    }
                    cache.publish(kept, &mut gather.borrow_mut());
                });
            }
        });
        for i in 0..n {
            assert_eq!(get(&cache, &kept, i), Some(&bytes(i)[..]), "entry {i}");
        }
    }

    #[test]
    fn nothing_is_kept_past_the_byte_budget_or_the_chunk_table() {
        let cache = DerivedCache::new(2);
        let a = cache.shape(b"a", true).expect("shape");
        let too_long = vec![0u8; 1 << LEN_BITS];
        keep(&cache, &a, 0, &too_long);
        assert_eq!(get(&cache, &a, 0), None, "longer than a slot can say");
        let left = MAX_DERIVED_BYTES - cache.charged.load(Ordering::Relaxed);
        assert!(cache.charge(left - 4));
        keep(&cache, &a, 0, b"small");
        assert_eq!(get(&cache, &a, 0), None, "past the budget");
        keep(&cache, &a, 1, b"tiny");
        assert_eq!(get(&cache, &a, 1), Some(&b"tiny"[..]), "within it");
        assert!(
            DerivedCache::new(MAX_DERIVED_BYTES)
                .shape(b"x", true)
                .is_none(),
            "slots past the budget"
        );
        let cache = DerivedCache::new(MAX_CHUNKS + 1);
        let kept = cache.shape(b"a", true).expect("shape");
        for i in 0..=MAX_CHUNKS {
            keep(&cache, &kept, i, b"x");
        }
        assert_eq!(get(&cache, &kept, MAX_CHUNKS - 1), Some(&b"x"[..]));
        assert_eq!(get(&cache, &kept, MAX_CHUNKS), None, "no chunk left");
    }
}
