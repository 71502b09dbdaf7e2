//! The registry's state: schemas by global id, subjects and their versions, compatibility
//! configuration; and its persistence to a JSON data file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use apache_avro::Schema;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::compat;
use super::error::{ApiError, RegistryError};
use super::Compatibility;

/// The version of the data file's layout.
const FORMAT: u32 = 1;

/// A reference from one schema to a named type registered under another subject/version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SchemaReference {
    pub(crate) name: String,
    pub(crate) subject: String,
    pub(crate) version: u32,
}

/// A schema as stored under its global id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredSchema {
    /// The schema text (compact JSON of the first registration).
    pub(crate) schema: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) references: Vec<SchemaReference>,
}

/// One version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VersionEntry {
    pub(crate) version: u32,
    pub(crate) id: u32,
    #[serde(default)]
    pub(crate) deleted: bool,
}

/// Everything that is persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Persisted {
    format: u32,
    /// The next global id to hand out; ids are never reused.
    next_id: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    global_compatibility: Option<Compatibility>,
    #[serde(default)]
    subject_compatibility: BTreeMap<String, Compatibility>,
    #[serde(default)]
    schemas: BTreeMap<u32, StoredSchema>,
    /// Versions of each subject, ascending by version.
    #[serde(default)]
    subjects: BTreeMap<String, Vec<VersionEntry>>,
}

impl Default for Persisted {
    fn default() -> Self {
        Self {
            format: FORMAT,
            next_id: 1,
            global_compatibility: None,
            subject_compatibility: BTreeMap::new(),
            schemas: BTreeMap::new(),
            subjects: BTreeMap::new(),
        }
    }
}

/// A schema from a request, parsed and ready to compare or store.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// Compact JSON text to store.
    pub(crate) text: String,
    pub(crate) references: Vec<SchemaReference>,
    /// Self-contained (references inlined) schema, for compatibility checks.
    pub(crate) schema: Arc<Schema>,
    /// Identity: the normalized schema plus its references.
    pub(crate) key: String,
}

/// The version a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionSpec {
    Latest,
    Number(u32),
}

impl VersionSpec {
    /// Parses `latest`, `-1` (latest) or a number in `1..=2^31-1`; anything else is 42202.
    pub(crate) fn parse(raw: &str) -> Result<Self, ApiError> {
        if raw.eq_ignore_ascii_case("latest") || raw == "-1" {
            return Ok(Self::Latest);
        }
        match raw.parse::<u32>() {
            Ok(n) if (1..=i32::MAX as u32).contains(&n) => Ok(Self::Number(n)),
            _ => Err(ApiError::invalid_version(raw)),
        }
    }
}

/// A subject version with its schema, as answered by several endpoints.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SubjectVersion {
    pub(crate) subject: String,
    pub(crate) version: u32,
    pub(crate) id: u32,
    pub(crate) schema: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) references: Vec<SchemaReference>,
}

/// The result of a compatibility check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompatibilityResult {
    /// Empty when compatible.
    pub(crate) messages: Vec<String>,
}

impl CompatibilityResult {
    pub(crate) fn is_compatible(&self) -> bool {
        self.messages.is_empty()
    }
}

/// The registry's state with its derived indexes.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    data: Persisted,
    /// Self-contained parsed schema per id.
    parsed: HashMap<u32, Arc<Schema>>,
    /// Identity key → id.
    by_key: HashMap<String, u32>,
    default_compatibility: Compatibility,
}

impl Store {
    /// An empty store.
    pub(crate) fn new(default_compatibility: Compatibility) -> Self {
        Self {
            data: Persisted::default(),
            parsed: HashMap::new(),
            by_key: HashMap::new(),
            default_compatibility,
        }
    }

