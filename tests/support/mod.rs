//! Shared by the integration tests: a faithful fake Withings and a harness
//! that runs the real relay binary against it.
#![allow(dead_code)]

pub mod certs;
pub mod fake_withings;
pub mod mosquitto;
pub mod relay;
