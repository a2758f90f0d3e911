//! Shared by the integration tests and the benches: a harness that runs the
//! real relay binary against the fake Withings (`crate::fake_withings`), a
//! real mosquitto, and a test CA.

pub mod certs;
pub mod https;
pub mod mosquitto;
pub mod pebble;
pub mod realdata;
pub mod relay;
