//! Secrets: values that must never reach a log line, a `Debug` dump or an error message.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// A secret value (token, password, API key, HMAC key). Its `Debug` and `Display` print `***`,
/// so a secret inside a config struct or an error can be logged without leaking it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value read from the environment or a secret file.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plain value, for building the one request header or signature that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of this secret in `text` by `***` (for error messages that
    /// echo a server response or a URL).
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, "***")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret comes from, as written in a topology: `{env: NAME}` or `{file: PATH}` (a
/// mapping with exactly one key). Configs hold this reference; the stage resolves it once, at
/// start, with [`SecretSource::resolve`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SecretSourceFields")]
pub enum SecretSource {
    /// Read from this environment variable.
    Env(String),
    /// Read from this file (one trailing line break trimmed), e.g. a mounted Kubernetes secret.
    File(PathBuf),
}

/// The YAML shape of a [`SecretSource`] (serde_yaml_ng cannot read an externally tagged enum
/// from a mapping, hence this struct and `try_from`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretSourceFields {
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    file: Option<PathBuf>,
}

impl TryFrom<SecretSourceFields> for SecretSource {
    type Error = String;

    fn try_from(f: SecretSourceFields) -> Result<Self, Self::Error> {
        match (f.env, f.file) {
            (Some(e), None) if !e.is_empty() => Ok(SecretSource::Env(e)),
            (None, Some(p)) if !p.as_os_str().is_empty() => Ok(SecretSource::File(p)),
            _ => Err(
                "a secret is given by reference: `{env: NAME}` or `{file: PATH}`, exactly one"
                    .to_string(),
            ),
        }
    }
}

/// A secret reference could not be resolved. Never contains the secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is not set, empty, or not UTF-8.
    #[error("environment variable {0} is not set (or is empty or not UTF-8)")]
    Env(String),
    /// The file cannot be read, or is empty.
    #[error("secret file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl SecretSource {
    /// Reads the secret now. A file's one trailing `\n` / `\r\n` is removed; an empty value is
    /// an error.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        match self {
            SecretSource::Env(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
                _ => Err(SecretError::Env(name.clone())),
            },
            SecretSource::File(path) => {
                let err = |reason: String| SecretError::File {
                    path: path.display().to_string(),
                    reason,
                };
                let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
                let value = text.strip_suffix('\n').unwrap_or(&text);
                let value = value.strip_suffix('\r').unwrap_or(value);
                if value.is_empty() {
                    return Err(err("empty".to_string()));
                }
                Ok(Secret::new(value))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{Secret, SecretError, SecretSource};

    #[test]
    fn resolves_files_and_env_and_refuses_empty_values() {
        let dir = std::env::temp_dir().join(format!("secflow-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "s3cr3t\r\n").unwrap();
        assert_eq!(
            SecretSource::File(path.clone()).resolve().unwrap().expose(),
            "s3cr3t"
        );
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            SecretSource::File(path.clone()).resolve(),
            Err(SecretError::File { reason, .. }) if reason == "empty"
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let err = SecretSource::Env("SECFLOW_TEST_SURELY_UNSET_VAR".into())
            .resolve()
            .unwrap_err();
        assert_eq!(
            err,
            SecretError::Env("SECFLOW_TEST_SURELY_UNSET_VAR".into())
        );
    }

    #[test]
    fn yaml_takes_exactly_one_of_env_or_file() {
        let ok: SecretSource = serde_yaml_ng::from_str("{env: X}").unwrap();
        assert_eq!(ok, SecretSource::Env("X".into()));
        assert!(serde_yaml_ng::from_str::<SecretSource>("{env: X, file: /y}").is_err());
        assert!(serde_yaml_ng::from_str::<SecretSource>("hunter2").is_err());
        assert!(serde_yaml_ng::from_str::<SecretSource>("{envv: X}").is_err());
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(s.redact("token hunter2 rejected"), "token *** rejected");
    }
}
