//! The delivery engine shared by every sink: batching, offsets that only move over finished
//! records, in-process retries, circuit breaking, retry-topic tiers, dead letters and rate
//! limits. Sinks (in `processors::sink`) only build requests and classify responses.

pub mod circuit;
pub mod offsets;
pub mod rate_limit;
pub mod tiers;
