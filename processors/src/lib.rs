//! secflow processors: what happens to one record. Pure and deterministic, no Kafka here, so
//! everything is unit-tested with plain values; `pipeline` moves the records.

pub mod event;
pub mod intel;
pub mod privacy;
pub mod schema_compat;
pub mod secret;
pub mod sink;
pub mod transform;
