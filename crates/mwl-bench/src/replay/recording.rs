//! The recorded answers of a replay and their file.
//!
//! The file: the magic `MWLREPLAY1`, the largest PDU the recording client accepted
//! (u32 LE), the presentation context ID the server accepted (u8), the number of answers
//! (u32 LE), then per answer the identifier (u32 LE length, bytes) and the answer's
//! P-DATA-TF PDUs as received (u32 LE length, bytes).

use std::collections::HashMap;
use std::sync::Arc;

/// The first bytes of a recording file.
pub const MAGIC: &[u8; 10] = b"MWLREPLAY1";

/// Why a recording could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordingError {
    /// The file does not start with [`MAGIC`].
    #[error("not a replay recording (no MWLREPLAY1 magic)")]
    Magic,
    /// The file ends inside a field (its offset).
    #[error("recording truncated at byte {0}")]
    Truncated(usize),
    /// Bytes follow the last answer (their offset).
    #[error("{0} bytes of garbage after the last answer")]
    Trailing(usize),
    /// An answer does not consist of whole P-DATA-TF PDUs (its index).
    #[error("answer {0} is not a sequence of P-DATA-TF PDUs")]
    NotPData(usize),
}

/// Recorded answers, by the identifier of the query they answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recording {
    /// The largest PDU the recording client accepted: the answers' PDUs are no longer.
    pub max_pdu: u32,
    /// The presentation context ID of the answers' PDVs.
    pub context_id: u8,
    answers: HashMap<Vec<u8>, Arc<[u8]>>,
}

impl Recording {
    /// An empty recording.
    pub fn new(max_pdu: u32, context_id: u8) -> Recording {
        Recording {
            max_pdu,
            context_id,
            answers: HashMap::new(),
        }
    }

    /// Keeps `pdus` (whole P-DATA-TF PDUs) as the answer to `identifier`.
    pub fn insert(&mut self, identifier: Vec<u8>, pdus: Vec<u8>) {
        self.answers.insert(identifier, pdus.into());
    }

    /// The answer recorded for `identifier`.
    pub fn answer(&self, identifier: &[u8]) -> Option<&Arc<[u8]>> {
        self.answers.get(identifier)
    }

    /// How many answers it holds.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    /// Whether it holds no answer.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// The file's bytes (answers in identifier order: the same recording, the same file).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.max_pdu.to_le_bytes());
        out.push(self.context_id);
        let mut keys: Vec<&Vec<u8>> = self.answers.keys().collect();
        keys.sort();
        out.extend_from_slice(&len32(keys.len()).to_le_bytes());
        for key in keys {
            let answer = &self.answers[key];
            out.extend_from_slice(&len32(key.len()).to_le_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(&len32(answer.len()).to_le_bytes());
            out.extend_from_slice(answer);
        }
        out
    }

    /// Reads a file's bytes; every answer must be whole P-DATA-TF PDUs.
    pub fn from_bytes(bytes: &[u8]) -> Result<Recording, RecordingError> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(RecordingError::Magic);
        }
        let max_pdu = r.u32()?;
        let context_id = r.take(1)?[0];
        let count = r.u32()?;
        let mut rec = Recording::new(max_pdu, context_id);
        for index in 0..count as usize {
            let n = r.u32()? as usize;
            let identifier = r.take(n)?.to_vec();
            let n = r.u32()? as usize;
            let pdus = r.take(n)?;
            if !crate::replay::framing::is_pdata_sequence(pdus) {
                return Err(RecordingError::NotPData(index));
            }
            rec.insert(identifier, pdus.to_vec());
        }
        if r.at != bytes.len() {
            return Err(RecordingError::Trailing(bytes.len() - r.at));
        }
        Ok(rec)
    }
}

/// A length as the file's u32 (an answer above 4 GiB is not recorded: saturates).
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordingError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(RecordingError::Truncated(self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, RecordingError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::framing::pdata;

    fn sample() -> Recording {
        let mut rec = Recording::new(16384, 1);
        let mut two = pdata(1, true, true, b"cmd1");
        two.extend(pdata(1, false, true, b"data"));
        rec.insert(b"query-b".to_vec(), two);
        rec.insert(b"query-a".to_vec(), pdata(1, true, true, b"final"));
        rec
    }

    #[test]
    fn round_trips_and_is_stable() {
        let rec = sample();
        let bytes = rec.to_bytes();
        let back = Recording::from_bytes(&bytes);
        assert_eq!(back.as_ref(), Ok(&rec));
        assert_eq!(sample().to_bytes(), bytes);
        let answer = back.ok().and_then(|r| r.answer(b"query-a").cloned());
        assert_eq!(answer.as_deref(), Some(&pdata(1, true, true, b"final")[..]));
    }

    #[test]
    fn rejects_what_is_not_a_recording() {
        let bytes = sample().to_bytes();
        assert_eq!(
            Recording::from_bytes(b"MWLREPLAY2xxxxxxxxx"),
            Err(RecordingError::Magic)
        );
        assert!(matches!(
            Recording::from_bytes(&bytes[..bytes.len() - 1]),
            Err(RecordingError::Truncated(_))
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            Recording::from_bytes(&longer),
            Err(RecordingError::Trailing(1))
        );
        let mut bad = Recording::new(16384, 1);
        bad.insert(b"q".to_vec(), b"not a PDU".to_vec());
        assert_eq!(
            Recording::from_bytes(&bad.to_bytes()),
            Err(RecordingError::NotPData(0))
        );
    }
}
