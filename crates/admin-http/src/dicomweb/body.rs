//! A response payload of data sets in the negotiated [`Representation`]:
//!
//! - DICOM JSON: the search's array of objects; the retrieve's one object;
//! - `application/dicom+xml` (one data set only): one `NativeDicomModel` document,
//!   `Content-Type: application/dicom+xml; charset=utf-8`;
//! - `multipart/related; type="application/dicom+xml"`: one part per data set, each a
//!   `NativeDicomModel` document (`Content-Type: application/dicom+xml; charset=utf-8`);
//! - `multipart/related; type="application/dicom+json"`: one part per data set, each a
//!   DICOM JSON array holding that one object (PS3.18 F.2.1: a DICOM JSON payload is an
//!   array).
//!
//! No match gives `[]` in JSON and an empty multipart body.

use axum::http::{HeaderValue, StatusCode};
use dicom_object::InMemDicomObject;

use super::media::{DICOM_JSON, DICOM_XML, Representation};
use super::multipart::Multipart;
use super::{json, xml};
use crate::api::ApiError;
use crate::api_types::ErrorBody;

/// The `Content-Type` of an XML document or part.
const XML_UTF8: &str = "application/dicom+xml; charset=utf-8";

/// A payload: its `Content-Type` and bytes.
pub(crate) struct Payload {
    pub(crate) content_type: HeaderValue,
    pub(crate) bytes: Vec<u8>,
}

/// The data sets as a search's payload (a list).
pub(crate) fn list(
    representation: Representation,
    items: &[InMemDicomObject],
) -> Result<Payload, ApiError> {
    match representation {
        Representation::Json => {
            let all: Vec<json::DataSet<'_>> = items.iter().map(json::DataSet).collect();
            Ok(Payload {
                content_type: HeaderValue::from_static(DICOM_JSON),
                bytes: serde_json::to_vec(&all).map_err(|e| failed("JSON", &e))?,
            })
        }
        // A list is never sent as one document (see `media`); one part per item.
        Representation::Xml | Representation::MultipartXml => {
            multipart(items, DICOM_XML, XML_UTF8, |o| {
                xml::document(o).map_err(|e| failed("XML", &e))
            })
        }
        Representation::MultipartJson => multipart(items, DICOM_JSON, DICOM_JSON, |o| {
            serde_json::to_vec(&[json::DataSet(o)]).map_err(|e| failed("JSON", &e))
        }),
    }
}

/// One data set as a retrieve's payload.
pub(crate) fn one(
    representation: Representation,
    item: &InMemDicomObject,
) -> Result<Payload, ApiError> {
    match representation {
        Representation::Json => Ok(Payload {
            content_type: HeaderValue::from_static(DICOM_JSON),
            bytes: serde_json::to_vec(&json::DataSet(item)).map_err(|e| failed("JSON", &e))?,
        }),
        Representation::Xml => Ok(Payload {
            content_type: HeaderValue::from_static(XML_UTF8),
            bytes: xml::document(item).map_err(|e| failed("XML", &e))?,
        }),
        Representation::MultipartXml | Representation::MultipartJson => {
            list(representation, std::slice::from_ref(item))
        }
    }
}

fn multipart(
    items: &[InMemDicomObject],
    part_type: &str,
    part_content_type: &str,
    write: impl Fn(&InMemDicomObject) -> Result<Vec<u8>, ApiError>,
) -> Result<Payload, ApiError> {
    let mut m = Multipart::new();
    for item in items {
        m.part(part_content_type, &write(item)?);
    }
    let content_type =
        HeaderValue::from_str(&m.content_type(part_type)).map_err(|e| failed("multipart", &e))?;
    Ok(Payload {
        content_type,
        bytes: m.finish(),
    })
}

fn failed(what: &str, e: &dyn std::error::Error) -> ApiError {
    tracing::error!(error = %e, "DICOMweb: a data set could not be written as {what}");
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorBody {
            error: format!("a data set could not be written as {what}"),
            fields: Vec::new(),
        },
    )
}
