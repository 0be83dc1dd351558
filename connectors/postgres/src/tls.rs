//! TLS settings with libpq's meaning (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`), checked
//! before any connection opens and turned into a rustls client configuration per `sslmode`.

use crate::pem_text::{certificates, private_key};
use crate::verify::{AnyChain, ChainOnly};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::sync::Arc;

/// `sslmode`, as libpq reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain text only.
    Disable,
    /// Plain text first; TLS when the server refuses the plain connection.
    Allow,
    /// TLS when the server offers it, plain text when it declines.
    Prefer,
    /// TLS or nothing; the certificate is checked only when `sslrootcert` is given.
    Require,
    /// TLS, the certificate chain verified against `sslrootcert`.
    VerifyCa,
    /// TLS, the chain verified and the certificate's names checked against `host`.
    VerifyFull,
}

impl SslMode {
    /// Every mode, in libpq's order of strength.
    pub const ALL: [SslMode; 6] = [
        Self::Disable,
        Self::Allow,
        Self::Prefer,
        Self::Require,
        Self::VerifyCa,
        Self::VerifyFull,
    ];

    /// Reads a setting value.
    pub fn parse(text: &str) -> Result<Self, TlsSettingError> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str() == text)
            .ok_or_else(|| TlsSettingError::UnknownMode(text.to_owned()))
    }

    /// The setting value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// A TLS setting that cannot be used, named.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsSettingError {
    #[error("sslmode `{0}` is not one of disable, allow, prefer, require, verify-ca, verify-full")]
    UnknownMode(String),
    #[error(
        "sslmode={0} verifies the server's certificate and needs `sslrootcert`: the CA certificate(s) as PEM text \
         (`sslrootcert = {{ file = \"server-ca.pem\" }}`), or `system` for the public web roots"
    )]
    MissingRoot(&'static str),
    #[error(
        "sslrootcert=system needs sslmode=verify-full (as in libpq 16): public CAs sign certificates for any name, \
         so only the name check makes them mean something; sslmode is `{0}`"
    )]
    SystemNeedsVerifyFull(&'static str),
    #[error("`{setting}` is not PEM text ({detail}){hint}")]
    NotPem {
        setting: &'static str,
        detail: String,
        hint: &'static str,
    },
    #[error("`{0}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`){1}")]
    NoCertificate(&'static str, &'static str),
    #[error("`{setting}`: certificate {index} is not a valid X.509 certificate ({detail})")]
    BadCertificate {
        setting: &'static str,
        index: usize,
        detail: String,
    },
    #[error(
        "`sslkey` holds no private key (PEM `BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY`){0}"
    )]
    NoKey(&'static str),
    #[error(
        "`sslkey` is a key this connector cannot sign with ({0}); use an RSA, ECDSA P-256/P-384 or Ed25519 key"
    )]
    UnsupportedKey(String),
    #[error("`sslkey` does not belong to the certificate in `sslcert`")]
    KeyMismatch,
    #[error(
        "`{0}` is set but `{1}` is not: a client certificate needs both (PEM text, e.g. `{1} = {{ file = \"...\" }}`)"
    )]
    HalfClientCertificate(&'static str, &'static str),
    #[error("`host` `{0}` is neither a DNS name nor an IP address, so TLS cannot name the server")]
    BadHost(String),
    #[error("the TLS configuration could not be built: {0}")]
    Build(String),
}

impl From<TlsSettingError> for inlet_sdk::Error {
    fn from(error: TlsSettingError) -> Self {
        inlet_sdk::Error::config(error.to_string())
    }
}

/// The cipher suites offered. PostgreSQL picks by its own order (`ssl_prefer_server_ciphers`
/// is on by default), which puts AES-GCM first; in WebAssembly, without AES instructions,
/// ChaCha20-Poly1305 decrypts about 2.4 times cheaper, so it is offered alone first, and
/// everything when the server has no ChaCha20 (a retry on a new connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suites {
    /// ChaCha20-Poly1305 only (TLS 1.3 and 1.2).
    ChaCha20,
    /// Every suite of the provider: AES-128/256-GCM and ChaCha20-Poly1305.
    All,
}

