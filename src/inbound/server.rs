//! The HTTP/1.1 server: one thread accepts connections and collects each
//! request whole, a fixed pool of threads runs the handler and writes the
//! answer. Nothing an attacker sends can grow the thread count, hold a
//! handler thread, or make the process end:
//!
//! - Open connections are capped (per listener: `serve` runs one server
//!   for the plain listener and one for https, each with half the cap);
//!   at the cap, each new connection closes
//!   the waiting one nearest its deadline (the oldest), so a flood of idle
//!   connections cannot keep Withings out: its request arrives whole in
//!   milliseconds and is handled before 256 newer connections push it out.
//! - Every socket is non-blocking; the collecting thread reads what has
//!   arrived on each and sleeps a few milliseconds when nothing has, so
//!   slow senders cost a buffer each, never a thread, and a request is
//!   handled as soon as its last byte is in. Handler threads only ever see
//!   complete requests: a pool that read heads itself would let N slow
//!   clients delay a webhook by about N / threads × the deadline; here
//!   they cannot hold a handler thread at all.
//! - A request must arrive whole within a deadline, checked by the clock
//!   between reads, so dripping a byte a second does not extend it.
//! - Heads over 8 KiB get 431 and bodies over the limit 413 at once,
//!   without reading or keeping what was declared.
//! - A failing `accept` (out of file descriptors, say) is retried after a
//!   pause, not the end; only a listener that stays broken ends `serve`,
//!   with an error, so the process exits non-zero and procd or systemd
//!   starts it again.

use super::conn::{Conn, Event, Transport};
use super::parse;
use super::{Handler, Reply, Request, Response};
use crate::error::{Error, Result};
use std::convert::Infallible;
use std::io::{self, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Threads that run handlers. Handlers take milliseconds (an fsync at
/// most), so a few suffice; deferred work that waits on Withings takes up
/// to MAX_DEFERRED of them and leaves the rest answering.
const WORKERS: usize = 8;
/// How many deferred replies (account linking) may run at once. Linking
/// calls Withings, which HEAD-checks our webhook while we wait inside its
/// subscribe call (facts sheet §3.1): at least WORKERS - MAX_DEFERRED
/// threads stay free to answer that check.
const MAX_DEFERRED: usize = 4;
const _: () = assert!(WORKERS > MAX_DEFERRED);
/// Complete requests waiting for a free handler thread; beyond, 503.
const QUEUE: usize = 2 * WORKERS;
/// Handlers are shallow; the default 2 MiB stack per thread is wasted RAM
/// on a 64 MB router.
const THREAD_STACK: usize = 512 * 1024;
/// The most connections open at once. 256 leaves, under the usual limit
/// of 1024 file descriptors, plenty for the state files, MQTT and hooks;
/// a lower limit lowers it (see [`connection_cap`]).
const MAX_CONNECTIONS: usize = 256;
const MIN_CONNECTIONS: usize = 8;
/// Connections accepted before the open ones are read again, so a burst
/// of connections cannot push out one that has just come before its
/// bytes are read.
const ACCEPT_BATCH: usize = 32;
/// The pause after `accept` fails for want of a resource.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// How long the collecting thread sleeps when nothing moved, doubling up
/// to the longer one: a new request waits at most that long to be read,
/// and an idle-but-connected router CPU is not kept spinning.
const NAP: Duration = Duration::from_micros(250);
const LONGEST_NAP: Duration = Duration::from_millis(16);
/// How often a handler thread retries a write that would block.
const WRITE_NAP: Duration = Duration::from_millis(5);

/// What one request and connection may take.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest body taken, in bytes.
    pub body: usize,
    /// Time for a whole request, head and body, from the connection's
    /// start (or from the first byte of a next request on a kept-alive
    /// one). Withings wants its answer within 2 s (facts sheet §3.4) and
    /// sends its short form in one go, as does the https front on the
    /// same machine; 5 s leaves a browser on a slow mobile link a lost
    /// packet or two for the OAuth callback, and frees a slot held by a
    /// client that sends nothing within seconds.
    pub request: Duration,
    /// How long a kept-alive connection may sit idle between requests.
    pub keep_alive: Duration,
    /// Time to write one answer; answers are a few KiB at most and fit
    /// the socket buffer, so only a client that stopped reading needs it.
    pub write: Duration,
    /// The most connections open at once.
    pub connections: usize,
    /// How long `accept` may fail without a single success before the
    /// listener counts as broken and `serve` gives up.
    pub give_up: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            body: 16 * 1024,
            request: Duration::from_secs(5),
            keep_alive: Duration::from_secs(5),
            write: Duration::from_secs(5),
            connections: MAX_CONNECTIONS,
            give_up: Duration::from_secs(60),
        }
    }
}

