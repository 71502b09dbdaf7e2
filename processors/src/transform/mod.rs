//! Transforms: the canonical event → the bytes a SOC tool reads (ECS JSON, a CEF line, OCSF
//! JSON). Pure and deterministic: the same event always gives the same bytes.

pub mod cef;
pub mod ecs;
pub mod ocsf;

use crate::event::SecurityEvent;

/// Why an event could not be transformed. The transform stage dead-letters such a record
/// (reason `poison`) and keeps going.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// The event lacks what the target format needs (field path, why).
    #[error("{format}: {field}: {reason}")]
    Unmappable {
        /// `ecs`, `cef` or `ocsf`.
        format: &'static str,
        /// Canonical field path.
        field: String,
        /// Why it cannot be mapped.
        reason: String,
    },
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Elastic Common Schema 9.4 JSON document.
    Ecs,
    /// ArcSight CEF:0 line (no syslog framing).
    Cef,
    /// OCSF 1.8.0 JSON event.
    Ocsf,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 3] = [Format::Ecs, Format::Cef, Format::Ocsf];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Ecs => "ecs",
            Format::Cef => "cef",
            Format::Ocsf => "ocsf",
        }
    }

    /// Transforms one event.
    pub fn transform(self, event: &SecurityEvent) -> Result<Vec<u8>, TransformError> {
        match self {
            Format::Ecs => ecs::to_ecs(event),
            Format::Cef => cef::to_cef(event),
            Format::Ocsf => ocsf::to_ocsf(event),
        }
    }
}
