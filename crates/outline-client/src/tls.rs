//! Pinning Outline's self-signed certificate by its SHA-256 fingerprint.
//!
//! The Outline installer generates a self-signed certificate with the server's address in its
//! CN only (no SAN) and `CA:TRUE`, so neither CA verification nor "trust it as a root" can
//! accept it. What the installer hands out instead is `certSha256`, the SHA-256 of the
//! certificate's DER encoding. This module checks that fingerprint **inside the TLS
//! handshake**: the request line carries the secret `apiUrl` path, so a check after the
//! connection is up (a response hook, or accepting any certificate and comparing later) would
//! already have sent the secret to an impostor.
//!
//! The handshake signatures (TLS 1.2 `ServerKeyExchange`, TLS 1.3 `CertificateVerify`) are
//! still verified by the crypto provider against the pinned certificate's public key: the
//! certificate itself is public, so without that check anyone could replay it.

use std::fmt;
use std::str::FromStr;

/// A `certSha256` value: the SHA-256 of the server certificate's DER encoding.
///
/// Parsed case-insensitively, with or without `:` separators (as `openssl x509 -fingerprint`
/// prints it); shown as 64 upper-case hex digits, the form the Outline installer prints.
/// A fingerprint is not a secret — the certificate is sent to anyone who connects.
///
/// ```
/// use outline_client::CertSha256;
///
/// let pin: CertSha256 = "0bb78685b1661fd520a3f50763bf8cf680b9cd7aac01082acef03a221bf9a881".parse()?;
/// let with_colons: CertSha256 = "0B:B7:86:85:B1:66:1F:D5:20:A3:F5:07:63:BF:8C:F6:80:B9:CD:7A:AC:01:08:2A:CE:F0:3A:22:1B:F9:A8:81".parse()?;
/// assert_eq!(pin, with_colons);
/// assert_eq!(pin.to_string(), "0BB78685B1661FD520A3F50763BF8CF680B9CD7AAC01082ACEF03A221BF9A881");
/// assert!("0BB7".parse::<CertSha256>().is_err());
/// # Ok::<_, outline_client::InvalidCertSha256>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertSha256([u8; 32]);

/// Why a `certSha256` string was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidCertSha256 {
    reason: String,
}

impl fmt::Display for InvalidCertSha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "certSha256 must be 64 hex digits (the SHA-256 of the certificate, optionally with `:` separators): {}",
            self.reason
        )
    }
}

impl std::error::Error for InvalidCertSha256 {}

impl CertSha256 {
    /// Wraps a raw 32-byte digest.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `digest` equals this fingerprint, compared in constant time.
    pub fn matches(&self, digest: &[u8]) -> bool {
        constant_time_eq(&self.0, digest)
    }
}

impl FromStr for CertSha256 {
    type Err = InvalidCertSha256;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        let mut count = 0usize;
        let mut high: Option<u8> = None;
        for ch in text.trim().chars() {
            if ch == ':' {
                if high.is_some() {
                    return Err(InvalidCertSha256 {
                        reason: "a `:` splits a byte in two".to_owned(),
                    });
                }
                continue;
            }
            let Some(nibble) = ch.to_digit(16) else {
                return Err(InvalidCertSha256 {
                    reason: format!("`{ch}` is not a hex digit"),
                });
            };
            #[allow(clippy::cast_possible_truncation, reason = "a hex digit is < 16")]
            let nibble = nibble as u8;
            match high.take() {
                None => high = Some(nibble),
                Some(h) => {
                    if count == bytes.len() {
                        return Err(InvalidCertSha256 {
                            reason: "more than 64 digits".to_owned(),
                        });
                    }
                    bytes[count] = (h << 4) | nibble;
                    count += 1;
                }
            }
        }
        if high.is_some() || count != bytes.len() {
            return Err(InvalidCertSha256 {
                reason: format!("got {} digits", count * 2 + usize::from(high.is_some())),
            });
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for CertSha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CertSha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertSha256({self})")
    }
}

/// Compares two byte strings without an early exit, so the time taken does not tell an
/// attacker how many leading bytes of a forged certificate's digest were right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(feature = "rustls")]
pub(crate) use pinned::pinned_client_config;

