//! Lakes on Google Cloud Storage (`gs://bucket/prefix`): object_store's GCS client, with tokens
//! from the one credentials module and an endpoint override for emulators and private endpoints.

use super::{Lake, LakeUrlError};
use crate::credentials::GoogleAuth;
use object_store::gcp::{GcpCredential, GcpSigningCredential, GoogleCloudStorageBuilder};
use object_store::{ClientOptions, CredentialProvider, StaticCredentialProvider};
use std::sync::Arc;
use url::Url;

/// The conventional variable Google's client libraries read to find a GCS emulator.
pub const EMULATOR_ENV: &str = "STORAGE_EMULATOR_HOST";

/// How to reach a cloud lake.
#[derive(Debug, Clone, Default)]
pub struct CloudAccess {
    /// Google credentials; application default credentials when `None`.
    pub google: Option<Arc<GoogleAuth>>,
    /// A GCS endpoint instead of `https://storage.googleapis.com` (an emulator, a private
    /// endpoint). `$STORAGE_EMULATOR_HOST` is used when unset.
    pub gcs_endpoint: Option<String>,
}

/// Hands object_store the tokens of [`GoogleAuth`], so the lake and the BigQuery loader share one
/// cache and one set of error messages.
#[derive(Debug)]
struct TokenProvider {
    auth: Arc<GoogleAuth>,
    bucket: String,
}

#[async_trait::async_trait]
impl CredentialProvider for TokenProvider {
    type Credential = GcpCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<GcpCredential>> {
        let bearer = self
            .auth
            .token()
            .await
            .map_err(|e| object_store::Error::Unauthenticated {
                path: format!("gs://{}", self.bucket),
                source: Box::new(e),
            })?;
        Ok(Arc::new(GcpCredential { bearer }))
    }
}

pub(super) fn open(location: &str, url: &Url, access: &CloudAccess) -> Result<Lake, LakeUrlError> {
    let invalid = |reason: String| LakeUrlError::Invalid {
        url: location.to_owned(),
        reason,
    };
    let bucket = url
        .host_str()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| invalid("it names no bucket (expected gs://bucket/prefix)".into()))?;
    let endpoint = access
        .gcs_endpoint
        .clone()
        .or_else(|| std::env::var(EMULATOR_ENV).ok())
        .map(|e| {
            if e.contains("://") {
                e
            } else {
                format!("http://{e}")
            }
        });
    let auth = match &access.google {
        Some(auth) => auth.clone(),
        None if endpoint.is_some() && access.gcs_endpoint.is_none() => {
            // An emulator named by the environment takes no credentials, as in Google's libraries.
            Arc::new(GoogleAuth::anonymous())
        }
        None => Arc::new(GoogleAuth::discover().map_err(|e| invalid(e.to_string()))?),
    };
    let mut builder = GoogleCloudStorageBuilder::new()
        .with_bucket_name(bucket)
        .with_credentials(Arc::new(TokenProvider {
            auth,
            bucket: bucket.to_owned(),
        }))
        // Inlet never signs URLs; without this the builder would look for signing keys itself.
        .with_signing_credentials(Arc::new(StaticCredentialProvider::new(
            GcpSigningCredential {
                email: String::new(),
                private_key: None,
            },
        )));
    if let Some(endpoint) = &endpoint {
        builder = builder
            .with_base_url(endpoint.trim_end_matches('/'))
            .with_client_options(ClientOptions::new().with_allow_http(true));
    }
    let store = builder.build().map_err(|e| invalid(e.to_string()))?;
    let prefix = url.path().trim_matches('/');
    Ok(Lake::with_store(Arc::new(store), prefix, location))
}
