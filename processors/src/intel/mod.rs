//! Threat intelligence: STIX 2.1 indicator handling.
//!
//! - [`pattern`]: a STIX 2.1 patterning parser (the OASIS grammar plus the reference
//!   validator's checks) and the reduction of patterns to atomic IOCs. Patterns that reduce
//!   become indicator records; the others go to review with the reason (see `DESIGN.md`,
//!   "Threat intel").

pub mod indicator;
pub mod pattern;
#[cfg(feature = "indicator-store")]
pub mod store;
pub mod taxii;
