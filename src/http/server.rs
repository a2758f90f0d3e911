//! The tiny_http adapter: reads a request (refusing oversize bodies unread),
//! hands it to the [`Handler`], writes the reply. Requests run on their own
//! threads so the accept loop keeps answering, which matters because
//! Withings HEAD-checks our webhook while we wait on its subscribe call.

use super::{Handler, Reply, Request, Response};
use crate::error::{Error, Result};
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How many requests may be in progress at once; more get 503. Withings
/// sends a handful at a time; this bounds what a flood can cost a router.
const MAX_REQUESTS: usize = 32;
/// How many deferred replies (account linking) may run at once.
const MAX_DEFERRED: usize = 4;
/// Handlers are shallow; the default 2 MiB stack per thread is wasted RAM
/// on a 64 MB router.
const THREAD_STACK: usize = 512 * 1024;

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

/// Answers requests until the process ends. Each request is read and
/// answered on its own thread: a client that sends its body slowly must
/// not hold up Withings' notifications behind it.
pub fn serve(listener: Listener, handler: Arc<dyn Handler>, body_limit: usize) {
    let requests = Arc::new(AtomicUsize::new(0));
    let deferred = Arc::new(AtomicUsize::new(0));
    for raw in listener.0.incoming_requests() {
        let Some(request_slot) = Slot::take(&requests, MAX_REQUESTS) else {
            respond(raw, Response::text(503, "busy, try again in a minute\n"));
            continue;
        };
        let handler = Arc::clone(&handler);
        let deferred = Arc::clone(&deferred);
        let spawned = std::thread::Builder::new()
            .stack_size(THREAD_STACK)
            .spawn(move || {
                let _slot = request_slot;
                answer(raw, &*handler, &deferred, body_limit);
            });
        if let Err(e) = spawned {
            log::error!("cannot start a request thread: {e}");
        }
    }
}

fn answer(
    mut raw: tiny_http::Request,
    handler: &dyn Handler,
    deferred: &Arc<AtomicUsize>,
    limit: usize,
) {
    let request = match read_request(&mut raw, limit) {
        Ok(r) => r,
        Err(refusal) => return respond(raw, refusal),
    };
    match handler.handle(request) {
        Reply::Now(response) => respond(raw, response),
        Reply::Later(job) => match Slot::take(deferred, MAX_DEFERRED) {
            Some(_slot) => respond(raw, job()),
            None => respond(raw, Response::text(503, "busy, try again in a minute\n")),
        },
    }
}

/// One of a limited number of places, given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(counter: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        if counter.fetch_add(1, Ordering::SeqCst) >= max {
            counter.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(Arc::clone(counter)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
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
