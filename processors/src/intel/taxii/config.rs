//! Configuration of the TAXII poller: servers, collections, credentials by reference.
//!
//! In a topology file (YAML) one server looks like:
//!
//! ```yaml
//! name: isac
//! url: https://taxii.isac.example/taxii2/
//! auth: {basic: {username: secflow, password: {env: ISAC_TAXII_PASSWORD}}}
//! # or {bearer: {token: {file: /run/secrets/isac-token}}}
//! # or {api_key: {header: X-API-Key, key: {env: ISAC_KEY}}}
//! ca_file: /etc/secflow/isac-ca.pem
//! collections:
//!   - {api_root: /api1/, id: 91a7b528-80eb-42ed-a74d-c6fbd5a26116}
//! ```
//!
//! Secrets are never written in the file: [`SecretSource`] names an environment variable or a
//! file, and [`AuthConfig::resolve`] reads it once, at start, into a [`Secret`].

use std::path::PathBuf;

use serde::Deserialize;

use crate::secret::Secret;

pub use crate::secret::{SecretError, SecretSource};

/// HTTP basic authentication.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// User name.
    pub username: String,
    /// Password, by reference.
    pub password: SecretSource,
}

/// Bearer token authentication (`Authorization: Bearer <token>`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BearerAuthConfig {
    /// The token, by reference.
    pub token: SecretSource,
}

/// API key in a request header of the server's choice.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyAuthConfig {
    /// Header name, e.g. `X-API-Key`.
    pub header: String,
    /// The key, by reference.
    pub key: SecretSource,
}

/// How to authenticate to a TAXII server: `{basic: …}`, `{bearer: …}` or `{api_key: …}`
/// (a mapping with exactly one key).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "AuthFields", rename_all = "snake_case")]
pub enum AuthConfig {
    /// HTTP basic.
    Basic(BasicAuthConfig),
    /// Bearer token.
    Bearer(BearerAuthConfig),
    /// API key header.
    ApiKey(ApiKeyAuthConfig),
}

/// The YAML shape of an [`AuthConfig`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFields {
    #[serde(default)]
    basic: Option<BasicAuthConfig>,
    #[serde(default)]
    bearer: Option<BearerAuthConfig>,
    #[serde(default)]
    api_key: Option<ApiKeyAuthConfig>,
}

impl TryFrom<AuthFields> for AuthConfig {
    type Error = String;

    fn try_from(f: AuthFields) -> Result<Self, Self::Error> {
        match (f.basic, f.bearer, f.api_key) {
            (Some(b), None, None) => Ok(AuthConfig::Basic(b)),
            (None, Some(b), None) => Ok(AuthConfig::Bearer(b)),
            (None, None, Some(k)) => Ok(AuthConfig::ApiKey(k)),
            _ => Err(
                "auth is one of `{basic: {username, password}}`, `{bearer: {token}}`, \
                 `{api_key: {header, key}}`, exactly one"
                    .to_string(),
            ),
        }
    }
}

/// Resolved credentials, secrets read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// HTTP basic.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `<header>: <key>`.
    ApiKey {
        /// Header name.
        header: String,
        /// The key.
        key: Secret,
    },
}

impl Credentials {
    /// The secret part, to redact it from anything echoed back by the server.
    pub fn secret(&self) -> &Secret {
        match self {
            Credentials::Basic { password, .. } => password,
            Credentials::Bearer(token) => token,
            Credentials::ApiKey { key, .. } => key,
        }
    }
}

impl AuthConfig {
    /// Reads the referenced secret.
    pub fn resolve(&self) -> Result<Credentials, SecretError> {
        Ok(match self {
            AuthConfig::Basic(b) => Credentials::Basic {
                username: b.username.clone(),
                password: b.password.resolve()?,
            },
            AuthConfig::Bearer(b) => Credentials::Bearer(b.token.resolve()?),
            AuthConfig::ApiKey(k) => Credentials::ApiKey {
                header: k.header.clone(),
                key: k.key.resolve()?,
            },
        })
    }
}

/// One collection to poll.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionConfig {
    /// The API root: an absolute URL, or a path resolved against the server `url`
    /// (`/api1/`). A trailing slash is added when missing.
    pub api_root: String,
    /// The collection id (as listed by `GET {api_root}/collections/`).
    pub id: String,
    /// Where to start when there is no checkpoint yet: only objects added after this time
    /// (RFC 3339, e.g. `2024-01-01T00:00:00Z`). Absent: the whole collection.
    #[serde(default)]
    pub added_after: Option<String>,
}

/// One TAXII 2.1 server and the collections polled from it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxiiServerConfig {
    /// Short, stable name of the server; it is `source.server` of every indicator and part of
    /// the checkpoint key, so renaming it re-reads the collections.
    pub name: String,
    /// The discovery URL, e.g. `https://taxii.example.com/taxii2/`.
    pub url: String,
    /// Authentication; absent = anonymous.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// PEM file with extra CA certificates to trust (besides the system ones), for servers
    /// with a private CA. TLS verification is always on.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Allow plain `http://` URLs. Off by default: credentials would travel in clear text.
    /// For local test servers only.
    #[serde(default)]
    pub allow_http: bool,
    /// Timeout of one whole request, from connecting to the end of the body, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Timeout for establishing the connection (TCP + TLS), in seconds.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Largest response body accepted, in bytes; a larger one is an error (the body is read as
    /// a stream and reading stops there).
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// Objects per page (`limit`); servers may send fewer. Resent with every `next` request.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// `match[version]`: `all` (default) asks for every version of every object, so that no
    /// version (in particular a revocation) is missed whatever way the server combines
    /// `added_after` with its default `last`; versions are deduplicated by (`id`, `modified`)
    /// downstream. `last`, `first` or timestamps are passed through as given.
    #[serde(default = "default_match_version")]
    pub match_version: String,
    /// `match[type]`: the object types to fetch. Default `indicator` and `marking-definition`
    /// (the latter to resolve TLP markings that do not use the fixed STIX ids). Empty = every
    /// type (no filter).
    #[serde(default = "default_object_types")]
    pub object_types: Vec<String>,
    /// The collections to poll.
    pub collections: Vec<CollectionConfig>,
}

