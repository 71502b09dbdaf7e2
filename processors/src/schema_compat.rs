//! Compatibility gate for the canonical event schema.
//!
//! Every released version of `schemas/security_event.v1.avsc` is kept in `schemas/history/`.
//! The current schema must be BACKWARD compatible with each of them: a consumer built with the
//! current schema (reader) must read every record written with any kept version (writer), which
//! is what a Confluent registry in `BACKWARD_TRANSITIVE` mode enforces. The verdict comes from
//! `apache_avro::schema_compatibility::SchemaCompatibility::can_read`; partial compatibility
//! (enum symbols or union branches that some old records use are gone) counts as a failure. A
//! walk of both schemas then names each offending field and says why, so that the error reads
//! like `schemas/history/security_event.v1.0.avsc: field process.pid: type changed from long to
//! int, which Avro cannot promote`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use apache_avro::error::CompatibilityError;
use apache_avro::schema::{RecordSchema, SchemaKind};
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use apache_avro::Schema;

/// One reason why the current schema cannot read data written with a history schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    /// The history schema file (the writer).
    pub history_file: PathBuf,
    /// Dotted path of the field (`process.pid`, `host.ip[]`); empty for the record itself.
    pub field: String,
    /// Why that field cannot be read.
    pub reason: String,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.history_file.display(), self.reason)
        } else {
            write!(
                f,
                "{}: field {}: {}",
                self.history_file.display(),
                self.field,
                self.reason
            )
        }
    }
}