/// What the server's certificate is checked against.
#[derive(Debug)]
enum Roots {
    /// Nothing: the chain is not checked (`require` without `sslrootcert`, `prefer`, `allow`).
    Unchecked,
    /// The CA certificates of `sslrootcert`.
    Pem(Vec<CertificateDer<'static>>),
    /// The public web roots (`sslrootcert = "system"`).
    System,
}

/// The checked TLS settings of a connection.
#[derive(Debug)]
pub struct TlsSettings {
    /// How TLS is negotiated.
    pub mode: SslMode,
    roots: Roots,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

/// The raw settings, as written.
pub struct TlsSettingsText<'a> {
    pub sslmode: Option<&'a str>,
    pub sslrootcert: Option<&'a str>,
    pub sslcert: Option<&'a str>,
    pub sslkey: Option<&'a str>,
}

impl TlsSettings {
    /// Checks the settings: the mode, the PEM texts, and that they fit together.
    pub fn parse(text: &TlsSettingsText<'_>) -> Result<Self, TlsSettingError> {
        let system = text.sslrootcert.map(str::trim) == Some("system");
        let mode = match text.sslmode {
            Some(mode) => SslMode::parse(mode)?,
            // libpq 16: `sslrootcert=system` makes verify-full the default.
            None if system => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        let roots = match text.sslrootcert {
            None => Roots::Unchecked,
            Some(_) if system => {
                if mode != SslMode::VerifyFull {
                    return Err(TlsSettingError::SystemNeedsVerifyFull(mode.as_str()));
                }
                Roots::System
            }
            // libpq reads the root file only for the modes that check it.
            Some(pem)
                if matches!(
                    mode,
                    SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
                ) =>
            {
                Roots::Pem(certificates("sslrootcert", pem)?)
            }
            Some(_) => Roots::Unchecked,
        };
        if matches!(roots, Roots::Unchecked)
            && matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull)
        {
            return Err(TlsSettingError::MissingRoot(mode.as_str()));
        }
        let client = match (text.sslcert, text.sslkey) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(TlsSettingError::HalfClientCertificate("sslcert", "sslkey"));
            }
            (None, Some(_)) => {
                return Err(TlsSettingError::HalfClientCertificate("sslkey", "sslcert"));
            }
            (Some(cert), Some(key)) => Some((certificates("sslcert", cert)?, private_key(key)?)),
        };
        let settings = Self {
            mode,
            roots,
            client,
        };
        if mode != SslMode::Disable {
            // Catches a key of an unsupported type, or one that is not the certificate's, now.
            settings.client_config(Suites::All)?;
        }
        Ok(settings)
    }

    /// Whether the chain is checked: what the handshake errors say depends on it.
    pub fn verifies(&self) -> Option<&'static str> {
        match self.roots {
            Roots::Unchecked => None,
            Roots::Pem(_) => Some("`sslrootcert`"),
            Roots::System => Some("the system roots (webpki-roots, `sslrootcert = \"system\"`)"),
        }
    }

    /// Whether `sslcert` and `sslkey` are set.
    pub fn has_client_certificate(&self) -> bool {
        self.client.is_some()
    }

    /// The rustls configuration for this mode, offering `suites`.
    pub fn client_config(&self, suites: Suites) -> Result<Arc<ClientConfig>, TlsSettingError> {
        let mut provider = rustls_rustcrypto::provider();
        if suites == Suites::ChaCha20 {
            provider.cipher_suites = vec![
                rustls_rustcrypto::TLS13_CHACHA20_POLY1305_SHA256,
                rustls_rustcrypto::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                rustls_rustcrypto::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            ];
        }
        let provider = Arc::new(provider);
        let build = |e: rustls::Error| TlsSettingError::Build(e.to_string());
        let verifier: Arc<dyn ServerCertVerifier> = match &self.roots {
            Roots::Unchecked => Arc::new(AnyChain::new(&provider)),
            Roots::Pem(certificates) => {
                let mut store = RootCertStore::empty();
                for (index, certificate) in certificates.iter().enumerate() {
                    store.add(certificate.clone()).map_err(|e| {
                        TlsSettingError::BadCertificate {
                            setting: "sslrootcert",
                            index: index + 1,
                            detail: e.to_string(),
                        }
                    })?;
                }
                self.webpki(store, &provider)?
            }
            Roots::System => {
                let store = RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                self.webpki(store, &provider)?
            }
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(build)?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &self.client {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => TlsSettingError::KeyMismatch,
                    other => TlsSettingError::UnsupportedKey(other.to_string()),
                })?,
        };
        Ok(Arc::new(config))
    }

    /// The webpki verifier; under verify-ca and require, one that accepts any name.
    fn webpki(
        &self,
        store: RootCertStore,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Arc<dyn ServerCertVerifier>, TlsSettingError> {
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
            .build()
            .map_err(|e| TlsSettingError::Build(e.to_string()))?;
        Ok(match self.mode {
            SslMode::VerifyFull => webpki,
            _ => Arc::new(ChainOnly::new(webpki)),
        })
    }
}

