//! HTTPS: the server's certificate chain and key (PEM files) turned into
//! a rustls acceptor on the `ring` provider (the one the rest of the
//! daemon uses; no aws-lc or OpenSSL).

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

use super::HttpError;

fn pem_reason(e: pem::Error) -> String {
    match e {
        pem::Error::Io(io) => format!("cannot read it: {io}"),
        pem::Error::NoItemsFound => "it holds no PEM block of that kind".to_string(),
        other => format!("it is not valid PEM: {other}"),
    }
}

/// The acceptor for `cert` (chain, leaf first) and `key`.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, HttpError> {
    let cert_error = |reason: String| HttpError::TlsCert {
        path: cert.to_path_buf(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_error(pem_reason(e)))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_error(pem_reason(e)))?;
    if chain.is_empty() {
        return Err(cert_error(
            "it holds no `-----BEGIN CERTIFICATE-----` block".to_string(),
        ));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| HttpError::TlsKey {
        path: key.to_path_buf(),
        reason: pem_reason(e),
    })?;

    let pair_error = |e: rustls::Error| HttpError::TlsPair {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        reason: e.to_string(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(pair_error)?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(pair_error)?;
    // The server speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

    use super::*;

    #[test]
    fn bad_files_say_which_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");

        let e = acceptor(&cert, &key).err().unwrap();
        assert!(matches!(e, HttpError::TlsCert { .. }), "{e}");
        assert!(e.to_string().contains("cannot read it"), "{e}");

        std::fs::write(&cert, "not a certificate\n").unwrap();
        let e = acceptor(&cert, &key).err().unwrap();
        assert!(
            e.to_string().contains("no `-----BEGIN CERTIFICATE-----`"),
            "{e}"
        );

        let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(&cert, pair.cert.pem()).unwrap();
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
        let e = acceptor(&cert, &key).err().unwrap();
        assert!(matches!(e, HttpError::TlsKey { .. }), "{e}");

        // A key that is not the certificate's.
        let other = rcgen::generate_simple_self_signed(vec!["other".to_string()]).unwrap();
        std::fs::write(&key, other.signing_key.serialize_pem()).unwrap();
        let e = acceptor(&cert, &key).err().unwrap();
        assert!(matches!(e, HttpError::TlsPair { .. }), "{e}");

        std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
        acceptor(&cert, &key).unwrap();
    }
}
