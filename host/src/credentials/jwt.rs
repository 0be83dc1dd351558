//! The signed JWT a service account exchanges for an access token (RFC 7523, RS256).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// Signs assertions with a service account's private key.
pub struct Signer {
    key: RsaKeyPair,
}

impl Signer {
    /// Reads a PKCS#8 PEM private key, as found in service-account key files.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let body: String = pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        let der = STANDARD
            .decode(body.trim())
            .map_err(|e| format!("the PEM body is not base64: {e}"))?;
        let key =
            RsaKeyPair::from_pkcs8(&der).map_err(|e| format!("not an RSA PKCS#8 key: {e}"))?;
        Ok(Self { key })
    }

    /// A JWT asserting `issuer` wants `scope` from `audience`, valid for an hour from now.
    pub fn assertion(
        &self,
        issuer: &str,
        key_id: Option<&str>,
        scope: &str,
        audience: &str,
    ) -> Result<String, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| format!("the clock is before 1970: {e}"))?
            .as_secs();
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(key_id) = key_id {
            header["kid"] = key_id.into();
        }
        let claims = serde_json::json!({"iss": issuer, "scope": scope, "aud": audience, "iat": now, "exp": now + 3600});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|e| format!("signing failed: {e}"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}