    /// Loads the store from `path`; a missing file is an empty store.
    pub(crate) async fn load(
        path: &Path,
        default_compatibility: Compatibility,
    ) -> Result<Self, RegistryError> {
        let bytes = match tokio::fs::read(path).await {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::new(default_compatibility));
            }
            Err(source) => {
                return Err(RegistryError::ReadDataFile {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let corrupt = |reason: String| RegistryError::CorruptDataFile {
            path: path.to_owned(),
            reason,
        };
        let data: Persisted = serde_json::from_slice(&bytes)
            .map_err(|e| corrupt(format!("not a registry state: {e}")))?;
        Self::from_persisted(data, default_compatibility).map_err(corrupt)
    }

    /// Checks the invariants of `data` and builds the indexes.
    fn from_persisted(
        data: Persisted,
        default_compatibility: Compatibility,
    ) -> Result<Self, String> {
        if data.format != FORMAT {
            return Err(format!(
                "unsupported format {} (expected {FORMAT})",
                data.format
            ));
        }
        if let Some(max) = data.schemas.keys().next_back() {
            if data.next_id <= *max {
                return Err(format!(
                    "next_id {} is not above the highest schema id {max}",
                    data.next_id
                ));
            }
        }
        for (subject, versions) in &data.subjects {
            if versions.is_empty() {
                return Err(format!("subject '{subject}' has no versions"));
            }
            let mut previous = 0;
            for entry in versions {
                if entry.version <= previous {
                    return Err(format!(
                        "subject '{subject}': versions are not strictly ascending at version {}",
                        entry.version
                    ));
                }
                previous = entry.version;
                if !data.schemas.contains_key(&entry.id) {
                    return Err(format!(
                        "subject '{subject}' version {} points to unknown schema id {}",
                        entry.version, entry.id
                    ));
                }
            }
        }
        let mut store = Self {
            data,
            parsed: HashMap::new(),
            by_key: HashMap::new(),
            default_compatibility,
        };
        let ids: Vec<(u32, StoredSchema)> = store
            .data
            .schemas
            .iter()
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        for (id, stored) in ids {
            let candidate = store
                .prepare(&stored.schema, stored.references.clone())
                .map_err(|e| format!("schema id {id} is not valid: {}", e.message))?;
            store.parsed.insert(id, candidate.schema);
            store.by_key.entry(candidate.key).or_insert(id);
        }
        Ok(store)
    }

    /// The persisted part, to compare and to write.
    pub(crate) fn persisted(&self) -> &Persisted {
        &self.data
    }

    // ---- schemas -------------------------------------------------------------------------

    /// Parses a schema from a request (resolving its references) into a [`Candidate`].
    pub(crate) fn prepare(
        &self,
        raw: &str,
        references: Vec<SchemaReference>,
    ) -> Result<Candidate, ApiError> {
        let json: serde_json::Value =
            serde_json::from_str(raw).map_err(ApiError::invalid_schema)?;
        let text = json.to_string();
        let mut texts = Vec::new();
        let mut seen = BTreeSet::new();
        for reference in &references {
            let id = self.reference_id(reference)?;
            self.collect_reference_texts(id, &mut seen, &mut texts)?;
        }
        let (schema, schemata) = if texts.is_empty() {
            (
                Schema::parse_str(&text).map_err(ApiError::invalid_schema)?,
                Vec::new(),
            )
        } else {
            Schema::parse_str_with_list(&text, &texts).map_err(ApiError::invalid_schema)?
        };
        let normalized = serde_json::to_string(&schema).map_err(ApiError::invalid_schema)?;
        let refs = serde_json::to_string(&references).map_err(ApiError::invalid_schema)?;
        let key = format!("{normalized}\u{0}{refs}");
        let mut full = schema;
        if !schemata.is_empty() {
            full.denormalize(&schemata)
                .map_err(ApiError::invalid_schema)?;
        }
        Ok(Candidate {
            text,
            references,
            schema: Arc::new(full),
            key,
        })
    }

    fn reference_id(&self, reference: &SchemaReference) -> Result<u32, ApiError> {
        self.data
            .subjects
            .get(&reference.subject)
            .and_then(|versions| versions.iter().find(|v| v.version == reference.version))
            .map(|v| v.id)
            .ok_or_else(|| {
                ApiError::invalid_schema(format!(
                    "reference '{}' to subject '{}' version {} not found",
                    reference.name, reference.subject, reference.version
                ))
            })
    }

    /// Pushes the texts of schema `id` and everything it references, dependencies first.
    fn collect_reference_texts(
        &self,
        id: u32,
        seen: &mut BTreeSet<u32>,
        out: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        if !seen.insert(id) {
            return Ok(());
        }
        let stored =
            self.data.schemas.get(&id).ok_or_else(|| {
                ApiError::invalid_schema(format!("referenced schema {id} is gone"))
            })?;
        for reference in &stored.references {
            let child = self.reference_id(reference)?;
            self.collect_reference_texts(child, seen, out)?;
        }
        out.push(stored.schema.clone());
        Ok(())
    }

    /// The schema stored under a global id.
    pub(crate) fn schema_by_id(&self, id: u32) -> Option<&StoredSchema> {
        self.data.schemas.get(&id)
    }

    /// `(subject, version)` pairs that use schema `id`.
    pub(crate) fn usages(&self, id: u32, include_deleted: bool) -> Vec<(String, u32)> {
        self.data
            .subjects
            .iter()
            .flat_map(|(subject, versions)| {
                versions
                    .iter()
                    .filter(move |v| v.id == id && (include_deleted || !v.deleted))
                    .map(move |v| (subject.clone(), v.version))
            })
            .collect()
    }

    /// Ids of live schemas whose references point to `subject`/`version`.
    pub(crate) fn referenced_by(&self, subject: &str, version: u32) -> Vec<u32> {
        self.data
            .schemas
            .iter()
            .filter(|(_, s)| {
                s.references
                    .iter()
                    .any(|r| r.subject == subject && r.version == version)
            })
            .map(|(id, _)| *id)
            .filter(|id| !self.usages(*id, false).is_empty())
            .collect()
    }

    // ---- subjects ------------------------------------------------------------------------

    fn live_versions(&self, subject: &str, include_deleted: bool) -> Vec<VersionEntry> {
        self.data
            .subjects
            .get(subject)
            .map(|versions| {
                versions
                    .iter()
                    .filter(|v| include_deleted || !v.deleted)
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Subject names, sorted.
    pub(crate) fn subjects(&self, include_deleted: bool, prefix: &str) -> Vec<String> {
        self.data
            .subjects
            .iter()
            .filter(|(name, versions)| {
                name.starts_with(prefix) && versions.iter().any(|v| include_deleted || !v.deleted)
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Version numbers of a subject (40401 when it has none).
    pub(crate) fn versions(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> Result<Vec<u32>, ApiError> {
        let versions = self.live_versions(subject, include_deleted);
        if versions.is_empty() {
            return Err(ApiError::subject_not_found(subject));
        }
        Ok(versions.iter().map(|v| v.version).collect())
    }

    /// Resolves a version of a subject (40401 / 40402).
    pub(crate) fn resolve(
        &self,
        subject: &str,
        spec: VersionSpec,
        include_deleted: bool,
    ) -> Result<VersionEntry, ApiError> {
        let versions = self.live_versions(subject, include_deleted);
        if versions.is_empty() {
            return Err(ApiError::subject_not_found(subject));
        }
        match spec {
            VersionSpec::Latest => versions
                .last()
                .copied()
                .ok_or_else(|| ApiError::subject_not_found(subject)),
            VersionSpec::Number(n) => versions
                .iter()
                .find(|v| v.version == n)
                .copied()
                .ok_or_else(|| ApiError::version_not_found(n)),
        }
    }

    /// The full answer for a resolved subject version.
    pub(crate) fn subject_version(&self, subject: &str, entry: VersionEntry) -> SubjectVersion {
        let stored = self.data.schemas.get(&entry.id);
        SubjectVersion {
            subject: subject.to_owned(),
            version: entry.version,
            id: entry.id,
            schema: stored.map(|s| s.schema.clone()).unwrap_or_default(),
            references: stored.map(|s| s.references.clone()).unwrap_or_default(),
        }
    }

    /// Is this schema registered under `subject`? (40401 / 40403)
    pub(crate) fn lookup(
        &self,
        subject: &str,
        candidate: &Candidate,
        include_deleted: bool,
    ) -> Result<VersionEntry, ApiError> {
        let versions = self.live_versions(subject, include_deleted);
        if versions.is_empty() {
            return Err(ApiError::subject_not_found(subject));
        }
        let id = self
            .by_key
            .get(&candidate.key)
            .copied()
            .ok_or_else(ApiError::schema_not_found)?;
        versions
            .iter()
            .rev()
            .find(|v| v.id == id)
            .copied()
            .ok_or_else(ApiError::schema_not_found)
    }

    /// Registers a schema under `subject` and returns its global id: the existing one when the
    /// subject already has it, otherwise after checking compatibility (409).
    pub(crate) fn register(
        &mut self,
        subject: &str,
        candidate: Candidate,
    ) -> Result<u32, ApiError> {
        let known_id = self.by_key.get(&candidate.key).copied();
        let live = self.live_versions(subject, false);
        if let Some(id) = known_id {
            if live.iter().any(|v| v.id == id) {
                return Ok(id);
            }
        }
        let level = self.effective_compatibility(subject);
        let result = self.check_against(level, &candidate.schema, &live, true);
        if !result.is_compatible() {
            return Err(ApiError::incompatible(subject, &result.messages));
        }
        let id = match known_id {
            Some(id) => id,
            None => {
                let id = self.data.next_id;
                self.data.next_id = id.checked_add(1).ok_or_else(|| {
                    ApiError::new(
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        50001,
                        "Error in the backend data store: schema ids exhausted",
                    )
                })?;
                self.data.schemas.insert(
                    id,
                    StoredSchema {
                        schema: candidate.text.clone(),
                        references: candidate.references.clone(),
                    },
                );
                self.parsed.insert(id, Arc::clone(&candidate.schema));
                self.by_key.insert(candidate.key.clone(), id);
                id
            }
        };
        let versions = self.data.subjects.entry(subject.to_owned()).or_default();
        let version = versions.last().map_or(1, |v| v.version.saturating_add(1));
        versions.push(VersionEntry {
            version,
            id,
            deleted: false,
        });
        tracing::info!(subject, version, id, "schema registered");
        Ok(id)
    }

    /// Checks `schema` against `previous` (ascending live versions) at `level`. With
    /// `by_level`, a non-transitive level uses only the latest of `previous`.
    pub(crate) fn check_against(
        &self,
        level: Compatibility,
        schema: &Schema,
        previous: &[VersionEntry],
        by_level: bool,
    ) -> CompatibilityResult {
        let selected: &[VersionEntry] = if by_level && !level.is_transitive() {
            previous
                .len()
                .checked_sub(1)
                .map_or(&[], |i| &previous[i..])
        } else {
            previous
        };
        let old: Vec<compat::Previous<'_>> = selected
            .iter()
            .filter_map(|entry| {
                let parsed = self.parsed.get(&entry.id)?;
                let stored = self.data.schemas.get(&entry.id)?;
                Some(compat::Previous {
                    version: entry.version,
                    schema: parsed,
                    text: &stored.schema,
                })
            })
            .collect();
        CompatibilityResult {
            messages: compat::check(level, schema, &old),
        }
    }

    /// Live versions of a subject, ascending (possibly empty).
    pub(crate) fn live(&self, subject: &str) -> Vec<VersionEntry> {
        self.live_versions(subject, false)
    }

    /// Soft- or hard-deletes a whole subject; returns the versions deleted.
    pub(crate) fn delete_subject(
        &mut self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<u32>, ApiError> {
        let all = self.live_versions(subject, true);
        if all.is_empty() {
            return Err(ApiError::subject_not_found(subject));
        }
        if permanent {
            if all.iter().any(|v| !v.deleted) {
                return Err(ApiError::subject_not_soft_deleted(subject));
            }
            for v in &all {
                self.ensure_unreferenced(subject, v.version)?;
            }
            self.data.subjects.remove(subject);
            self.data.subject_compatibility.remove(subject);
            self.drop_unused_schemas(all.iter().map(|v| v.id));
            tracing::info!(subject, "subject permanently deleted");
            Ok(all.iter().map(|v| v.version).collect())
        } else {
            let live: Vec<u32> = all
                .iter()
                .filter(|v| !v.deleted)
                .map(|v| v.version)
                .collect();
            if live.is_empty() {
                return Err(ApiError::subject_soft_deleted(subject));
            }
            for v in &live {
                self.ensure_unreferenced(subject, *v)?;
            }
            if let Some(versions) = self.data.subjects.get_mut(subject) {
                versions.iter_mut().for_each(|v| v.deleted = true);
            }
            tracing::info!(subject, "subject soft deleted");
            Ok(live)
        }
    }

    /// Soft- or hard-deletes one version; returns its number.
    pub(crate) fn delete_version(
        &mut self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> Result<u32, ApiError> {
        // A numbered version is found even when soft-deleted (so a second soft delete is 40406);
        // "latest" means the latest live version, or the latest of all for a permanent delete.
        let entry = match spec {
            VersionSpec::Latest => self.resolve(subject, spec, permanent)?,
            VersionSpec::Number(_) => self.resolve(subject, spec, true)?,
        };
        self.ensure_unreferenced(subject, entry.version)?;
        if permanent {
            if !entry.deleted {
                return Err(ApiError::version_not_soft_deleted(subject, entry.version));
            }
            if let Some(versions) = self.data.subjects.get_mut(subject) {
                versions.retain(|v| v.version != entry.version);
                if versions.is_empty() {
                    self.data.subjects.remove(subject);
                    self.data.subject_compatibility.remove(subject);
                }
            }
            self.drop_unused_schemas([entry.id]);
        } else {
            if entry.deleted {
                return Err(ApiError::version_soft_deleted(subject, entry.version));
            }
            if let Some(v) = self
                .data
                .subjects
                .get_mut(subject)
                .and_then(|versions| versions.iter_mut().find(|v| v.version == entry.version))
            {
                v.deleted = true;
            }
        }
        tracing::info!(
            subject,
            version = entry.version,
            permanent,
            "version deleted"
        );
        Ok(entry.version)
    }

    fn ensure_unreferenced(&self, subject: &str, version: u32) -> Result<(), ApiError> {
        if self.referenced_by(subject, version).is_empty() {
            Ok(())
        } else {
            Err(ApiError::referenced(subject, version))
        }
    }

    /// Forgets schemas (by id) that no subject version uses any more; ids are not reused.
    fn drop_unused_schemas(&mut self, ids: impl IntoIterator<Item = u32>) {
        for id in ids {
            if self.usages(id, true).is_empty() {
                self.data.schemas.remove(&id);
                self.parsed.remove(&id);
                self.by_key.retain(|_, v| *v != id);
            }
        }
    }

    // ---- configuration -------------------------------------------------------------------

    /// The global level.
    pub(crate) fn global_compatibility(&self) -> Compatibility {
        self.data
            .global_compatibility
            .unwrap_or(self.default_compatibility)
    }

    /// Sets the global level.
    pub(crate) fn set_global_compatibility(&mut self, level: Compatibility) {
        self.data.global_compatibility = Some(level);
    }

    /// Resets the global level to the configured default; returns the previous level.
    pub(crate) fn reset_global_compatibility(&mut self) -> Compatibility {
        let previous = self.global_compatibility();
        self.data.global_compatibility = None;
        previous
    }

    /// The subject-level setting, if any.
    pub(crate) fn subject_compatibility(&self, subject: &str) -> Option<Compatibility> {
        self.data.subject_compatibility.get(subject).copied()
    }

    /// Sets the subject-level setting.
    pub(crate) fn set_subject_compatibility(&mut self, subject: &str, level: Compatibility) {
        self.data
            .subject_compatibility
            .insert(subject.to_owned(), level);
    }

    /// Removes the subject-level setting; returns it.
    pub(crate) fn delete_subject_compatibility(&mut self, subject: &str) -> Option<Compatibility> {
        self.data.subject_compatibility.remove(subject)
    }

    /// Subject level, else global.
    pub(crate) fn effective_compatibility(&self, subject: &str) -> Compatibility {
        self.subject_compatibility(subject)
            .unwrap_or_else(|| self.global_compatibility())
    }
}

/// Writes `data` to `path` atomically: a temporary sibling, fsync, then rename.
pub(crate) async fn persist(path: &Path, data: &Persisted) -> Result<(), RegistryError> {
    let bytes = serde_json::to_vec_pretty(data).map_err(RegistryError::Encode)?;
    let tmp = temp_sibling(path);
    let write_err = |source| RegistryError::WriteDataFile {
        path: tmp.clone(),
        source,
    };
    let mut file = tokio::fs::File::create(&tmp).await.map_err(write_err)?;
    file.write_all(&bytes).await.map_err(write_err)?;
    file.sync_all().await.map_err(write_err)?;
    drop(file);
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|source| RegistryError::WriteDataFile {
            path: path.to_owned(),
            source,
        })
}

fn temp_sibling(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "registry".into());
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn record(fields: &str) -> String {
        format!(r#"{{"type":"record","name":"R","fields":[{fields}]}}"#)
    }

    #[test]
    fn version_spec_parsing() {
        assert_eq!(VersionSpec::parse("latest").unwrap(), VersionSpec::Latest);
        assert_eq!(VersionSpec::parse("-1").unwrap(), VersionSpec::Latest);
        assert_eq!(VersionSpec::parse("3").unwrap(), VersionSpec::Number(3));
        for bad in ["0", "-2", "abc", "2147483648", ""] {
            assert_eq!(VersionSpec::parse(bad).unwrap_err().code, 42202, "{bad}");
        }
    }

    #[test]
    fn identity_ignores_formatting_but_not_defaults() {
        let store = Store::new(Compatibility::Backward);
        let a = store
            .prepare(&record(r#"{"name":"a","type":"long"}"#), vec![])
            .unwrap();
        let b = store
            .prepare(
                "{ \"fields\": [ {\"type\": \"long\", \"name\": \"a\"} ], \"name\": \"R\", \"type\": \"record\" }",
                vec![],
            )
            .unwrap();
        let c = store
            .prepare(&record(r#"{"name":"a","type":"long","default":1}"#), vec![])
            .unwrap();
        assert_eq!(a.key, b.key);
        assert_ne!(a.key, c.key);
    }

    #[test]
    fn persisted_round_trip_rebuilds_indexes() {
        let mut store = Store::new(Compatibility::Backward);
        let c = store
            .prepare(&record(r#"{"name":"a","type":"long"}"#), vec![])
            .unwrap();
        let id = store.register("s", c.clone()).unwrap();
        let json = serde_json::to_vec(store.persisted()).unwrap();
        let back = Store::from_persisted(
            serde_json::from_slice(&json).unwrap(),
            Compatibility::Backward,
        )
        .unwrap();
        assert_eq!(back.lookup("s", &c, false).unwrap().id, id);
    }

    #[test]
    fn invariants_are_checked() {
        let mut data = Persisted::default();
        data.subjects.insert(
            "s".into(),
            vec![VersionEntry {
                version: 1,
                id: 7,
                deleted: false,
            }],
        );
        let err = Store::from_persisted(data, Compatibility::Backward).unwrap_err();
        assert!(err.contains("unknown schema id 7"), "{err}");
    }
}