/// Where connections come from: a TcpListener, or the TLS listener of
/// `tls::listener` around one.
pub trait Listen {
    type Stream: Transport;
    /// A new connection and the address it came from.
    fn accept(&self) -> io::Result<(Self::Stream, IpAddr)>;
    fn set_nonblocking(&self, on: bool) -> io::Result<()>;
}

impl Listen for TcpListener {
    type Stream = TcpStream;

    /// Takes the peer address from what accept returns, never from
    /// `peer_addr` afterwards: that one fails for a peer that already
    /// reset (and made tiny_http panic), accept's cannot.
    fn accept(&self) -> io::Result<(TcpStream, IpAddr)> {
        let (stream, peer) = TcpListener::accept(self)?;
        // Each answer is one write; do not hold its last segment back.
        let _ = stream.set_nodelay(true);
        Ok((stream, peer.ip()))
    }

    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        TcpListener::set_nonblocking(self, on)
    }
}

/// Binds the listening socket, so a taken port is reported before
/// anything else starts.
pub fn bind(listen: &str) -> Result<TcpListener> {
    bind_flag("--listen", listen)
}

/// [`bind`] for the address given with `flag`.
pub fn bind_flag(flag: &str, listen: &str) -> Result<TcpListener> {
    let listener = TcpListener::bind(listen).map_err(|e| {
        Error::Config(format!(
            "cannot listen on {listen}: {e} (pick a free address with {flag}, e.g. {flag} 127.0.0.1:8081)"
        ))
    })?;
    log::info!(
        "listening on {listen}{}",
        if flag == "--listen" { "" } else { " (https)" }
    );
    Ok(listener)
}

/// Answers requests for as long as the listener works; returns only with
/// the error that stopped it. `share`: how many listeners split the
/// connection cap.
pub fn serve<L: Listen>(
    listener: L,
    handler: Arc<dyn Handler>,
    body_limit: usize,
    share: usize,
) -> Result<Infallible> {
    let limits = Limits {
        body: body_limit,
        connections: (connection_cap() / share.max(1)).max(MIN_CONNECTIONS),
        ..Limits::default()
    };
    log::debug!("keeping at most {} connections open", limits.connections);
    serve_with(listener, handler, limits)
}

/// [`serve`] with every limit given.
pub fn serve_with<L: Listen>(
    listener: L,
    handler: Arc<dyn Handler>,
    limits: Limits,
) -> Result<Infallible> {
    let (jobs, back) = start_workers(handler, limits.write)?;
    let mut collector = Collector {
        listener,
        limits,
        waiting: Vec::new(),
        busy: 0,
        jobs,
        back,
        trouble: Trouble::default(),
        blocking: None,
        at_cap: false,
        overloaded: false,
        scratch: vec![0; parse::HEAD_LIMIT],
    };
    let mut nap = NAP;
    loop {
        let now = Instant::now();
        let mut moved = collector.take_back(now);
        moved |= collector.accept_some(now)?;
        moved |= collector.poll_all(now)?;
        if moved {
            nap = NAP;
        } else {
            std::thread::sleep(nap);
            nap = (nap * 2).min(LONGEST_NAP);
        }
    }
}

/// Half the soft limit on open files, within 8 and 256: connections never
/// take the descriptors the relay's own files, MQTT and hooks need, or
/// those would fail with EMFILE while a flood lasts. Read from
/// /proc/self/limits (std has no getrlimit); 256 when it cannot be read.
fn connection_cap() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    cap_from_limits(&limits)
}

fn cap_from_limits(text: &str) -> usize {
    let soft = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<usize>().ok());
    soft.map_or(MAX_CONNECTIONS, |n| {
        (n / 2).clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
    })
}

/// A request whole, on its way to a handler thread.
struct Job<S> {
    conn: Conn<S>,
    request: Request,
    keep_alive: bool,
}

