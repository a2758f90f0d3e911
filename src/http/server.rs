//! The tiny_http adapter: reads a request (refusing oversize bodies unread),
//! hands it to the [`Handler`], writes the reply. Deferred replies run on
//! their own thread so the loop keeps answering, which matters because
//! Withings HEAD-checks our webhook while we wait on its subscribe call.

use super::{Handler, Reply, Request, Response};
use crate::error::{Error, Result};
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How many deferred replies may run at once; more get 503.
const MAX_DEFERRED: usize = 4;

/// A bound listening socket, so a taken port is reported before anything
/// else starts.
pub struct Listener(tiny_http::Server);

pub fn bind(listen: &str) -> Result<Listener> {
    let server = tiny_http::Server::http(listen).map_err(|e| {
        Error::Config(format!(
            "cannot listen on {listen}: {e} (pick a free address with --listen, e.g. --listen 0.0.0.0:8080)"
        ))
    })?;
    log::info!("listening on {listen}");
    Ok(Listener(server))
}

/// Answers requests until the process ends.
pub fn serve(listener: Listener, handler: Arc<dyn Handler>, body_limit: usize) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    for mut raw in listener.0.incoming_requests() {
        let request = match read_request(&mut raw, body_limit) {
            Ok(r) => r,
            Err(refusal) => {
                respond(raw, refusal);
                continue;
            }
        };
        match handler.handle(request) {
            Reply::Now(response) => respond(raw, response),
            Reply::Later(job) => {
                if in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_DEFERRED {
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    respond(raw, Response::text(503, "busy, try again in a minute\n"));
                    continue;
                }
                let in_flight = Arc::clone(&in_flight);
                std::thread::spawn(move || {
                    respond(raw, job());
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                });
            }
        }
    }
}

fn read_request(
    raw: &mut tiny_http::Request,
    limit: usize,
) -> std::result::Result<Request, Response> {
    if raw.body_length().is_some_and(|len| len > limit) {
        return Err(Response::text(413, "request body too large\n"));
    }
    let mut body = Vec::new();
    raw.as_reader()
        .take(limit as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|_| Response::text(400, "could not read the request body\n"))?;
    if body.len() > limit {
        return Err(Response::text(413, "request body too large\n"));
    }
    let url = raw.url();
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    Ok(Request {
        method: raw.method().as_str().to_ascii_uppercase(),
        path: path.to_string(),
        query: query.to_string(),
        headers: raw
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_string(),
                    h.value.as_str().to_string(),
                )
            })
            .collect(),
        body,
    })
}

fn respond(raw: tiny_http::Request, r: Response) {
    let mut response = tiny_http::Response::from_string(r.body).with_status_code(r.status);
    let headers = std::iter::once(("Content-Type", r.content_type.to_string())).chain(r.headers);
    for (name, value) in headers {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    }
    if let Err(e) = raw.respond(response) {
        log::debug!("client went away before the answer: {e}");
    }
}
