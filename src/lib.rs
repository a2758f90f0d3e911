//! withings-relay: Withings webhooks in, measurements out.
//!
//! The folders follow a weigh-in through the relay:
//!
//! - `inbound/`: the HTTP server, and the routes it serves: the webhook
//!   (`webhook.rs`) and the OAuth callback that links an account
//!   (`oauth_callback.rs`); `tls/` serves the same over https, with the
//!   certificate in a swappable `CertSlot`, and `allow.rs` holds the
//!   `--allow-from` networks;
//! - `link.rs`: trading an authorization code for a user's tokens, for
//!   the callback and for `authorize --paste`;
//! - `store/`: the state dir, where a notification is queued before it is
//!   acknowledged, with tokens, sync cursors and the outbox;
//! - `worker/`: decides when each user is synced (`schedule.rs`: queued
//!   notifications, the safety-net poll, `sync` requests, backoff) and
//!   syncs it (`sync.rs`) through an authenticated `session.rs`, with
//!   `retry.rs` deciding what a failure means; it calls Withings through
//!   `withings/`, every call within the API budget of `withings/budget.rs`;
//! - `record/`: each measure group becomes a record with exact values;
//! - `outputs/`: records wait in the outbox and leave through one courier
//!   per output (`delivery.rs`): JSON lines, MQTT with Home Assistant
//!   discovery (over the client in `mqtt/`), the command hook.
//!
//! Beside them, `keeper/` keeps each user subscribed at the relay's
//! notification URL (a daily `notify list`, facts sheet §3.4).
//! `status/` reads the state dir to say how the relay is doing, for the
//! `status` command and the Home Assistant diagnostics
//! (`outputs/diagnostics.rs`).
//!
//! Around them: `cli.rs` declares the command line, `config.rs` checks it
//! once into typed settings, `commands/` wires each command from them, and
//! `context.rs` carries what every part that calls Withings shares (API
//! client, credentials, state dir, clock). `error.rs` is the one error
//! type; `clock.rs`, `timefmt.rs`, `weburl.rs`, `secret.rs` and
//! `tls_roots.rs` are small shared helpers.
#![forbid(unsafe_code)]

// What the binary and the integration tests use; everything else stays
// inside the crate.
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod mqtt;
pub mod secret;

mod acme;
mod clock;
mod context;
mod inbound;
mod keeper;
mod link;
mod outputs;
mod record;
mod status;
mod store;
mod timefmt;
mod tls_roots;
mod weburl;
mod withings;
mod worker;
mod x509;

#[cfg(test)]
mod hostile_input;
