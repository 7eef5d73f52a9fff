//! A generated self-signed certificate, as Outline's installer makes one.

use std::sync::Arc;

/// A self-signed certificate for `127.0.0.1` and `localhost` with its rustls server config.
#[derive(Clone)]
pub struct SelfSignedCert {
    /// The server configuration serving it.
    pub config: Arc<rustls::ServerConfig>,
    /// The certificate in DER form.
    pub der: Vec<u8>,
    /// The SHA-256 of the DER, upper-case hex, as Outline's `certSha256`.
    pub sha256_hex: String,
}

impl std::fmt::Debug for SelfSignedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfSignedCert")
            .field("sha256_hex", &self.sha256_hex)
            .finish_non_exhaustive()
    }
}

impl SelfSignedCert {
    /// Generates a new key pair and certificate.
    ///
    /// # Panics
    ///
    /// Never in practice: generation only fails for invalid names, and these are fixed.
    pub fn generate() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .expect("fixed subject names are valid");
        let der = certified.cert.der().to_vec();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("a freshly generated key matches its certificate");
        let digest = ring::digest::digest(&ring::digest::SHA256, &der);
        let sha256_hex = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        Self {
            config: Arc::new(config),
            der,
            sha256_hex,
        }
    }
}
