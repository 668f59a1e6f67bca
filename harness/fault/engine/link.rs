//! One relayed connection: the client socket, the upstream socket, and a
//! [`Pipeline`] per direction, driven by one task that owns both sockets,
//! so that closing a side is dropping its socket (FIN, or RST where
//! SO_LINGER 0 was set or data is left unread — what Go's `Close` does).
//!
//! A close leaving a direction's pipeline closes that direction's
//! destination; the other direction then sees its source end, and its own
//! close (after its toxics) closes the other socket — Toxiproxy's cascade.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

use super::counters::{Counter, Series};
use super::pipeline::{Output, Pipeline};
use super::{Chain, ToxicKind};
use crate::fault::Stream;

/// Bytes read from a socket at once (Go's `io.Copy` buffer).
const READ_CHUNK: usize = 32 * 1024;

/// What a link listens to: the proxy's toxics, its half-open and cut
/// switches and its close signal (bumped by disable, delete and shutdown), the live count
/// it holds one unit of, and the byte counters of its two directions
/// (upstream, downstream).
pub(crate) struct LinkWiring {
    pub chain: watch::Receiver<Chain>,
    pub half_open: watch::Receiver<bool>,
    pub cut: watch::Receiver<bool>,
    pub close: watch::Receiver<u64>,
    pub live: Arc<watch::Sender<usize>>,
    pub seed: u64,
    pub bytes: (Arc<Series>, Arc<Series>),
    /// The local address to open the upstream connection from (`None`: the
    /// kernel's choice).
    pub source: Option<IpAddr>,
}

/// Decrements the live count however the link ends.
struct Live(Arc<watch::Sender<usize>>);

impl Live {
    fn new(live: Arc<watch::Sender<usize>>) -> Live {
        live.send_modify(|n| *n += 1);
        Live(live)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// What waits to be written to one socket.
enum Out {
    Data(Bytes),
    Close { unread: bool },
}

/// Relay `client` to `upstream` until both sides are closed or the proxy
/// closes its connections.
pub(crate) async fn run(client: TcpStream, upstream: String, mut w: LinkWiring) {
    let _live = Live::new(w.live.clone());
    let server = tokio::select! {
        r = connect(upstream.as_str(), w.source) => r,
        _ = w.close.changed() => return,
    };
    let server = match server {
        Ok(s) => Some(s),
        // Toxiproxy closes the client when the upstream cannot be reached;
        // in half-open or cut mode the client stays, dead, until it ends.
        Err(e) if !*w.half_open.borrow() && !*w.cut.borrow() => {
            tracing::debug!(upstream, error = %e, "upstream unreachable; closing the client");
            return;
        }
        Err(_) => None,
    };
    let mut link = Link::new(client, server, &mut w);
    link.relay(&mut w).await;
    // Toxiproxy counts each direction when it ends, zero bytes included.
    for series in [&link.up_bytes, &link.down_bytes] {
        series.received.add(0);
        series.sent.add(0);
    }
}

/// Connect to `upstream` (`host:port`), from `source` when one is given:
/// bound to it (port 0: any free port of that address) before connecting,
/// to the first of the upstream's addresses of the same family.
async fn connect(upstream: &str, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(upstream).await;
    };
    let to = tokio::net::lookup_host(upstream)
        .await?
        .find(|a| a.is_ipv4() == source.is_ipv4())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("{upstream} has no address of the family of the source address {source}"),
            )
        })?;
    let socket = if source.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(to).await
}

struct Link {
    client: Option<TcpStream>,
    server: Option<TcpStream>,
    client_rst: bool,
    server_rst: bool,
    client_eof: bool,
    server_eof: bool,
    /// Client → server.
    up: Pipeline,
    /// Server → client.
    down: Pipeline,
    to_server: VecDeque<Out>,
    to_client: VecDeque<Out>,
    /// Half-open or cut: nothing passes, the broker's close is not passed on.
    half_open: bool,
    /// Cut: the client's close is not passed on either.
    cut: bool,
    /// The upstream side closed while half-open or cut; the client is
    /// closed when the mode ends.
    server_lost: bool,
    /// The client side closed while cut; the upstream is closed when the
    /// mode ends.
    client_lost: bool,
    rng: ChaCha8Rng,
    /// Client → server: read from the client, written to the server.
    up_bytes: Arc<Series>,
    /// Server → client.
    down_bytes: Arc<Series>,
}

