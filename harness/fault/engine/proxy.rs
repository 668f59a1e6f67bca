//! One proxy: its listener, its toxic list and switches, and the
//! connections it relays.
//!
//! The toxic list is a `watch` of an immutable `Arc<Vec<ToxicEntry>>`: a
//! change is one `send`, seen by every open link at once; a link accepted
//! later starts from the current value. Disabling closes the listener
//! (connects are refused) and bumps the close signal every link waits on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::counters::ByteMetrics;
use super::link::{self, LinkWiring};
use super::{Chain, Sources, ToxicEntry, Toxics};
use crate::fault::{FaultError, ProxyInfo, Stream};

pub(crate) struct Proxy {
    pub name: String,
    pub chain: watch::Sender<Chain>,
    pub half_open: watch::Sender<bool>,
    pub cut: watch::Sender<bool>,
    close: watch::Sender<u64>,
    pub live: Arc<watch::Sender<usize>>,
    /// Ids of toxics and of toxic versions, growing (creation order).
    pub next_id: AtomicU64,
    seed: u64,
    next_link: AtomicU64,
    bytes: Arc<ByteMetrics>,
    /// The engine's local addresses for upstream connections.
    sources: Arc<Sources>,
    state: Mutex<State>,
}

struct State {
    enabled: bool,
    listener: Option<JoinHandle<()>>,
    /// Where it listens: once bound, the address actually bound (never
    /// port 0).
    listen: SocketAddr,
    /// `host:port` it connects each accepted client to.
    upstream: String,
}

/// Bind `addr` with SO_REUSEADDR, so a proxy re-enabled on its port is not
/// refused by its own connections in TIME_WAIT.
fn bind(addr: SocketAddr) -> Result<TcpListener, FaultError> {
    let err = |e: std::io::Error| FaultError::Listen {
        addr: addr.to_string(),
        message: e.to_string(),
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(err)?;
    socket.set_reuseaddr(true).map_err(err)?;
    socket.bind(addr).map_err(err)?;
    socket.listen(1024).map_err(err)
}

impl Proxy {
    /// A proxy that does not listen yet.
    pub(crate) fn new(
        name: &str,
        listen: SocketAddr,
        upstream: &str,
        seed: u64,
        bytes: Arc<ByteMetrics>,
        sources: Arc<Sources>,
    ) -> Arc<Proxy> {
        Arc::new(Proxy {
            name: name.to_owned(),
            chain: watch::Sender::new(Arc::new(Toxics {
                seq: 1,
                ..Toxics::default()
            })),
            half_open: watch::Sender::new(false),
            cut: watch::Sender::new(false),
            close: watch::Sender::new(0),
            live: Arc::new(watch::Sender::new(0)),
            next_id: AtomicU64::new(1),
            seed,
            next_link: AtomicU64::new(0),
            bytes,
            sources,
            state: Mutex::new(State {
                enabled: false,
                listener: None,
                listen,
                upstream: upstream.to_owned(),
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Listen (again) on its address; port 0 binds a free port, which is
    /// then kept.
    pub(crate) fn enable(self: &Arc<Self>) -> Result<(), FaultError> {
        let mut st = self.state();
        if st.enabled {
            return Ok(());
        }
        let listener = bind(st.listen)?;
        st.listen = listener.local_addr().map_err(|e| FaultError::Listen {
            addr: st.listen.to_string(),
            message: e.to_string(),
        })?;
        st.listener = Some(tokio::spawn(accept_loop(self.clone(), listener)));
        st.enabled = true;
        Ok(())
    }

    /// Change where it listens and where it connects to; like Toxiproxy, a
    /// change restarts an enabled proxy (its connections close).
    pub(crate) async fn retarget(
        self: &Arc<Self>,
        listen: Option<SocketAddr>,
        upstream: Option<&str>,
    ) -> Result<(), FaultError> {
        let (changed, was_enabled) = {
            let st = self.state();
            let changed = listen.is_some_and(|l| l != st.listen)
                || upstream.is_some_and(|u| u != st.upstream);
            (changed, st.enabled)
        };
        if !changed {
            return Ok(());
        }
        if was_enabled {
            self.disable().await;
        }
        {
            let mut st = self.state();
            if let Some(l) = listen {
                st.listen = l;
            }
            if let Some(u) = upstream {
                st.upstream = u.to_owned();
            }
        }
        if was_enabled {
            self.enable()?;
        }
        Ok(())
    }

    /// Close the listener and every open connection; returns once the
    /// listening socket is closed.
    pub(crate) async fn disable(&self) {
        let task = {
            let mut st = self.state();
            st.enabled = false;
            st.listener.take()
        };
        self.close.send_modify(|n| *n += 1);
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// The synchronous part of [`Proxy::disable`], for `Drop`: the
    /// listener closes as soon as the runtime drops the aborted task.
    pub(crate) fn abort(&self) {
        let task = {
            let mut st = self.state();
            st.enabled = false;
            st.listener.take()
        };
        self.close.send_modify(|n| *n += 1);
        if let Some(task) = task {
            task.abort();
        }
    }

    /// The toxics, upstream first, each stream in creation order (as
    /// Toxiproxy lists them).
    pub(crate) fn toxics(&self) -> Vec<crate::fault::Toxic> {
        let chain = self.chain.borrow().clone();
        let mut out = Vec::new();
        for stream in [Stream::Upstream, Stream::Downstream] {
            out.extend(
                chain
                    .entries
                    .iter()
                    .filter(|e| e.toxic.stream == stream)
                    .map(|e: &ToxicEntry| e.toxic.clone()),
            );
        }
        out
    }

    /// Change the toxics under the watch's lock (so checks and ids are
    /// atomic with the change) and publish if `f` says it changed them.
    pub(crate) fn edit(&self, f: impl FnOnce(&mut Toxics, &AtomicU64) -> bool) -> bool {
        self.chain.send_if_modified(|chain| {
            let mut next = (**chain).clone();
            if !f(&mut next, &self.next_id) {
                return false;
            }
            next.seq = self.next_id.load(Ordering::Relaxed);
            *chain = Arc::new(next);
            true
        })
    }

    pub(crate) fn info(&self) -> ProxyInfo {
        let (listen, upstream, enabled) = {
            let st = self.state();
            (st.listen, st.upstream.clone(), st.enabled)
        };
        ProxyInfo {
            name: self.name.clone(),
            listen,
            upstream,
            enabled,
            toxics: self.toxics(),
        }
    }

    /// What a connection accepted now follows, and where it connects to.
    fn wiring(&self) -> (LinkWiring, String) {
        let n = self.next_link.fetch_add(1, Ordering::Relaxed);
        let (listen, upstream) = {
            let st = self.state();
            (st.listen, st.upstream.clone())
        };
        let bytes = self.bytes.link(&self.name, listen, &upstream);
        let wiring = LinkWiring {
            chain: self.chain.subscribe(),
            half_open: self.half_open.subscribe(),
            cut: self.cut.subscribe(),
            close: self.close.subscribe(),
            live: self.live.clone(),
            // A different, repeatable random stream per connection.
            seed: self.seed ^ (n.wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            bytes,
            source: self.sources.pick(),
        };
        (wiring, upstream)
    }
}

async fn accept_loop(proxy: Arc<Proxy>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                // Subscribed here, before the task runs, so a disable right
                // after the accept still closes this connection.
                let (wiring, upstream) = proxy.wiring();
                tokio::spawn(link::run(client, upstream, wiring));
            }
            Err(e) => {
                // Out of descriptors and the like: back off briefly rather
                // than spin.
                tracing::warn!(proxy = %proxy.name, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}
