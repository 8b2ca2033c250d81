//! Credentials of an object store: the JSON value of a secret, one shape per scheme, unknown
//! keys refused; and building the `object_store` client from a location and its credentials
//! (only from them: never from the environment, a file or instance metadata).

use std::sync::Arc;

use object_store::{ClientOptions, ObjectStore, RetryConfig, StaticCredentialProvider};
use serde::Deserialize;

use super::{CONNECT_TIMEOUT, Location, REQUEST_TIMEOUT, Scheme};

/// `{"access_key_id", "secret_access_key", "session_token"?, "region"?, "endpoint"?,
/// "virtual_hosted_style"?}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Credentials {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    session_token: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    virtual_hosted_style: bool,
}

/// `{"account"?, "access_key"? | "sas_token"?, "endpoint"?}` (the account may come from an
/// `abfss://` URL instead).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureCredentials {
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    access_key: Option<String>,
    #[serde(default)]
    sas_token: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
}

/// `{"service_account": {…key file…} | "anonymous": true, "endpoint"?}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcsCredentials {
    #[serde(default)]
    service_account: Option<serde_json::Value>,
    #[serde(default)]
    anonymous: bool,
    #[serde(default)]
    endpoint: Option<String>,
}

/// The credentials of one object store (never printed: no `Debug`).
pub enum Credentials {
    S3(S3Credentials),
    Azure(AzureCredentials),
    Gcs(GcsCredentials),
}

impl Credentials {
    /// Parse a secret's JSON value for `scheme`; the error says what is wrong, never the value.
    pub fn parse(scheme: Scheme, json: &str) -> Result<Credentials, String> {
        let value: serde_json::Value = serde_json::from_str(json.trim())
            .map_err(|e| format!("the secret is not JSON (line {}, column {})", e.line(), e.column()))?;
        if !value.is_object() {
            return Err("the secret is not a JSON object".into());
        }
        let shape = |e: serde_json::Error| format!("{} credentials: {e}", scheme.name());
        let creds = match scheme {
            Scheme::S3 => Credentials::S3(serde_json::from_value(value).map_err(shape)?),
            Scheme::Azure => {
                let c: AzureCredentials = serde_json::from_value(value).map_err(shape)?;
                if c.access_key.is_some() && c.sas_token.is_some() {
                    return Err("azure credentials: give `access_key` or `sas_token`, not both".into());
                }
                if c.access_key.is_none() && c.sas_token.is_none() {
                    return Err("azure credentials: `access_key` or `sas_token` is required".into());
                }
                Credentials::Azure(c)
            }
            Scheme::Gcs => {
                let c: GcsCredentials = serde_json::from_value(value).map_err(shape)?;
                if c.service_account.is_some() == c.anonymous {
                    return Err("gcs credentials: give exactly one of `service_account` or `anonymous: true`".into());
                }
                Credentials::Gcs(c)
            }
        };
        if let Some(endpoint) = creds.endpoint()
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(format!("`endpoint` is an http:// or https:// URL, found \"{endpoint}\""));
        }
        Ok(creds)
    }

    fn endpoint(&self) -> Option<&str> {
        match self {
            Credentials::S3(c) => c.endpoint.as_deref(),
            Credentials::Azure(c) => c.endpoint.as_deref(),
            Credentials::Gcs(c) => c.endpoint.as_deref(),
        }
    }
}

fn options(creds: &Credentials) -> ClientOptions {
    let http = creds.endpoint().is_some_and(|e| e.starts_with("http://"));
    ClientOptions::new().with_allow_http(http).with_timeout(REQUEST_TIMEOUT).with_connect_timeout(CONNECT_TIMEOUT)
}

fn retry() -> RetryConfig {
    RetryConfig { max_retries: 2, retry_timeout: std::time::Duration::from_secs(10), ..Default::default() }
}

/// The client for `location` with `creds` (of the location's scheme, as parsed).
pub(super) fn build(location: &Location, creds: &Credentials) -> object_store::Result<Arc<dyn ObjectStore>> {
    // reqwest's rustls takes the process-wide provider: ring, as the rest of the tree
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bucket = location.bucket.clone();
    Ok(match creds {
        Credentials::S3(c) => {
            let mut b = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_access_key_id(&c.access_key_id)
                .with_secret_access_key(&c.secret_access_key)
                .with_region(c.region.as_deref().unwrap_or("us-east-1"))
                .with_virtual_hosted_style_request(c.virtual_hosted_style)
                .with_client_options(options(creds))
                .with_retry(retry());
            if let Some(t) = &c.session_token {
                b = b.with_token(t);
            }
            if let Some(e) = &c.endpoint {
                b = b.with_endpoint(e);
            }
            Arc::new(b.build()?)
        }
        Credentials::Azure(c) => {
            let account =
                c.account.clone().or_else(|| location.account.clone()).ok_or_else(|| object_store::Error::Generic {
                    store: "azure",
                    source: "`account` is required (or an abfss://container@account… URL)".into(),
                })?;
            let mut b = object_store::azure::MicrosoftAzureBuilder::new()
                .with_account(account)
                .with_container_name(bucket)
                .with_client_options(options(creds))
                .with_retry(retry());
            if let Some(k) = &c.access_key {
                b = b.with_access_key(k);
            }
            if let Some(s) = &c.sas_token {
                b = b.with_config(object_store::azure::AzureConfigKey::SasKey, s);
            }
            if let Some(e) = &c.endpoint {
                b = b.with_endpoint(e.clone());
            }
            Arc::new(b.build()?)
        }
        Credentials::Gcs(c) => {
            let mut b = object_store::gcp::GoogleCloudStorageBuilder::new()
                .with_bucket_name(bucket)
                .with_client_options(options(creds))
                .with_retry(retry());
            if let Some(key) = &c.service_account {
                let key = match key {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                b = b.with_service_account_key(key);
            } else {
                let empty = object_store::gcp::GcpCredential { bearer: String::new() };
                b = b.with_credentials(Arc::new(StaticCredentialProvider::new(empty))).with_skip_signature(true);
            }
            if let Some(e) = &c.endpoint {
                b = b.with_base_url(e);
            }
            Arc::new(b.build()?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_strict_per_scheme() {
        let s3 = r#"{"access_key_id":"a","secret_access_key":"b","endpoint":"http://127.0.0.1:9"}"#;
        assert!(Credentials::parse(Scheme::S3, s3).is_ok());
        let e = Credentials::parse(Scheme::S3, r#"{"access_key_id":"a","secret_access_key":"b","regoin":"x"}"#)
            .err()
            .unwrap();
        assert!(e.contains("unknown field `regoin`"), "{e}");
        assert!(!Credentials::parse(Scheme::S3, "not json").err().unwrap().contains("not json"));
        assert!(Credentials::parse(Scheme::Azure, r#"{"account":"a"}"#).is_err());
        assert!(Credentials::parse(Scheme::Gcs, r#"{"anonymous":true,"endpoint":"http://h"}"#).is_ok());
        assert!(Credentials::parse(Scheme::Gcs, r#"{"endpoint":"http://h"}"#).is_err());
        assert!(Credentials::parse(Scheme::Gcs, r#"{"anonymous":true,"endpoint":"h"}"#).is_err());
    }
}
