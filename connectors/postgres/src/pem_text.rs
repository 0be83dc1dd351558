//! The PEM texts of the TLS settings (`sslrootcert`, `sslcert`, `sslkey`) read into DER, with
//! errors that name the setting, spot a path written where the text belongs, and never repeat a
//! key's content.

use crate::tls::TlsSettingError;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Said when a setting holds something that is not PEM: most likely a path.
fn hint(text: &str, setting: &'static str) -> &'static str {
    let path_like = !text.contains("-----") && !text.trim().contains('\n');
    match (path_like, setting) {
        (false, _) => "",
        (true, "sslrootcert") => {
            "; it looks like a path: connectors read no files, write `sslrootcert = { file = \"server-ca.pem\" }` so inlet reads it"
        }
        (true, "sslcert") => {
            "; it looks like a path: connectors read no files, write `sslcert = { file = \"client-cert.pem\" }` so inlet reads it"
        }
        (true, _) => {
            "; it looks like a path: connectors read no files, write `sslkey = { file = \"client-key.pem\" }` so inlet reads it"
        }
    }
}

fn pem_detail(error: &pem::Error) -> String {
    match error {
        pem::Error::MissingSectionEnd { .. } => {
            "a `-----BEGIN` line has no matching `-----END` line".into()
        }
        pem::Error::IllegalSectionStart { .. } => "a `-----BEGIN` line is malformed".into(),
        pem::Error::Base64Decode(_) => {
            "the base64 between `-----BEGIN` and `-----END` does not decode".into()
        }
        other => other.to_string(),
    }
}

/// The certificates of a PEM text, at least one.
pub fn certificates(
    setting: &'static str,
    text: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsSettingError> {
    let certificates = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSettingError::NotPem {
            setting,
            detail: pem_detail(&e),
            hint: hint(text, setting),
        })?;
    if certificates.is_empty() {
        return Err(TlsSettingError::NoCertificate(setting, hint(text, setting)));
    }
    for (index, certificate) in certificates.iter().enumerate() {
        rustls::server::ParsedCertificate::try_from(certificate).map_err(|e| {
            TlsSettingError::BadCertificate {
                setting,
                index: index + 1,
                detail: e.to_string(),
            }
        })?;
    }
    Ok(certificates)
}

/// The private key of a PEM text. Its content never appears in an error.
pub fn private_key(text: &str) -> Result<PrivateKeyDer<'static>, TlsSettingError> {
    PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsSettingError::NoKey(hint(text, "sslkey")),
        other => TlsSettingError::NotPem {
            setting: "sslkey",
            detail: pem_detail(&other),
            hint: "",
        },
    })
}