/// Why the gate failed.
#[derive(Debug, thiserror::Error)]
pub enum CompatError {
    /// The current schema text is not a valid Avro schema.
    #[error("the current schema does not parse: {0}")]
    CurrentSchema(#[source] apache_avro::Error),
    /// The history directory cannot be listed.
    #[error("cannot list history directory {}: {source}", dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A history schema file cannot be read.
    #[error("cannot read history schema {}: {source}", file.display())]
    ReadFile {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A history schema file is not a valid Avro schema.
    #[error("history schema {} does not parse: {source}", file.display())]
    HistorySchema {
        /// The file.
        file: PathBuf,
        /// The parse error.
        source: apache_avro::Error,
    },
    /// There is nothing to check against, which would make the gate pass vacuously.
    #[error("no history schemas (*.avsc) in {}", dir.display())]
    EmptyHistory {
        /// The directory.
        dir: PathBuf,
    },
    /// The current schema cannot read data written with one or more history schemas.
    #[error("the current schema is not backward compatible:\n{}", list(problems))]
    Incompatible {
        /// Every problem found, per history file.
        problems: Vec<Incompatibility>,
    },
}

fn list(problems: &[Incompatibility]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Check that `current` (schema text) can read data written with every `*.avsc` file in
/// `history_dir` (files are checked in name order; other files are ignored).
pub fn check_backward(current: &str, history_dir: &Path) -> Result<(), CompatError> {
    let reader = Schema::parse_str(current).map_err(CompatError::CurrentSchema)?;
    let entries = std::fs::read_dir(history_dir).map_err(|source| CompatError::ReadDir {
        dir: history_dir.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CompatError::ReadDir {
            dir: history_dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "avsc") {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(CompatError::EmptyHistory {
            dir: history_dir.to_path_buf(),
        });
    }

    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| CompatError::ReadFile {
            file: file.clone(),
            source,
        })?;
        let writer = Schema::parse_str(&text).map_err(|source| CompatError::HistorySchema {
            file: file.clone(),
            source,
        })?;
        for (field, reason) in explain_backward(&writer, &reader) {
            problems.push(Incompatibility {
                history_file: file.clone(),
                field,
                reason,
            });
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CompatError::Incompatible { problems })
    }
}

/// Why `reader` cannot read everything written with `writer`, as `(field path, reason)` pairs;
/// empty if it can (full compatibility).
pub fn explain_backward(writer: &Schema, reader: &Schema) -> Vec<(String, String)> {
    let verdict = SchemaCompatibility::can_read(writer, reader);
    let mut walker = Walker::new(writer, reader);
    walker.check(writer, reader, "");
    let mut problems = walker.problems;
    match verdict {
        Ok(Compatibility::Full) => {}
        Ok(Compatibility::Partial) if problems.is_empty() => problems.push((
            String::new(),
            "only partially compatible: some data written with it cannot be read \
             (enum symbols or union branches removed)"
                .to_owned(),
        )),
        Err(e) if problems.is_empty() => problems.push(compat_error_path(&e)),
        _ => {}
    }
    problems
}

/// Flatten apache-avro's nested `FieldTypeMismatch` chain into a path and a reason.
fn compat_error_path(e: &CompatibilityError) -> (String, String) {
    let mut path = Vec::new();
    let mut cur = e;
    while let CompatibilityError::FieldTypeMismatch(name, inner) = cur {
        path.push(name.as_str());
        cur = inner;
    }
    (path.join("."), cur.to_string())
}

/// Collect named types (records, enums, fixed) by full name so that references resolve.
fn collect_named<'a>(s: &'a Schema, out: &mut HashMap<String, &'a Schema>) {
    match s {
        Schema::Record(r) => {
            out.insert(r.name.fullname(None), s);
            for f in &r.fields {
                collect_named(&f.schema, out);
            }
        }
        Schema::Enum(e) => {
            out.insert(e.name.fullname(None), s);
        }
        Schema::Fixed(f) => {
            out.insert(f.name.fullname(None), s);
        }
        Schema::Union(u) => u.variants().iter().for_each(|v| collect_named(v, out)),
        Schema::Array(a) => collect_named(&a.items, out),
        Schema::Map(m) => collect_named(&m.types, out),
        _ => {}
    }
}

/// Short human name of a schema for messages.
fn type_name(s: &Schema) -> String {
    match s {
        Schema::Record(r) => format!("record {}", r.name.name()),
        Schema::Enum(e) => format!("enum {}", e.name.name()),
        Schema::Fixed(f) => format!("fixed {}", f.name.name()),
        Schema::Ref { name } => name.name().to_owned(),
        Schema::Array(a) => format!("array<{}>", type_name(&a.items)),
        Schema::Map(m) => format!("map<{}>", type_name(&m.types)),
        Schema::Union(u) => format!(
            "union [{}]",
            u.variants()
                .iter()
                .map(type_name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Schema::TimestampMillis => "timestamp-millis".to_owned(),
        Schema::TimestampMicros => "timestamp-micros".to_owned(),
        other => format!("{:?}", SchemaKind::from(other)).to_lowercase(),
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

struct Walker<'a> {
    w_names: HashMap<String, &'a Schema>,
    r_names: HashMap<String, &'a Schema>,
    /// Record pairs being walked, to stop on recursive types.
    active: HashSet<(String, String)>,
    problems: Vec<(String, String)>,
}

impl<'a> Walker<'a> {
    fn new(writer: &'a Schema, reader: &'a Schema) -> Self {
        let mut w_names = HashMap::new();
        let mut r_names = HashMap::new();
        collect_named(writer, &mut w_names);
        collect_named(reader, &mut r_names);
        Self {
            w_names,
            r_names,
            active: HashSet::new(),
            problems: Vec::new(),
        }
    }

    fn resolve(names: &HashMap<String, &'a Schema>, s: &'a Schema) -> &'a Schema {
        match s {
            Schema::Ref { name } => names.get(&name.fullname(None)).copied().unwrap_or(s),
            _ => s,
        }
    }

    fn problem(&mut self, path: &str, reason: String) {
        self.problems.push((path.to_owned(), reason));
    }

    /// Whether `r` reads `w` without problems, recording nothing.
    fn fits(&mut self, w: &'a Schema, r: &'a Schema) -> bool {
        let before = self.problems.len();
        self.check(w, r, "");
        let ok = self.problems.len() == before;
        self.problems.truncate(before);
        ok
    }

    fn check(&mut self, w: &'a Schema, r: &'a Schema, path: &str) {
        let w = Self::resolve(&self.w_names, w);
        let r = Self::resolve(&self.r_names, r);
        match (w, r) {
            (Schema::Union(wu), Schema::Union(ru)) => {
                for wv in wu.variants() {
                    if !ru.variants().iter().any(|rv| self.fits(wv, rv)) {
                        // Explain against the branch of the same kind, or the only
                        // non-null branch (an optional field whose type changed).
                        let same = ru
                            .variants()
                            .iter()
                            .find(|rv| {
                                SchemaKind::from(Self::resolve(&self.r_names, rv))
                                    == SchemaKind::from(Self::resolve(&self.w_names, wv))
                            })
                            .or_else(|| {
                                let mut non_null = ru
                                    .variants()
                                    .iter()
                                    .filter(|rv| !matches!(rv, Schema::Null));
                                match (non_null.next(), non_null.next()) {
                                    (Some(only), None) if !matches!(wv, Schema::Null) => Some(only),
                                    _ => None,
                                }
                            });
                        match same {
                            Some(rv) => self.check(wv, rv, path),
                            None => self.problem(
                                path,
                                format!(
                                    "the writer's union branch {} has no counterpart in the \
                                     reader's {}",
                                    type_name(wv),
                                    type_name(r)
                                ),
                            ),
                        }
                    }
                }
            }
            (Schema::Union(wu), _) => {
                for wv in wu.variants() {
                    if !self.fits(wv, r) {
                        self.problem(
                            path,
                            format!(
                                "was {} and is now {}: values of branch {} cannot be read",
                                type_name(w),
                                type_name(r),
                                type_name(wv)
                            ),
                        );
                    }
                }
            }
            (_, Schema::Union(ru)) => {
                if !ru.variants().iter().any(|rv| self.fits(w, rv)) {
                    self.problem(
                        path,
                        format!(
                            "type changed from {} to {}, which has no branch that can read it",
                            type_name(w),
                            type_name(r)
                        ),
                    );
                }
            }
            (Schema::Record(wr), Schema::Record(rr)) => self.check_record(wr, rr, path),
            (Schema::Enum(we), Schema::Enum(re)) => {
                if we.name.name() != re.name.name() {
                    self.problem(
                        path,
                        format!("enum renamed from {} to {}", we.name.name(), re.name.name()),
                    );
                } else if re.default.is_none() {
                    let missing: Vec<&str> = we
                        .symbols
                        .iter()
                        .filter(|s| !re.symbols.contains(s))
                        .map(String::as_str)
                        .collect();
                    if !missing.is_empty() {
                        self.problem(
                            path,
                            format!(
                                "enum {} lost symbols [{}] and has no default symbol",
                                re.name.name(),
                                missing.join(", ")
                            ),
                        );
                    }
                }
            }
            (Schema::Array(wa), Schema::Array(ra)) => {
                self.check(&wa.items, &ra.items, &format!("{path}[]"));
            }
            (Schema::Map(wm), Schema::Map(rm)) => {
                self.check(&wm.types, &rm.types, &format!("{path}{{}}"));
            }
            _ => {
                if SchemaCompatibility::can_read(w, r).is_err() {
                    self.problem(
                        path,
                        format!(
                            "type changed from {} to {}, which Avro cannot promote",
                            type_name(w),
                            type_name(r)
                        ),
                    );
                }
            }
        }
    }

    fn check_record(&mut self, wr: &'a RecordSchema, rr: &'a RecordSchema, path: &str) {
        if wr.name.name() != rr.name.name() {
            self.problem(
                path,
                format!(
                    "record renamed from {} to {}",
                    wr.name.name(),
                    rr.name.name()
                ),
            );
            return;
        }
        let key = (wr.name.fullname(None), rr.name.fullname(None));
        if !self.active.insert(key.clone()) {
            return;
        }
        for rf in &rr.fields {
            let field_path = join(path, &rf.name);
            let wf = std::iter::once(&rf.name)
                .chain(rf.aliases.iter())
                .find_map(|n| wr.fields.iter().find(|wf| &wf.name == n));
            match wf {
                Some(wf) => self.check(&wf.schema, &rf.schema, &field_path),
                None if rf.default.is_none() => self.problem(
                    &field_path,
                    format!(
                        "new field of type {} has no default, so records written without it \
                         cannot be read; add a default (null for an optional field)",
                        type_name(&rf.schema)
                    ),
                ),
                None => {}
            }
        }
        self.active.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(s: &str) -> Schema {
        Schema::parse_str(s).unwrap()
    }

    #[test]
    fn nested_type_change_is_named_with_its_path() {
        let with_pid = |t: &str| {
            parse(&format!(
                r#"{{"type":"record","name":"R","fields":[{{"name":"p","type":["null",
                {{"type":"record","name":"P","fields":[{{"name":"pid","type":"{t}"}}]}}],
                "default":null}}]}}"#
            ))
        };
        let (w, r) = (with_pid("long"), with_pid("int"));
        let problems = explain_backward(&w, &r);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "p.pid");
        assert!(problems[0].1.contains("from long to int"), "{problems:?}");
    }

    #[test]
    fn promotion_and_new_optional_field_are_fine() {
        let w = parse(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#);
        let r = parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"},
            {"name":"b","type":["null","string"],"default":null}]}"#,
        );
        assert!(explain_backward(&w, &r).is_empty());
    }

    #[test]
    fn removed_enum_symbol_without_default_is_reported() {
        let w = parse(r#"{"type":"enum","name":"E","symbols":["a","b"]}"#);
        let r = parse(r#"{"type":"enum","name":"E","symbols":["a"]}"#);
        let problems = explain_backward(&w, &r);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].1.contains("lost symbols [b]"), "{problems:?}");
        let r = parse(r#"{"type":"enum","name":"E","symbols":["a","other"],"default":"other"}"#);
        assert!(explain_backward(&w, &r).is_empty());
    }
}