/// The accepting and collecting side; runs on the thread that called
/// [`serve`].
struct Collector<L: Listen> {
    listener: L,
    limits: Limits,
    /// Connections waiting for (the rest of) a request.
    waiting: Vec<Conn<L::Stream>>,
    /// Connections with a handler thread; each comes back through `back`,
    /// kept alive or not.
    busy: usize,
    jobs: SyncSender<Job<L::Stream>>,
    back: Receiver<Option<Conn<L::Stream>>>,
    trouble: Trouble,
    /// Whether the listener is in blocking mode; None when unknown.
    blocking: Option<bool>,
    /// At the connection cap (logged once until half of it is free).
    at_cap: bool,
    /// The handler queue was full (logged once until a request gets in).
    overloaded: bool,
    /// One read buffer for every connection; each keeps only what came.
    scratch: Vec<u8>,
}

impl<L: Listen> Collector<L> {
    /// Takes back the connections handler threads are done with.
    fn take_back(&mut self, now: Instant) -> bool {
        let mut moved = false;
        while let Ok(back) = self.back.try_recv() {
            moved = true;
            self.busy = self.busy.saturating_sub(1);
            if let Some(mut conn) = back {
                conn.rearm(now, &self.limits);
                self.waiting.push(conn);
            }
        }
        if self.at_cap && self.open() < self.limits.connections / 2 {
            self.at_cap = false;
            log::info!("open connections back under half the cap");
        }
        moved
    }

    fn open(&self) -> usize {
        self.waiting.len() + self.busy
    }

    /// Accepts what is waiting. With no connection open at all, waits in
    /// `accept` instead of polling, so an idle relay sleeps.
    fn accept_some(&mut self, now: Instant) -> Result<bool> {
        if self.trouble.paused(now) {
            return Ok(false);
        }
        // Nothing open to watch: wait in accept, so an idle relay sleeps.
        let mut block = self.open() == 0;
        let mut moved = false;
        for _ in 0..ACCEPT_BATCH {
            let accepted = self.set_mode(block).and_then(|()| self.listener.accept());
            block = false;
            match accepted {
                Ok((stream, peer)) => {
                    self.trouble.over();
                    self.admit(stream, peer);
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // A connection reset while it waited in the backlog, or a
                // signal: nothing wrong with the listener.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    self.trouble.failed(&e, Instant::now(), &self.limits)?;
                    break;
                }
            }
        }
        Ok(moved)
    }

    /// Switches the listener between waiting and non-blocking accepts,
    /// only when the mode changes (or is unknown after a failed switch).
    fn set_mode(&mut self, block: bool) -> io::Result<()> {
        if self.blocking != Some(block) {
            self.blocking = None;
            self.listener.set_nonblocking(!block)?;
            self.blocking = Some(block);
        }
        Ok(())
    }

    /// Starts watching a new connection, making room at the cap.
    fn admit(&mut self, stream: L::Stream, peer: IpAddr) {
        if let Err(e) = stream.set_nonblocking(true) {
            log::debug!("dropped a connection that cannot be made non-blocking: {e}");
            return;
        }
        if self.open() >= self.limits.connections {
            if !self.at_cap {
                self.at_cap = true;
                log::warn!(
                    "{} connections open, the most kept: each new one now closes the oldest waiting one (a flood of idle connections?)",
                    self.open()
                );
            }
            let oldest = self
                .waiting
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| c.deadline)
                .map(|(i, _)| i);
            match oldest {
                Some(i) => drop(self.waiting.swap_remove(i)),
                // All of them are with a handler: no room for this one.
                None => return,
            }
        }
        self.waiting
            .push(Conn::new(stream, Some(peer), Instant::now(), &self.limits));
    }

    /// Reads what has arrived on every waiting connection; hands complete
    /// requests on, answers refusals, closes the expired and the closed.
    fn poll_all(&mut self, now: Instant) -> Result<bool> {
        let mut moved = false;
        let mut i = 0;
        while let Some(conn) = self.waiting.get_mut(i) {
            let event = conn.poll(&mut self.scratch, now, &self.limits);
            if let Event::Pending { progressed } = event {
                moved |= progressed;
                i += 1;
                continue;
            }
            moved = true;
            let mut conn = self.waiting.swap_remove(i);
            match event {
                Event::Ready {
                    request,
                    keep_alive,
                } => self.dispatch(Job {
                    conn,
                    request,
                    keep_alive,
                })?,
                Event::Refuse(response) => {
                    log::debug!(
                        "refused a request with {}: {}",
                        response.status,
                        response.body.trim_end()
                    );
                    answer_once(&mut conn.stream, &response);
                }
                Event::Expired { partial: true } => {
                    let late = Response::text(408, "the request did not arrive in time\n");
                    answer_once(&mut conn.stream, &late);
                }
                Event::Expired { partial: false } | Event::Closed | Event::Pending { .. } => {}
            }
        }
        Ok(moved)
    }

    fn dispatch(&mut self, job: Job<L::Stream>) -> Result<()> {
        match self.jobs.try_send(job) {
            Ok(()) => {
                self.busy += 1;
                self.overloaded = false;
            }
            Err(TrySendError::Full(mut job)) => {
                if !self.overloaded {
                    self.overloaded = true;
                    log::warn!("every request thread is busy and {QUEUE} requests wait: answering 503 until one is free");
                }
                answer_once(&mut job.conn.stream, &busy());
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(Error::Listen("the request threads stopped".into()))
            }
        }
        Ok(())
    }
}

