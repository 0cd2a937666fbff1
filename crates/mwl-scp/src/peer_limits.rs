//! Established associations per peer: at most `max_associations_per_peer` from one
//! network address and `max_associations_per_ae` under one calling AE title, so one
//! console (or one misbehaving host) cannot hold every association slot.
//!
//! [`PeerLimits::admit`] counts an established association in and returns a [`PeerHold`]
//! that counts it out when dropped; [`PeerLimits::would_refuse`] answers the same question
//! without counting, for refusing a request before it is negotiated.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Which limit a peer reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerLimit {
    /// `max_associations_per_peer`: this many from the address are open.
    Address(usize),
    /// `max_associations_per_ae`: this many under the calling AE title are open.
    CallingAe(usize),
}

impl PeerLimit {
    /// The config key of the limit.
    pub(crate) fn key(self) -> &'static str {
        match self {
            PeerLimit::Address(_) => "max_associations_per_peer",
            PeerLimit::CallingAe(_) => "max_associations_per_ae",
        }
    }

    /// The limit's value.
    pub(crate) fn max(self) -> usize {
        match self {
            PeerLimit::Address(n) | PeerLimit::CallingAe(n) => n,
        }
    }
}

#[derive(Default)]
struct Counts {
    by_address: HashMap<IpAddr, usize>,
    by_ae: HashMap<String, usize>,
}

/// The open associations per address and per calling AE title.
pub(crate) struct PeerLimits {
    per_address: usize,
    per_ae: usize,
    counts: Arc<Mutex<Counts>>,
}

/// One counted association; counted out when dropped.
pub(crate) struct PeerHold {
    address: IpAddr,
    /// The calling AE title it is counted under, once known.
    ae: Option<String>,
    counts: Arc<Mutex<Counts>>,
}

/// The AE title as counted: blanks trimmed (DICOM pads AE titles with spaces).
fn ae_key(ae: &str) -> String {
    ae.trim().to_string()
}

/// The counts, even if a holder panicked while holding the lock (they stay consistent:
/// every change is one map update).
fn lock(counts: &Mutex<Counts>) -> MutexGuard<'_, Counts> {
    counts.lock().unwrap_or_else(|e| e.into_inner())
}

impl PeerLimits {
    pub(crate) fn new(per_address: usize, per_ae: usize) -> PeerLimits {
        PeerLimits {
            per_address: per_address.max(1),
            per_ae: per_ae.max(1),
            counts: Arc::default(),
        }
    }

    /// Whether one more association from `address` (under `ae`, when known) would pass a
    /// limit; counts nothing.
    pub(crate) fn would_refuse(&self, address: IpAddr, ae: Option<&str>) -> Option<PeerLimit> {
        let c = lock(&self.counts);
        if c.by_address.get(&address).copied().unwrap_or(0) >= self.per_address {
            return Some(PeerLimit::Address(self.per_address));
        }
        let ae = ae.map(ae_key)?;
        (c.by_ae.get(&ae).copied().unwrap_or(0) >= self.per_ae)
            .then_some(PeerLimit::CallingAe(self.per_ae))
    }

    /// Counts an association from `address` in, under the calling AE title `ae` when it
    /// is known, or says which limit it would pass.
    pub(crate) fn admit(&self, address: IpAddr, ae: Option<&str>) -> Result<PeerHold, PeerLimit> {
        let mut c = lock(&self.counts);
        if c.by_address.get(&address).copied().unwrap_or(0) >= self.per_address {
            return Err(PeerLimit::Address(self.per_address));
        }
        let ae = ae.map(ae_key);
        if let Some(ae) = &ae
            && c.by_ae.get(ae).copied().unwrap_or(0) >= self.per_ae
        {
            return Err(PeerLimit::CallingAe(self.per_ae));
        }
        *c.by_address.entry(address).or_default() += 1;
        if let Some(ae) = &ae {
            *c.by_ae.entry(ae.clone()).or_default() += 1;
        }
        Ok(PeerHold {
            address,
            ae,
            counts: self.counts.clone(),
        })
    }
}

impl Drop for PeerHold {
    fn drop(&mut self) {
        let mut c = lock(&self.counts);
        count_out(&mut c.by_address, &self.address);
        if let Some(ae) = &self.ae {
            count_out(&mut c.by_ae, ae);
        }
    }
}

/// Counts one out of `map[key]`, removing the key at zero (so the maps stay small).
fn count_out<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// The calling AE title of an A-ASSOCIATE-RQ from its first bytes (PS3.8 9.3.2: PDU type
/// 01, then length, version and reserved, Called AE at 10..26, Calling AE at 26..42), or
/// `None` when `head` is not the start of one.
pub(crate) fn calling_ae_of_request(head: &[u8]) -> Option<String> {
    if head.len() < 42 || head[0] != 0x01 {
        return None;
    }
    let ae = std::str::from_utf8(&head[26..42]).ok()?.trim();
    (!ae.is_empty()).then(|| ae.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn limits_per_address_and_per_ae_and_holds_count_out() {
        let limits = PeerLimits::new(3, 2);
        let a = limits.admit(ip(1), Some("MRI_3T")).expect("first");
        let b = limits
            .admit(ip(2), Some("MRI_3T "))
            .expect("second, padded title");
        assert_eq!(
            limits.admit(ip(3), Some("MRI_3T")).err(),
            Some(PeerLimit::CallingAe(2))
        );
        let c = limits.admit(ip(1), Some("EEG")).expect("another AE");
        let d = limits.admit(ip(1), Some("CT")).expect("third from ip 1");
        assert_eq!(
            limits.admit(ip(1), Some("PET")).err(),
            Some(PeerLimit::Address(3))
        );
        assert_eq!(limits.admit(ip(1), None).err(), Some(PeerLimit::Address(3)));
        assert_eq!(
            limits.would_refuse(ip(1), None),
            Some(PeerLimit::Address(3))
        );
        assert_eq!(
            limits.would_refuse(ip(4), Some("MRI_3T")),
            Some(PeerLimit::CallingAe(2))
        );
        assert_eq!(limits.would_refuse(ip(4), Some("EEG")), None);
        drop((a, c));
        assert!(
            limits.admit(ip(1), Some("MRI_3T")).is_ok(),
            "counted out on drop"
        );
        drop((b, d));
        assert!(
            !lock(&limits.counts).by_ae.contains_key("CT"),
            "zero counts removed"
        );
    }

    #[test]
    fn the_calling_ae_is_read_from_a_request_head() {
        let mut head = vec![0x01, 0, 0, 0, 0, 200, 0, 1, 0, 0];
        head.extend(b"MWLBRIDGE       ");
        head.extend(b"MRI_3T          ");
        assert_eq!(calling_ae_of_request(&head).as_deref(), Some("MRI_3T"));
        assert_eq!(calling_ae_of_request(&head[..41]), None, "too short");
        head[0] = 0x07;
        assert_eq!(calling_ae_of_request(&head), None, "not an A-ASSOCIATE-RQ");
    }
}