impl Link {
    fn new(client: TcpStream, server: Option<TcpStream>, w: &mut LinkWiring) -> Link {
        let now = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(w.seed);
        let chain = w.chain.borrow_and_update().clone();
        // Toxiproxy's `ToxicLink.Start` sets SO_LINGER 0 on both sockets when
        // a reset_peer toxic is in the chain at accept; every later close of
        // this connection is then an RST.
        if chain
            .entries
            .iter()
            .any(|e| matches!(e.toxic.kind, ToxicKind::ResetPeer { .. }))
        {
            let _ = client.set_zero_linger();
            if let Some(s) = &server {
                let _ = s.set_zero_linger();
            }
        }
        let _ = client.set_nodelay(true);
        if let Some(s) = &server {
            let _ = s.set_nodelay(true);
        }
        let up = Pipeline::new(Stream::Upstream, &chain, now, &mut rng);
        let down = Pipeline::new(Stream::Downstream, &chain, now, &mut rng);
        let cut = *w.cut.borrow_and_update();
        let half_open = *w.half_open.borrow_and_update() || cut;
        let server_lost = server.is_none();
        Link {
            client: Some(client),
            server_eof: server.is_none(),
            server,
            client_rst: false,
            server_rst: false,
            client_eof: false,
            up,
            down,
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            half_open,
            cut,
            server_lost,
            client_lost: false,
            rng,
            up_bytes: w.bytes.0.clone(),
            down_bytes: w.bytes.1.clone(),
        }
    }

