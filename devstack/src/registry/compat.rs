//! Compatibility checks with `apache_avro::schema_compatibility`, reported in Confluent's style.

use apache_avro::error::CompatibilityError;
use apache_avro::schema_compatibility::{self, SchemaCompatibility};
use apache_avro::Schema;

use super::Compatibility;

/// An earlier version to check against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Previous<'a> {
    pub(crate) version: u32,
    pub(crate) schema: &'a Schema,
    pub(crate) text: &'a str,
}

/// Checks `new` against `previous` (ascending by version; the caller has already chosen latest
/// or all) in the direction(s) of `level`, newest first. Returns Confluent-style messages for the
/// first incompatible version, or nothing when compatible.
pub(crate) fn check(level: Compatibility, new: &Schema, previous: &[Previous<'_>]) -> Vec<String> {
    let (backward, forward) = match level {
        Compatibility::None => return Vec::new(),
        Compatibility::Backward | Compatibility::BackwardTransitive => (true, false),
        Compatibility::Forward | Compatibility::ForwardTransitive => (false, true),
        Compatibility::Full | Compatibility::FullTransitive => (true, true),
    };
    for old in previous.iter().rev() {
        let mut messages = Vec::new();
        if backward {
            messages.extend(read_errors(old.schema, new, Roles::NEW_READS_OLD));
        }
        if forward {
            messages.extend(read_errors(new, old.schema, Roles::OLD_READS_NEW));
        }
        if !messages.is_empty() {
            messages.push(format!("{{oldSchemaVersion: {}}}", old.version));
            messages.push(format!("{{oldSchema: '{}'}}", old.text));
            messages.push(format!("{{compatibility: '{level}'}}"));
            return messages;
        }
    }
    Vec::new()
}

/// Which schema plays which part, for the wording.
#[derive(Debug, Clone, Copy)]
struct Roles {
    reader: &'static str,
    writer: &'static str,
}

impl Roles {
    const NEW_READS_OLD: Roles = Roles {
        reader: "new",
        writer: "old",
    };
    const OLD_READS_NEW: Roles = Roles {
        reader: "old",
        writer: "new",
    };
}

/// Why `reader` cannot (fully) read data written with `writer`.
fn read_errors(writer: &Schema, reader: &Schema, roles: Roles) -> Vec<String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(schema_compatibility::Compatibility::Full) => Vec::new(),
        // Partial means some written values cannot be resolved (a union branch or enum symbol
        // without a match): Avro's own checker, which Confluent uses, calls that incompatible.
        Ok(schema_compatibility::Compatibility::Partial) => vec![message(
            "MISSING_UNION_BRANCH_OR_ENUM_SYMBOL",
            &format!(
                "The {reader} schema cannot read every value of the {writer} schema: a union branch or enum symbol of the {writer} schema has no match in the {reader} schema",
                reader = roles.reader,
                writer = roles.writer
            ),
            "",
        )],
        Err(err) => vec![describe(&err, "", roles)],
    }
}

fn describe(err: &CompatibilityError, path: &str, roles: Roles) -> String {
    let Roles { reader, writer } = roles;
    let at = if path.is_empty() { "/" } else { path };
    match err {
        CompatibilityError::FieldTypeMismatch(field, inner) => {
            describe(inner, &format!("{path}/fields/{field}"), roles)
        }
        CompatibilityError::MissingDefaultValue(field) => message(
            "READER_FIELD_MISSING_DEFAULT_VALUE",
            &format!(
                "The field '{field}' at path '{path}/fields/{field}' in the {reader} schema has no default value and is missing in the {writer} schema"
            ),
            field,
        ),
        CompatibilityError::WrongType {
            writer_schema_type,
            reader_schema_type,
        } => message(
            "TYPE_MISMATCH",
            &format!(
                "The type (path '{at}') of a field in the {reader} schema does not match with the {writer} schema"
            ),
            &format!("reader type: {reader_schema_type} not compatible with writer type: {writer_schema_type}"),
        ),
        CompatibilityError::MissingSymbols => message(
            "MISSING_ENUM_SYMBOLS",
            &format!("The {reader} schema is missing enum symbols at path '{at}' in the {writer} schema"),
            "",
        ),
        CompatibilityError::MissingUnionElements
        | CompatibilityError::SchemaMismatchAllUnionElements => message(
            "MISSING_UNION_BRANCH",
            &format!("The {reader} schema is missing a type inside a union field at path '{at}' in the {writer} schema"),
            "",
        ),
        CompatibilityError::FixedMismatch => message(
            "FIXED_SIZE_MISMATCH",
            &format!("The size of FIXED type field at path '{at}' in the {reader} schema does not match with the {writer} schema"),
            "",
        ),
        CompatibilityError::NameMismatch {
            writer_name,
            reader_name,
        } => message(
            "NAME_MISMATCH",
            &format!("The name of the schema at path '{at}' in the {reader} schema does not match with the {writer} schema"),
            &format!("expected: {writer_name}, found: {reader_name}"),
        ),
        other => message(
            "TYPE_MISMATCH",
            &format!("At path '{at}' the {reader} schema cannot read the {writer} schema"),
            &other.to_string(),
        ),
    }
}

fn message(error_type: &str, description: &str, additional: &str) -> String {
    format!(
        "{{errorType:'{error_type}', description:'{description}', additionalInfo:'{additional}'}}"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(fields: &str) -> Schema {
        Schema::parse_str(&format!(
            r#"{{"type":"record","name":"R","fields":[{fields}]}}"#
        ))
        .unwrap()
    }

    fn prev(schema: &Schema, version: u32) -> Previous<'_> {
        Previous {
            version,
            schema,
            text: "{}",
        }
    }

    #[test]
    fn added_field_without_default_breaks_backward_not_forward() {
        let v1 = parse(r#"{"name":"a","type":"long"}"#);
        let v2 = parse(r#"{"name":"a","type":"long"},{"name":"b","type":"string"}"#);
        let msgs = check(Compatibility::Backward, &v2, &[prev(&v1, 1)]);
        assert!(
            msgs[0].contains("READER_FIELD_MISSING_DEFAULT_VALUE"),
            "{msgs:?}"
        );
        assert!(msgs.iter().any(|m| m == "{oldSchemaVersion: 1}"));
        assert!(check(Compatibility::Forward, &v2, &[prev(&v1, 1)]).is_empty());
        assert!(!check(Compatibility::Full, &v2, &[prev(&v1, 1)]).is_empty());
        assert!(check(Compatibility::None, &v2, &[prev(&v1, 1)]).is_empty());
    }

    #[test]
    fn type_change_is_reported_with_path() {
        let v1 = parse(r#"{"name":"a","type":"string"}"#);
        let v2 = parse(r#"{"name":"a","type":"int"}"#);
        let msgs = check(Compatibility::Backward, &v2, &[prev(&v1, 3)]);
        assert!(msgs[0].contains("TYPE_MISMATCH"), "{msgs:?}");
        assert!(msgs[0].contains("/fields/a"), "{msgs:?}");
    }

    #[test]
    fn removed_union_branch_is_incompatible() {
        let v1 = parse(r#"{"name":"a","type":["null","string"]}"#);
        let v2 = parse(r#"{"name":"a","type":"string"}"#);
        assert!(!check(Compatibility::Backward, &v2, &[prev(&v1, 1)]).is_empty());
    }
}
