//! Timestamps: UTC epoch milliseconds in the event, RFC 3339 text or integer millis in JSON.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};
use std::fmt;

/// Earliest accepted time: 1970-01-01T00:00:00.000Z.
pub const MIN_MILLIS: i64 = 0;
/// Latest accepted time: 9999-12-31T23:59:59.999Z.
pub const MAX_MILLIS: i64 = 253_402_300_799_999;

/// Check that `ms` lies in years 1970–9999.
pub fn check_range(ms: i64) -> Result<(), String> {
    if (MIN_MILLIS..=MAX_MILLIS).contains(&ms) {
        Ok(())
    } else {
        Err(format!(
            "timestamp {ms} ms is outside 1970-01-01T00:00:00.000Z..=9999-12-31T23:59:59.999Z"
        ))
    }
}

/// Parse an RFC 3339 timestamp with any offset into UTC epoch milliseconds (sub-millisecond
/// digits are truncated), within years 1970–9999.
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let t = DateTime::parse_from_rfc3339(text)
        .map_err(|e| format!("`{text}` is not an RFC 3339 timestamp: {e}"))?;
    let ms = t.timestamp_millis();
    check_range(ms)?;
    Ok(ms)
}

/// Format epoch milliseconds as RFC 3339 UTC with milliseconds, e.g.
/// `2024-05-01T12:00:00.000Z`; `None` if chrono cannot represent the instant.
pub fn format_rfc3339(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

struct MillisVisitor;

impl Visitor<'_> for MillisVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 timestamp string or integer epoch milliseconds")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        parse_rfc3339(v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        check_range(v).map_err(E::custom)?;
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        let v =
            i64::try_from(v).map_err(|_| E::custom(format!("timestamp {v} ms is too large")))?;
        self.visit_i64(v)
    }
}

/// serde `with` module for a required `timestamp-millis` field.
pub mod millis {
    use super::*;

    /// RFC 3339 UTC with milliseconds (integer millis if out of chrono's range).
    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        match format_rfc3339(*v) {
            Some(t) => s.serialize_str(&t),
            None => s.serialize_i64(*v),
        }
    }

    /// RFC 3339 string (any offset) or integer epoch milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        d.deserialize_any(MillisVisitor)
    }
}

/// serde `with` module for an optional `timestamp-millis` field (null or absent = `None`).
pub mod opt_millis {
    use super::*;

    /// `None` as null, else like [`super::millis::serialize`].
    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(ms) => super::millis::serialize(ms, s),
            None => s.serialize_none(),
        }
    }

    struct OptVisitor;

    impl<'de> Visitor<'de> for OptVisitor {
        type Value = Option<i64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("null, an RFC 3339 timestamp string or integer epoch milliseconds")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(MillisVisitor).map(Some)
        }
    }

    /// null, RFC 3339 string or integer epoch milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        d.deserialize_option(OptVisitor)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn offsets_are_converted_to_utc() {
        assert_eq!(
            parse_rfc3339("2024-05-01T14:00:00.250+02:00").unwrap(),
            parse_rfc3339("2024-05-01T12:00:00.250Z").unwrap()
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            format_rfc3339(1_714_564_800_250).unwrap(),
            "2024-05-01T12:00:00.250Z"
        );
    }

    #[test]
    fn out_of_range_and_garbage_are_refused() {
        assert!(parse_rfc3339("1969-12-31T23:59:59Z").is_err());
        assert!(parse_rfc3339("yesterday").is_err());
        assert!(parse_rfc3339("2024-05-01 12:00:00").is_err());
        assert!(check_range(MAX_MILLIS).is_ok());
        assert!(check_range(MAX_MILLIS + 1).is_err());
        assert!(check_range(-1).is_err());
        assert_eq!(
            format_rfc3339(MAX_MILLIS).unwrap(),
            "9999-12-31T23:59:59.999Z"
        );
    }
}
