//! Placeholder: being written.

use super::TransformError;
use crate::event::SecurityEvent;

/// Transforms one event.
pub fn to_ecs(_event: &SecurityEvent) -> Result<Vec<u8>, TransformError> {
    Err(TransformError::Unmappable { format: "ecs", field: String::new(), reason: "not implemented yet".into() })
}
