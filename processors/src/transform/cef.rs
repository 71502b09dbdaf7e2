//! Placeholder: being written.

use super::TransformError;
use crate::event::SecurityEvent;

/// Transforms one event.
pub fn to_cef(_event: &SecurityEvent) -> Result<Vec<u8>, TransformError> {
    Err(TransformError::Unmappable { format: "cef", field: String::new(), reason: "not implemented yet".into() })
}
