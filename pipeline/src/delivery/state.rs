//! A sink's durable state on disk: one JSON file per sink stage, replaced atomically (write to
//! a temporary file, fsync, rename), so a crash leaves the old or the new state, never half.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// The directory or the file could not be used.
    #[error("sink state {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The state file of one sink stage: `<dir>/<stage>.state.json`.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    /// What was last written (or read), so unchanged state is not rewritten.
    last: Option<Vec<u8>>,
}

impl StateFile {
    /// The state file of `stage` in `dir` (created if missing).
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn open(dir: &Path, stage: &str) -> Result<StateFile, StateFileError> {
        fs::create_dir_all(dir).map_err(|source| StateFileError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(StateFile {
            path: dir.join(format!("{stage}.state.json")),
            last: None,
        })
    }

    /// Where the state lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state, `None` when there is none yet.
    ///
    /// # Errors
    /// The file exists but cannot be read.
    pub fn load(&mut self) -> Result<Option<Vec<u8>>, StateFileError> {
        match fs::read(&self.path) {
            Ok(bytes) => {
                self.last = Some(bytes.clone());
                Ok(Some(bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateFileError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Replaces the state with `bytes` (no write when unchanged).
    ///
    /// # Errors
    /// The temporary file cannot be written or renamed.
    pub fn save(&mut self, bytes: &[u8]) -> Result<(), StateFileError> {
        if self.last.as_deref() == Some(bytes) {
            return Ok(());
        }
        let tmp = self.path.with_extension("json.tmp");
        let io = |source| StateFileError::Io {
            path: tmp.clone(),
            source,
        };
        let mut f = fs::File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, &self.path).map_err(|source| StateFileError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.last = Some(bytes.to_vec());
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn saves_atomically_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = StateFile::open(&dir.path().join("state"), "pagerduty").unwrap();
        assert_eq!(f.load().unwrap(), None);
        f.save(br#"{"open":{}}"#).unwrap();
        f.save(br#"{"open":{"k":1}}"#).unwrap();
        let mut again = StateFile::open(&dir.path().join("state"), "pagerduty").unwrap();
        assert_eq!(again.load().unwrap().unwrap(), br#"{"open":{"k":1}}"#);
        assert!(again.path().ends_with("pagerduty.state.json"));
        assert!(!dir.path().join("state/pagerduty.json.tmp").exists());
    }
}