#[cfg(feature = "rustls")]
mod pinned {
    use std::fmt;
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, OtherError, SignatureScheme};

    use super::CertSha256;

    /// The error a pin mismatch ends the handshake with. Its text reaches the user through
    /// `metrics_core::Error::Tls`, so it says what to check.
    #[derive(Debug)]
    struct PinMismatch {
        expected: CertSha256,
        presented: CertSha256,
    }

    impl fmt::Display for PinMismatch {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "the server certificate's SHA-256 fingerprint {} does not match the pinned certSha256 {}; \
                 check certSha256 (and that apiUrl points at the right server), no request was sent",
                self.presented, self.expected
            )
        }
    }

    impl std::error::Error for PinMismatch {}

    /// Accepts exactly the certificate whose DER hashes to the pin, whatever its names,
    /// chain, validity dates or CA flag — the installer's certificate has no SAN and
    /// `CA:TRUE`, and Outline Manager ignores all of those too.
    #[derive(Debug)]
    struct PinnedVerifier {
        pin: CertSha256,
        provider: Arc<CryptoProvider>,
    }

    impl ServerCertVerifier for PinnedVerifier {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let digest = ring::digest::digest(&ring::digest::SHA256, end_entity.as_ref());
            if self.pin.matches(digest.as_ref()) {
                return Ok(ServerCertVerified::assertion());
            }
            let mut presented = [0u8; 32];
            presented.copy_from_slice(digest.as_ref());
            Err(rustls::Error::Other(OtherError(Arc::new(PinMismatch {
                expected: self.pin,
                presented: CertSha256(presented),
            }))))
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    }

    /// A rustls client configuration that trusts only the pinned certificate: no system or
    /// webpki roots, so CA-bundle environment variables have no effect either.
    pub(crate) fn pinned_client_config(pin: CertSha256) -> Result<rustls::ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(PinnedVerifier {
            pin,
            provider: Arc::clone(&provider),
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(config)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn verifier(pin: CertSha256) -> PinnedVerifier {
            PinnedVerifier {
                pin,
                provider: Arc::new(rustls::crypto::ring::default_provider()),
            }
        }

        #[test]
        fn accepts_only_the_pinned_der() {
            let der = CertificateDer::from(b"not really a certificate".to_vec());
            let digest = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
            let mut pin = [0u8; 32];
            pin.copy_from_slice(digest.as_ref());
            let name = ServerName::try_from("203.0.113.7").unwrap();
            let now = UnixTime::now();

            assert!(
                verifier(CertSha256(pin))
                    .verify_server_cert(&der, &[], &name, &[], now)
                    .is_ok()
            );

            let mut wrong = pin;
            wrong[31] ^= 1;
            let err = verifier(CertSha256(wrong))
                .verify_server_cert(&der, &[], &name, &[], now)
                .unwrap_err();
            let text = err.to_string();
            assert!(text.contains("does not match"), "{text}");
            assert!(text.contains("certificate"), "{text}");
            assert!(text.contains(&CertSha256(pin).to_string()), "{text}");
        }

        #[test]
        fn signature_schemes_come_from_the_provider() {
            let schemes = verifier(CertSha256([0; 32])).supported_verify_schemes();
            assert!(schemes.contains(&SignatureScheme::RSA_PSS_SHA256));
            assert!(schemes.contains(&SignatureScheme::ECDSA_NISTP256_SHA256));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        let upper = "0BB78685B1661FD520A3F50763BF8CF680B9CD7AAC01082ACEF03A221BF9A881";
        let pin: CertSha256 = upper.parse().unwrap();
        assert_eq!(pin.to_string(), upper);
        assert_eq!(
            format!("  {}\n", upper.to_lowercase())
                .parse::<CertSha256>()
                .unwrap(),
            pin
        );
        for bad in [
            "",
            "0BB7",
            &format!("{upper}00"),
            &format!("{}X", &upper[..63]),
            "0:BB78685B1661FD520A3F50763BF8CF680B9CD7AAC01082ACEF03A221BF9A881",
        ] {
            assert!(bad.parse::<CertSha256>().is_err(), "{bad}");
        }
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