/// The name the server's certificate is checked against (and sent as SNI when it is a DNS name).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsSettingError> {
    ServerName::try_from(host.to_owned()).map_err(|_| TlsSettingError::BadHost(host.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = include_str!("../testdata/cert.pem");
    const KEY: &str = include_str!("../testdata/key.pem");
    const KEY_SEC1: &str = include_str!("../testdata/key_sec1.pem");
    const RSA_CERT: &str = include_str!("../testdata/rsa_cert.pem");
    const RSA_KEY_PKCS1: &str = include_str!("../testdata/rsa_key_pkcs1.pem");

    fn parse(
        sslmode: Option<&str>,
        sslrootcert: Option<&str>,
        sslcert: Option<&str>,
        sslkey: Option<&str>,
    ) -> Result<TlsSettings, TlsSettingError> {
        TlsSettings::parse(&TlsSettingsText {
            sslmode,
            sslrootcert,
            sslcert,
            sslkey,
        })
    }

    #[test]
    fn every_libpq_mode_parses_and_others_are_named() {
        for mode in SslMode::ALL {
            assert_eq!(SslMode::parse(mode.as_str()), Ok(mode));
        }
        let error = SslMode::parse("verify_full").unwrap_err();
        assert_eq!(
            error.to_string(),
            "sslmode `verify_full` is not one of disable, allow, prefer, require, verify-ca, verify-full"
        );
        assert_eq!(
            SslMode::parse("Require").unwrap_err(),
            TlsSettingError::UnknownMode("Require".into())
        );
    }

    #[test]
    fn prefer_is_the_default_and_system_roots_mean_verify_full() {
        assert_eq!(parse(None, None, None, None).unwrap().mode, SslMode::Prefer);
        let system = parse(None, Some("system"), None, None).unwrap();
        assert_eq!(system.mode, SslMode::VerifyFull);
        assert!(system.verifies().unwrap().contains("system roots"));
        assert_eq!(
            parse(Some("verify-ca"), Some("system"), None, None).unwrap_err(),
            TlsSettingError::SystemNeedsVerifyFull("verify-ca")
        );
    }

    #[test]
    fn verifying_modes_need_a_root_and_require_uses_one_when_given() {
        for mode in ["verify-ca", "verify-full"] {
            let error = parse(Some(mode), None, None, None).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains(&format!("sslmode={mode} verifies")),
                "{error}"
            );
            assert!(
                error
                    .to_string()
                    .contains("sslrootcert = { file = \"server-ca.pem\" }"),
                "{error}"
            );
        }
        assert_eq!(
            parse(Some("require"), None, None, None).unwrap().verifies(),
            None
        );
        let require = parse(Some("require"), Some(CERT), None, None).unwrap();
        assert_eq!(require.verifies(), Some("`sslrootcert`"));
        // prefer and allow never check, so they do not even read the root.
        assert_eq!(
            parse(Some("prefer"), Some("junk"), None, None)
                .unwrap()
                .verifies(),
            None
        );
        assert!(
            parse(Some("verify-full"), Some(CERT), None, None)
                .unwrap()
                .client_config(Suites::All)
                .is_ok()
        );
    }

    #[test]
    fn malformed_pem_is_named_by_its_setting() {
        let path = parse(Some("verify-ca"), Some("server-ca.pem"), None, None).unwrap_err();
        assert!(
            path.to_string()
                .starts_with("`sslrootcert` holds no PEM certificate"),
            "{path}"
        );
        assert!(path.to_string().contains("it looks like a path"), "{path}");

        let cut = &CERT[..CERT.len() - 30];
        let error = parse(Some("verify-ca"), Some(cut), None, None).unwrap_err();
        assert!(
            error.to_string().starts_with("`sslrootcert` is not PEM text (a `-----BEGIN` line has no matching `-----END` line)"),
            "{error}"
        );

        let garbled = CERT.replace("MIIB", "M!!B");
        let error = parse(Some("verify-ca"), Some(&garbled), None, None).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("`sslrootcert` is not PEM text"),
            "{error}"
        );

        let not_x509 = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
        let error = parse(Some("verify-ca"), Some(not_x509), None, None).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("`sslrootcert`: certificate 1 is not a valid X.509 certificate"),
            "{error}"
        );
        let error = parse(Some("require"), None, Some(not_x509), Some(KEY)).unwrap_err();
        assert!(
            error.to_string().starts_with("`sslcert`: certificate 1"),
            "{error}"
        );
    }

    #[test]
    fn client_certificates_need_both_halves_and_a_usable_key() {
        assert!(
            parse(Some("require"), None, Some(CERT), Some(KEY))
                .unwrap()
                .has_client_certificate()
        );
        assert!(parse(Some("require"), None, Some(CERT), Some(KEY_SEC1)).is_ok());
        // Cloud SQL's client keys: RSA, PKCS#1.
        assert!(parse(Some("require"), None, Some(RSA_CERT), Some(RSA_KEY_PKCS1)).is_ok());
        assert_eq!(
            parse(Some("require"), None, Some(CERT), None).unwrap_err(),
            TlsSettingError::HalfClientCertificate("sslcert", "sslkey")
        );
        assert_eq!(
            parse(Some("require"), None, None, Some(KEY)).unwrap_err(),
            TlsSettingError::HalfClientCertificate("sslkey", "sslcert")
        );
        // A certificate where the key belongs: named, and the text is not repeated.
        let error = parse(Some("require"), None, Some(CERT), Some(CERT)).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("`sslkey` holds no private key"),
            "{error}"
        );
        let cut = &KEY[..KEY.len() - 30];
        let error = parse(Some("require"), None, Some(CERT), Some(cut)).unwrap_err();
        assert!(
            error.to_string().starts_with("`sslkey` is not PEM text"),
            "{error}"
        );
        assert!(!error.to_string().contains(&KEY[40..80]), "{error}");
        let not_a_key = "-----BEGIN PRIVATE KEY-----\naGVsbG8=\n-----END PRIVATE KEY-----\n";
        let error = parse(Some("require"), None, Some(CERT), Some(not_a_key)).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("`sslkey` is a key this connector cannot sign with"),
            "{error}"
        );
    }

    #[test]
    fn tls_names_the_host_by_dns_name_or_ip() {
        assert!(matches!(
            server_name("10.0.0.3"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("db.example.com"),
            Ok(ServerName::DnsName(_))
        ));
        assert_eq!(
            server_name("bad host").unwrap_err(),
            TlsSettingError::BadHost("bad host".into())
        );
    }
}
