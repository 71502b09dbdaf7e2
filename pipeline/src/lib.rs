//! secflow pipeline: how records move. Kafka consumers and producers, Avro with the schema
//! registry, topology loading and validation, the stage runners and dead letters. What happens
//! to one record is decided in `processors`; every offset, header and transaction is owned here.

pub mod codec;
pub mod dead_letter;
pub mod delivery;
pub mod dlq_tool;
pub mod intel;
pub mod kafka;
pub mod produce;
pub mod stage;
pub mod telemetry;
pub mod topology;
