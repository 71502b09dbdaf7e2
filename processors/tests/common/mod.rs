//! Helpers shared by the integration tests (`mod common;` in a test file).
//!
//! Not every test binary uses every helper, hence the `dead_code` allowance.

#![allow(dead_code)]

pub mod arbitrary;
