//! DICOM over TLS: the server's certificate and key, and optionally the authority whose
//! client certificates it requires (PS3.15 B.1, the Basic TLS Secure Transport profile).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    #[error("{what} {}: {problem}", path.display())]
    File {
        /// Which setting.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        problem: FileProblem,
    },
    /// rustls refused the combination (key not matching the certificate, ...).
    #[error("TLS configuration refused: {0}")]
    Config(#[source] rustls::Error),
    /// The client certificate verifier could not be built from the authorities given.
    #[error("TLS configuration refused: {0}")]
    ClientVerifier(#[source] rustls::server::VerifierBuilderError),
}

/// What is wrong with a certificate, key or authority file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileProblem {
    /// It cannot be read, or is not PEM.
    #[error("{0}")]
    Pem(#[source] rustls::pki_types::pem::Error),
    /// It holds no certificate.
    #[error("no PEM certificate in it")]
    NoCertificate,
    /// An authority's certificate is not usable as a trust anchor.
    #[error("{0}")]
    Authority(#[source] rustls::Error),
}

fn file_error(what: &'static str, path: &Path, problem: FileProblem) -> TlsError {
    TlsError::File {
        what,
        path: path.to_path_buf(),
        problem,
    }
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |e| file_error(what, path, FileProblem::Pem(e));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(file_error(what, path, FileProblem::NoCertificate));
    }
    Ok(certs)
}

/// Builds the TLS server configuration: `certificate` (PEM, the chain, leaf first) and
/// `private_key` (PEM); with `client_ca`, every console must present a certificate issued by
/// one of the authorities in that PEM file.
pub fn server_config(
    certificate: &Path,
    private_key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certificates("certificate", certificate)?;
    let key = PrivateKeyDer::from_pem_file(private_key)
        .map_err(|e| file_error("private_key", private_key, FileProblem::Pem(e)))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates("client_ca", path)? {
                roots
                    .add(cert)
                    .map_err(|e| file_error("client_ca", path, FileProblem::Authority(e)))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(TlsError::ClientVerifier)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(TlsError::Config)?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = server_config(&dir.path().join("none.pem"), &empty, None).unwrap_err();
        assert!(err.to_string().starts_with("certificate "), "{err}");
        let err = server_config(&empty, &empty, None).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }
}
