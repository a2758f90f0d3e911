//! HTTP in, kept apart from the transport: handlers take a parsed
//! [`Request`] and give a [`Reply`]. `parse` turns bytes into requests and
//! answers into bytes, `conn` collects one request whole from a
//! non-blocking stream, `server` accepts, collects and dispatches, over
//! plain TCP or the TLS listener of `tls`. `allow` decides which peers may
//! post notifications.

pub mod allow;
pub(crate) mod conn;
pub mod html;
pub mod oauth_callback;
mod parse;
pub mod routes;
pub(crate) mod server;
pub mod tls;
pub mod webhook;

pub use server::{bind, bind_flag, serve};
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The address the connection came from, as `accept` gave it (an
    /// IPv4-mapped IPv6 address as IPv4); None only for requests made up
    /// in tests.
    pub peer: Option<IpAddr>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The decoded query parameter `name`, if present.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn html(status: u16, body: String) -> Response {
        Response {
            status,
            content_type: "text/html; charset=utf-8",
            headers: Vec::new(),
            body,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// Work that waits on Withings: it runs on a handler thread, at most a
/// few at once, so the others keep answering (see `server`).
pub type Deferred = Box<dyn FnOnce() -> Response + Send>;

pub enum Reply {
    Now(Response),
    Later(Deferred),
}

pub trait Handler: Send + Sync {
    fn handle(&self, request: Request) -> Reply;
}