fn default_timeout_secs() -> u64 {
    60
}

fn default_connect_timeout_secs() -> u64 {
    10
}

fn default_max_response_bytes() -> u64 {
    32 * 1024 * 1024
}

fn default_page_size() -> u32 {
    100
}

fn default_match_version() -> String {
    "all".to_string()
}

fn default_object_types() -> Vec<String> {
    vec!["indicator".to_string(), "marking-definition".to_string()]
}

impl TaxiiServerConfig {
    /// A configuration with the defaults, no auth and no collections (for code and tests;
    /// files go through serde).
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> TaxiiServerConfig {
        TaxiiServerConfig {
            name: name.into(),
            url: url.into(),
            auth: None,
            ca_file: None,
            allow_http: false,
            timeout_secs: default_timeout_secs(),
            connect_timeout_secs: default_connect_timeout_secs(),
            max_response_bytes: default_max_response_bytes(),
            page_size: default_page_size(),
            match_version: default_match_version(),
            object_types: default_object_types(),
            collections: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn yaml_with_every_auth_form() {
        let text = "\
name: isac
url: https://taxii.example/taxii2/
auth: {basic: {username: u, password: {env: TAXII_TEST_PASSWORD_UNSET}}}
ca_file: /etc/ca.pem
page_size: 500
collections:
  - {api_root: /api1/, id: abc, added_after: '2024-01-01T00:00:00Z'}
";
        let c: TaxiiServerConfig = serde_yaml_ng::from_str(text).unwrap();
        assert_eq!(c.name, "isac");
        assert_eq!(c.page_size, 500);
        assert_eq!(c.match_version, "all");
        assert_eq!(c.object_types, vec!["indicator", "marking-definition"]);
        assert_eq!(c.timeout_secs, 60);
        assert!(!c.allow_http);
        assert_eq!(
            c.auth,
            Some(AuthConfig::Basic(BasicAuthConfig {
                username: "u".into(),
                password: SecretSource::Env("TAXII_TEST_PASSWORD_UNSET".into()),
            }))
        );
        assert_eq!(
            c.collections[0].added_after.as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        assert_eq!(
            c.auth.unwrap().resolve(),
            Err(SecretError::Env("TAXII_TEST_PASSWORD_UNSET".into()))
        );

        let bearer: AuthConfig = serde_yaml_ng::from_str("bearer: {token: {file: /t}}").unwrap();
        assert_eq!(
            bearer,
            AuthConfig::Bearer(BearerAuthConfig {
                token: SecretSource::File("/t".into())
            })
        );
        let key: AuthConfig =
            serde_yaml_ng::from_str("api_key: {header: X-API-Key, key: {env: K}}").unwrap();
        assert!(
            matches!(key, AuthConfig::ApiKey(ApiKeyAuthConfig { ref header, .. }) if header == "X-API-Key")
        );
    }

    #[test]
    fn yaml_refuses_ambiguous_or_unknown_keys() {
        for bad in [
            "{env: A, file: /b}",
            "{}",
            "{env: ''}",
            "{vault: x}",
            "plain-text-password",
        ] {
            assert!(
                serde_yaml_ng::from_str::<SecretSource>(bad).is_err(),
                "{bad}"
            );
        }
        for bad in [
            "basic: {username: u, password: {env: P}}\nbearer: {token: {env: T}}",
            "{}",
            "oauth: {}",
            "basic: {username: u, password: hunter2}",
        ] {
            assert!(serde_yaml_ng::from_str::<AuthConfig>(bad).is_err(), "{bad}");
        }
        let unknown = "name: a\nurl: https://x/taxii2/\ncollections: []\npassword: x\n";
        let err = serde_yaml_ng::from_str::<TaxiiServerConfig>(unknown).unwrap_err();
        assert!(err.to_string().contains("password"), "{err}");
    }

    #[test]
    fn file_secrets_lose_the_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("secflow-taxii-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "s3cret\r\n").unwrap();
        let s = SecretSource::File(path.clone()).resolve().unwrap();
        assert_eq!(s.expose(), "s3cret");
        std::fs::write(&path, "\n").unwrap();
        assert!(SecretSource::File(path.clone()).resolve().is_err());
        let missing = SecretSource::File(dir.join("nope")).resolve().unwrap_err();
        assert!(missing.to_string().contains("nope"));
        let _ = std::fs::remove_dir_all(&dir);
        // A resolved secret never shows in Debug output.
        let creds = Credentials::Bearer(Secret::new("s3cret"));
        assert!(!format!("{creds:?}").contains("s3cret"));
    }
}
