//! The integration tests, as one crate: the support code and the fake
//! Withings compile once, not once per test file (ripgrep's `tests/` does
//! the same). Each module was a file of its own in `tests/`; run one with
//! `cargo test --test it -- end_to_end::`.

mod fake_withings;
// The fake's self-tests, beside it on disk but declared here: the benches
// include the fake's mod.rs, and with it they would get these too.
#[path = "fake_withings/selftest/mod.rs"]
mod fake_withings_selftest;
mod support;

mod acme;
mod api_budget;
mod authorize_paste;
mod bad_input;
mod cli;
mod dead_users;
mod end_to_end;
mod home_assistant;
mod https;
mod inbound_server;
mod mqtt_client;
mod mqtt_diagnostics;
mod mqtt_relay;
mod odd_groups;
mod polling;
mod real_scales;
mod robustness;
mod sinks;
mod status;
mod subscriptions;
mod sync_boundary;
mod sync_command;
mod tls;
mod unlink;