fn busy() -> Response {
    Response::text(503, "busy, try again in a minute\n")
}

/// Writes a short refusal in one try and leaves the connection to be
/// closed: a client that does not take 200 bytes at once gets nothing.
fn answer_once<S: Write>(stream: &mut S, response: &Response) {
    let _ = stream.write(&parse::response_bytes(response, false, true));
    let _ = stream.flush();
}

/// Failures of `accept` since the last success.
#[derive(Default)]
struct Trouble {
    since: Option<Instant>,
    failures: u32,
    retry_at: Option<Instant>,
}

impl Trouble {
    fn paused(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|at| now < at)
    }

    /// Logs the first failure of a run of them, pauses accepting, and
    /// gives up when the listener has failed for too long or cannot work
    /// at all (EINVAL: the socket is no longer listening).
    fn failed(&mut self, e: &io::Error, now: Instant, limits: &Limits) -> Result<()> {
        self.failures = self.failures.saturating_add(1);
        let since = *self.since.get_or_insert(now);
        if e.kind() == io::ErrorKind::InvalidInput || now.duration_since(since) >= limits.give_up {
            return Err(Error::Listen(format!(
                "accepting connections failed {} time(s) over {} s: {e}",
                self.failures,
                now.duration_since(since).as_secs()
            )));
        }
        if self.failures == 1 {
            log::error!(
                "cannot accept connections: {e}; retrying every {} ms while the open ones are answered",
                ACCEPT_PAUSE.as_millis()
            );
        }
        self.retry_at = Some(now + ACCEPT_PAUSE);
        Ok(())
    }

    fn over(&mut self) {
        if self.since.take().is_some() {
            log::info!(
                "accepting connections again after {} failed attempt(s)",
                self.failures
            );
        }
        self.failures = 0;
        self.retry_at = None;
    }
}

/// Starts the handler threads; they live as long as the process. No
/// thread is ever started per request or connection.
#[allow(clippy::type_complexity)]
fn start_workers<S: Transport>(
    handler: Arc<dyn Handler>,
    write: Duration,
) -> Result<(SyncSender<Job<S>>, Receiver<Option<Conn<S>>>)> {
    let (jobs, queue) = mpsc::sync_channel(QUEUE);
    let queue = Arc::new(Mutex::new(queue));
    let (done, back) = mpsc::channel();
    let deferred = Arc::new(AtomicUsize::new(0));
    for n in 0..WORKERS {
        let (queue, done) = (Arc::clone(&queue), done.clone());
        let (handler, deferred) = (Arc::clone(&handler), Arc::clone(&deferred));
        std::thread::Builder::new()
            .name(format!("http-{n}"))
            .stack_size(THREAD_STACK)
            .spawn(move || work(&queue, &done, &*handler, &deferred, write))
            .map_err(|e| {
                Error::Listen(format!(
                    "cannot start the request threads: {e} (is a limit on tasks or memory too low?)"
                ))
            })?;
    }
    Ok((jobs, back))
}

/// A handler thread: runs requests, writes answers, returns kept-alive
/// connections to the collector.
fn work<S: Transport>(
    queue: &Mutex<Receiver<Job<S>>>,
    done: &Sender<Option<Conn<S>>>,
    handler: &dyn Handler,
    deferred: &Arc<AtomicUsize>,
    write: Duration,
) {
    loop {
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(Job {
            mut conn,
            request,
            keep_alive,
        }) = next
        else {
            return;
        };
        let head_only = request.method == "HEAD";
        let (response, keep_alive) = match handler.handle(request) {
            Reply::Now(response) => (response, keep_alive),
            Reply::Later(job) => match Slot::take(deferred, MAX_DEFERRED) {
                Some(_slot) => (job(), false),
                None => (busy(), false),
            },
        };
        let bytes = parse::response_bytes(&response, head_only, !keep_alive);
        let sent = write_all_until(&mut conn.stream, &bytes, Instant::now() + write);
        let back = match sent {
            Ok(()) if keep_alive => Some(conn),
            Ok(()) => None,
            Err(e) => {
                log::debug!("client went away before the answer: {e}");
                None
            }
        };
        if done.send(back).is_err() {
            return;
        }
    }
}

