//! withings-relay: Withings webhooks in, measurements out.
//!
//! `cli.rs` declares the command line, `config.rs` checks it once into
//! typed settings, and `commands/` wires each command from them.
//! Where things happen, by file: a webhook enters in `http/` and is routed
//! by `routes.rs` to `webhook.rs`, which queues it in `store/`; `worker.rs`
//! drains the queue through `sync.rs`, which calls Withings (`withings/`)
//! with tokens from `session.rs`; measurements wait in the outbox
//! (`store/outbox.rs`) and leave through `delivery.rs` to the sinks in
//! `output/`.
//! Linking an account is `commands/authorize.rs` then `link.rs`. The API
//! client, credentials, state dir and clock they all use travel together
//! as one `context.rs`.

pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod context;
pub mod decimal;
pub mod delivery;
pub mod error;
pub mod http;
pub mod lenient;
pub mod link;
pub mod meastype;
pub mod mqtt;
pub mod output;
pub mod page;
pub mod record;
pub mod retry;
pub mod routes;
pub mod secret;
pub mod session;
pub mod store;
pub mod sync;
pub mod timefmt;
pub mod tls_roots;
pub mod webhook;
pub mod weburl;
pub mod withings;
pub mod worker;
