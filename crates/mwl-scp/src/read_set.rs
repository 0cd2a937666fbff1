//! Reading a received data set (a command set, an identifier) with dicom-rs, without the
//! cost dicom-rs puts on its end.
//!
//! dicom-rs finds the end of a data set by trying to read one more element header and
//! failing with an unexpected end of input, an error it then treats as the end. Its errors
//! capture a stack backtrace when `RUST_BACKTRACE=1` (or `RUST_LIB_BACKTRACE=1`) is set in
//! the environment, as it often is on servers: that capture, twice per C-FIND (command set
//! and identifier), took about a quarter of the server's CPU under load, and its global
//! lock made the threads wait for each other.
//!
//! [`read`] therefore hands dicom-rs a decoder that knows where the bytes end: asked for a
//! header there, it gives the same "end of input" error, built without a backtrace. What
//! is read, and every error inside the data set, are dicom-rs's own.

use dicom_dictionary_std::StandardDataDictionary;
use dicom_encoding::TransferSyntax;
use dicom_encoding::decode::Error as HeaderError;
use dicom_encoding::text::SpecificCharacterSet;
use dicom_object::{InMemDicomObject, ReadError};
use dicom_parser::StatefulDecode;
use dicom_parser::stateful::decode::{DynStatefulDecoder, Error as DecodeError, Result};

use dicom_core::header::{DataElementHeader, SequenceItemHeader};
use dicom_core::value::PrimitiveValue;

/// Why a data set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadSetError {
    /// dicom-rs has no decoder for the transfer syntax.
    #[error("cannot decode transfer syntax {ts}: {source}")]
    TransferSyntax {
        /// The transfer syntax's name.
        ts: String,
        /// dicom-rs's reason.
        #[source]
        source: Box<DecodeError>,
    },
    /// dicom-rs could not read the data set.
    #[error(transparent)]
    Read(Box<ReadError>),
}

/// Reads `bytes`, a whole data set encoded in `ts` (ASCII until its Specific Character Set
/// says otherwise), as dicom-rs's `read_dataset_with_ts` does.
pub fn read(bytes: &[u8], ts: &TransferSyntax) -> Result<InMemDicomObject, ReadSetError> {
    let decoder = DynStatefulDecoder::new_with(bytes, ts, SpecificCharacterSet::default(), 0)
        .map_err(|e| ReadSetError::TransferSyntax {
            ts: ts.name().to_string(),
            source: Box::new(e),
        })?;
    let bounded = Bounded {
        inner: decoder,
        end: bytes.len() as u64,
    };
    InMemDicomObject::read_dataset_with_dict(bounded, StandardDataDictionary)
        .map_err(|e| ReadSetError::Read(Box::new(e)))
}

/// A decoder over bytes that end at `end`.
struct Bounded<D> {
    inner: D,
    end: u64,
}

impl<D: StatefulDecode> StatefulDecode for Bounded<D> {
    type Reader = D::Reader;

    fn decode_header(&mut self) -> Result<DataElementHeader> {
        let position = self.inner.position();
        if position >= self.end {
            // What the inner decoder would say here (reading the tag finds no byte), but
            // without capturing a backtrace.
            return Err(DecodeError::DecodeElementHeader {
                position,
                source: HeaderError::ReadHeaderTag {
                    backtrace: None,
                    source: std::io::ErrorKind::UnexpectedEof.into(),
                },
            });
        }
        self.inner.decode_header()
    }

    fn decode_item_header(&mut self) -> Result<SequenceItemHeader> {
        self.inner.decode_item_header()
    }

    fn read_value(&mut self, header: &DataElementHeader) -> Result<PrimitiveValue> {
        self.inner.read_value(header)
    }

    fn read_value_preserved(&mut self, header: &DataElementHeader) -> Result<PrimitiveValue> {
        self.inner.read_value_preserved(header)
    }

    fn read_value_bytes(&mut self, header: &DataElementHeader) -> Result<PrimitiveValue> {
        self.inner.read_value_bytes(header)
    }

    fn read_to_vec(&mut self, length: u32, vec: &mut Vec<u8>) -> Result<()> {
        self.inner.read_to_vec(length, vec)
    }

    fn read_u32_to_vec(&mut self, length: u32, vec: &mut Vec<u32>) -> Result<()> {
        self.inner.read_u32_to_vec(length, vec)
    }

    fn read_to<W>(&mut self, length: u32, out: W) -> Result<()>
    where
        Self: Sized,
        W: std::io::Write,
    {
        self.inner.read_to(length, out)
    }

    fn skip_bytes(&mut self, length: u32) -> Result<()> {
        self.inner.skip_bytes(length)
    }

    fn seek(&mut self, position: u64) -> Result<()>
    where
        Self::Reader: std::io::Seek,
    {
        self.inner.seek(position)
    }

    fn position(&self) -> u64 {
        self.inner.position()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, VR};
    use dicom_dictionary_std::tags;
    use dicom_transfer_syntax_registry::entries::{
        EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
    };

    /// wire_check's sample, with an element after its sequence: reading must not stop
    /// before it.
    fn sample() -> InMemDicomObject {
        let mut obj = crate::wire_check::tests::sample();
        obj.put(DataElement::new(
            tags::REQUESTED_PROCEDURE_ID,
            VR::SH,
            PrimitiveValue::from("RP1 "),
        ));
        obj
    }

    /// (0008,0005) `ISO_IR 100` and a Latin-1 PatientName, Implicit VR Little Endian.
    fn latin1() -> Vec<u8> {
        let mut b = Vec::new();
        for (group, element, value) in [
            (0x0008u16, 0x0005u16, &b"ISO_IR 100"[..]),
            (0x0010, 0x0010, &b"M\xfcller^J\xf6rg "[..]),
        ] {
            b.extend_from_slice(&group.to_le_bytes());
            b.extend_from_slice(&element.to_le_bytes());
            b.extend_from_slice(&(value.len() as u32).to_le_bytes());
            b.extend_from_slice(value);
        }
        b
    }

    #[test]
    fn reads_what_dicom_rs_reads_to_the_last_element() {
        for ts in [
            IMPLICIT_VR_LITTLE_ENDIAN.erased(),
            EXPLICIT_VR_LITTLE_ENDIAN.erased(),
        ] {
            let mut bytes = Vec::new();
            sample()
                .write_dataset_with_ts(&mut bytes, &ts)
                .expect("write");
            let ours = read(&bytes, &ts).expect("read");
            let theirs = InMemDicomObject::read_dataset_with_ts(&bytes[..], &ts).expect("read");
            // Compared as text: dicom-rs holds no undefined length equal to another.
            assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
            assert!(
                ours.get(tags::REQUESTED_PROCEDURE_ID).is_some(),
                "the last element is read"
            );
            assert!(
                read(&bytes[..bytes.len() - 1], &ts).is_err(),
                "a truncated data set is an error"
            );
            assert_eq!(read(&[], &ts).expect("empty").iter().count(), 0);
        }
        let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
        let name = read(&latin1(), &ts).expect("read");
        let name = name.get(tags::PATIENT_NAME).expect("name");
        assert_eq!(name.to_str().expect("text"), "Müller^Jörg");
    }
}
