//! devstack: local stand-ins for what a real deployment has (schema registry, sink simulators)
//! and the launcher that starts the broker, registry and TAXII server for the demo and tests.

pub mod broker;
pub mod launcher;
pub mod registry;
pub mod services;
pub mod sim;
pub mod taxii;
pub mod testkit;
pub mod tls;