    async fn relay(&mut self, w: &mut LinkWiring) {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let now = Instant::now();
            let wake = self.step(now);
            if self.client.is_none() && self.server.is_none() {
                return;
            }
            let read_client = !self.client_eof && self.up.wants_input();
            let read_server = !self.server_eof && self.down.wants_input();
            let write_client = !self.to_client.is_empty();
            let write_server = !self.to_server.is_empty();
            tokio::select! {
                _ = w.close.changed() => return,
                r = w.chain.changed() => {
                    if r.is_err() {
                        return;
                    }
                    let chain = w.chain.borrow_and_update().clone();
                    let now = Instant::now();
                    self.up.sync(&chain, now, &mut self.rng);
                    self.down.sync(&chain, now, &mut self.rng);
                }
                r = w.half_open.changed() => {
                    if r.is_err() {
                        return;
                    }
                    let on = *w.half_open.borrow_and_update();
                    if self.set_mode(on, self.cut) {
                        return;
                    }
                }
                r = w.cut.changed() => {
                    if r.is_err() {
                        return;
                    }
                    let cut = *w.cut.borrow_and_update();
                    let half_open = *w.half_open.borrow();
                    if self.set_mode(half_open, cut) {
                        return;
                    }
                }
                _ = sleep_until(wake) => {}
                r = readable(self.client.as_ref(), read_client) => {
                    self.read_client(r, &mut buf);
                }
                r = readable(self.server.as_ref(), read_server) => {
                    self.read_server(r, &mut buf);
                }
                r = writable(self.client.as_ref(), write_client) => {
                    if r.is_err()
                        || !write_some(self.client.as_ref(), &mut self.to_client, &self.down_bytes.sent)
                    {
                        self.close_client();
                    }
                }
                r = writable(self.server.as_ref(), write_server) => {
                    if r.is_err()
                        || !write_some(self.server.as_ref(), &mut self.to_server, &self.up_bytes.sent)
                    {
                        self.close_server();
                    }
                }
            }
        }
    }

    /// Enter or leave the half-open and cut modes; true when the link is
    /// over (a side lost meanwhile: dropping the other closes it, FIN).
    fn set_mode(&mut self, half_open: bool, cut: bool) -> bool {
        self.cut = cut;
        self.half_open = half_open || cut;
        if self.half_open {
            self.to_client.retain(|o| matches!(o, Out::Close { .. }));
            self.to_server.retain(|o| matches!(o, Out::Close { .. }));
            false
        } else {
            self.server_lost || self.client_lost
        }
    }

    /// Advance both pipelines and carry out closes at the head of the
    /// output queues. Returns when to step again.
    fn step(&mut self, now: Instant) -> Option<Instant> {
        let mut outputs = Vec::new();
        let mut wake: Option<Instant> = None;
        for _ in 0..4 {
            let mut moved = false;
            // A pipeline only moves when its writer is idle: backpressure.
            if self.to_server.is_empty() && !self.up.is_done() {
                let w = self.up.poll(now, &mut self.rng, &mut outputs);
                wake = min_opt(wake, w);
                for o in outputs.drain(..) {
                    moved = true;
                    match o {
                        Output::Data(b) if !self.half_open && self.server.is_some() => {
                            self.to_server.push_back(Out::Data(b))
                        }
                        Output::Data(_) => {}
                        Output::Close { unread } => self.to_server.push_back(Out::Close { unread }),
                    }
                }
            }
            if self.to_client.is_empty() && !self.down.is_done() {
                let w = self.down.poll(now, &mut self.rng, &mut outputs);
                wake = min_opt(wake, w);
                for o in outputs.drain(..) {
                    moved = true;
                    match o {
                        Output::Data(b) if !self.half_open && self.client.is_some() => {
                            self.to_client.push_back(Out::Data(b))
                        }
                        Output::Data(_) => {}
                        Output::Close { unread } => self.to_client.push_back(Out::Close { unread }),
                    }
                }
            }
            if let Some(Out::Close { unread }) = self.to_server.front() {
                // Data unread from the client: the kernel would RST it.
                self.client_rst |= *unread;
                self.to_server.clear();
                self.close_server();
                moved = true;
            }
            if let Some(Out::Close { unread }) = self.to_client.front() {
                self.server_rst |= *unread;
                self.to_client.clear();
                self.close_client();
                moved = true;
            }
            if !moved {
                break;
            }
            // A close fed an end of stream into the other pipeline: poll
            // again so it can pass at once.
            wake = Some(now);
        }
        wake
    }

    fn read_client(&mut self, r: io::Result<()>, buf: &mut [u8]) {
        let Some(sock) = self.client.as_ref() else {
            return;
        };
        let now = Instant::now();
        let ended = match r.and_then(|()| sock.try_read(buf)) {
            Ok(0) => true,
            Ok(n) => {
                self.up_bytes.received.add(n as u64);
                if !self.half_open
                    && !relay(
                        &mut self.up,
                        self.server.as_ref(),
                        &mut self.to_server,
                        &self.up_bytes.sent,
                        &buf[..n],
                        now,
                    )
                {
                    self.close_server();
                }
                false
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(_) => true,
        };
        if !ended {
            return;
        }
        self.client_eof = true;
        if self.cut {
            // Cut: the broker must not learn of it.
            self.client_lost = true;
            self.client = None;
            self.to_client.clear();
        } else {
            self.up.push_eof(now);
        }
    }

    fn read_server(&mut self, r: io::Result<()>, buf: &mut [u8]) {
        let Some(sock) = self.server.as_ref() else {
            return;
        };
        let now = Instant::now();
        let ended = match r.and_then(|()| sock.try_read(buf)) {
            Ok(0) => true,
            Ok(n) => {
                self.down_bytes.received.add(n as u64);
                if !self.half_open
                    && !relay(
                        &mut self.down,
                        self.client.as_ref(),
                        &mut self.to_client,
                        &self.down_bytes.sent,
                        &buf[..n],
                        now,
                    )
                {
                    self.close_client();
                }
                false
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(_) => true,
        };
        if !ended {
            return;
        }
        self.server_eof = true;
        if self.half_open {
            // Half-open: the client must not learn of it.
            self.server_lost = true;
            self.server = None;
            self.to_server.clear();
        } else {
            self.down.push_eof(now);
        }
    }

    /// Close the client socket; the upstream direction's source has ended.
    fn close_client(&mut self) {
        if let Some(s) = self.client.take() {
            if self.client_rst {
                let _ = s.set_zero_linger();
            }
        }
        self.to_client.clear();
        self.client_eof = true;
        self.up.push_eof(Instant::now());
    }

    /// Close the upstream socket; the downstream direction's source ended.
    fn close_server(&mut self) {
        if let Some(s) = self.server.take() {
            if self.server_rst {
                let _ = s.set_zero_linger();
            }
        }
        self.to_server.clear();
        self.server_eof = true;
        self.down.push_eof(Instant::now());
    }
}

/// Hand what one direction read on: straight to the other socket while no
/// toxic acts and nothing waits (see [`forward`]), else into the pipeline.
/// False when the socket failed.
fn relay(
    pipe: &mut Pipeline,
    sock: Option<&TcpStream>,
    queue: &mut VecDeque<Out>,
    sent: &Counter,
    data: &[u8],
    now: Instant,
) -> bool {
    if pipe.is_passthrough() && queue.is_empty() {
        return forward(sock, queue, sent, data);
    }
    pipe.push(Bytes::copy_from_slice(data), now);
    true
}

/// The fast path of a direction with no toxic and nothing queued: write
/// `data` at once, without copying it into the pipeline; what the socket
/// does not take now waits in `queue` (so order and backpressure hold).
/// False when the socket failed. With no socket (lost while half-open or
/// cut) the data is dropped, as the pipeline's output would be.
fn forward(
    sock: Option<&TcpStream>,
    queue: &mut VecDeque<Out>,
    sent: &Counter,
    data: &[u8],
) -> bool {
    let Some(sock) = sock else {
        return true;
    };
    let written = match sock.try_write(data) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(_) => return false,
    };
    if written > 0 {
        sent.add(written as u64);
    }
    if written < data.len() {
        queue.push_back(Out::Data(Bytes::copy_from_slice(&data[written..])));
    }
    true
}

/// Write what can be written now, counting it into `sent`; false when the
/// socket failed.
fn write_some(sock: Option<&TcpStream>, queue: &mut VecDeque<Out>, sent: &Counter) -> bool {
    let Some(sock) = sock else {
        queue.clear();
        return true;
    };
    while let Some(Out::Data(b)) = queue.front_mut() {
        match sock.try_write(b) {
            Ok(n) if n == b.len() => {
                sent.add(n as u64);
                queue.pop_front();
            }
            Ok(n) => {
                sent.add(n as u64);
                let _ = b.split_to(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
    true
}

async fn readable(sock: Option<&TcpStream>, wanted: bool) -> io::Result<()> {
    match sock {
        Some(s) if wanted => s.readable().await,
        _ => std::future::pending().await,
    }
}

async fn writable(sock: Option<&TcpStream>, wanted: bool) -> io::Result<()> {
    match sock {
        Some(s) if wanted => s.writable().await,
        _ => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (x, None) | (None, x) => x,
    }
}