/// Writes all of `bytes` to a non-blocking stream, waiting out
/// WouldBlock in short naps until `deadline`.
fn write_all_until<S: Write>(
    stream: &mut S,
    mut bytes: &[u8],
    deadline: Instant,
) -> io::Result<()> {
    loop {
        let result = match bytes.is_empty() {
            true => stream.flush().map(|()| None),
            false => stream.write(bytes).map(Some),
        };
        match result {
            Ok(None) => return Ok(()),
            Ok(Some(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(Some(n)) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(WRITE_NAP)
            }
            Err(e) => return Err(e),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_connection_cap_is_half_the_file_limit_within_bounds() {
        let limits = |soft: &str| {
            format!(
                "Limit                     Soft Limit           Hard Limit           Units\nMax processes             63445                63445                processes\nMax open files            {soft:<20} 524288               files\n"
            )
        };
        assert_eq!(cap_from_limits(&limits("1024")), 256);
        assert_eq!(cap_from_limits(&limits("64")), 32);
        assert_eq!(cap_from_limits(&limits("10")), MIN_CONNECTIONS);
        assert_eq!(cap_from_limits(&limits("unlimited")), MAX_CONNECTIONS);
        assert_eq!(cap_from_limits(""), MAX_CONNECTIONS);
    }

    struct Echo;

    impl Handler for Echo {
        fn handle(&self, request: Request) -> Reply {
            Reply::Now(Response::text(
                200,
                format!("{} {}\n", request.method, request.path),
            ))
        }
    }

    /// A TcpListener whose accept first fails as often as told, with the
    /// given error.
    struct Failing {
        inner: TcpListener,
        failures: AtomicUsize,
        errno: i32,
    }

    impl Listen for Failing {
        type Stream = TcpStream;
        fn accept(&self) -> io::Result<(TcpStream, IpAddr)> {
            let left = self.failures.load(Ordering::SeqCst);
            if left > 0 {
                self.failures.store(left - 1, Ordering::SeqCst);
                return Err(io::Error::from_raw_os_error(self.errno));
            }
            Listen::accept(&self.inner)
        }
        fn set_nonblocking(&self, on: bool) -> io::Result<()> {
            self.inner.set_nonblocking(on)
        }
    }

    fn failing(failures: usize, errno: i32) -> (Failing, u16) {
        let inner = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = inner.local_addr().unwrap().port();
        let failures = AtomicUsize::new(failures);
        (
            Failing {
                inner,
                failures,
                errno,
            },
            port,
        )
    }

    fn get(port: u16) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    const EMFILE: i32 = 24;
    const EINVAL: i32 = 22;

    #[test]
    fn accept_failures_pause_accepting_and_then_it_goes_on() {
        let (listener, port) = failing(5, EMFILE);
        std::thread::spawn(move || serve_with(listener, Arc::new(Echo), Limits::default()));
        let answer = get(port);
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nGET /x\n"), "{answer}");
    }

    #[test]
    fn a_listener_that_keeps_failing_ends_serve_with_an_error() {
        let (listener, _) = failing(usize::MAX, EMFILE);
        let limits = Limits {
            give_up: Duration::from_millis(300),
            ..Limits::default()
        };
        let started = Instant::now();
        let Err(e) = serve_with(listener, Arc::new(Echo), limits);
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(
            e.to_string().contains("accepting connections failed"),
            "{e}"
        );

        let (listener, _) = failing(1, EINVAL);
        let Err(e) = serve_with(listener, Arc::new(Echo), Limits::default());
        assert!(matches!(e, Error::Listen(_)), "{e}");
    }

    #[test]
    fn writes_that_would_block_are_retried_until_the_deadline() {
        struct Slow(usize, Vec<u8>);
        impl Write for Slow {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0 += 1;
                if self.0 % 2 == 1 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                self.1.push(b[0]);
                Ok(1)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut slow = Slow(0, Vec::new());
        let soon = Instant::now() + Duration::from_secs(5);
        write_all_until(&mut slow, b"abc", soon).unwrap();
        assert_eq!(slow.1, b"abc");
        let mut stuck = Slow(0, Vec::new());
        let past = Instant::now();
        let e = write_all_until(&mut stuck, b"abc", past).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
}
