//! The embedded fault engine: Toxiproxy 2.12's semantics in-process, as a
//! tokio relay with a toxic pipeline per direction.
//!
//! * [`proxy`]: one listener, its toxic list and its connections;
//!   enable/disable.
//! * [`link`]: one relayed connection, both directions, owning both sockets.
//! * [`pipeline`]: one direction's toxics as a state machine without I/O.
//! * [`toxics`]: each toxic's arithmetic (jitter, slicing plan, rates), pure.
//! * [`metrics`]: bytes received and sent per proxy and direction
//!   (Toxiproxy's `-proxy-metrics`), and their Prometheus page.
//! * [`api`]: Toxiproxy's HTTP API over an [`Engine`] (`serve_api`).
//!
//! Where Toxiproxy's behaviour was measured
//! (`shared/fixtures/toxiproxy-2.12-behaviour.md`) the engine does the same:
//! FIN on disable, toxics on live connections on exactly their stream,
//! `timeout` closing on removal, `reset_peer` sending RST only when present
//! at accept or when data is left unread. One deliberate difference: a
//! toxic change never blocks on a stalled writer (Toxiproxy's can, up to its
//! 25 s API timeout).

pub mod api;
pub mod counters;
mod link;
mod pipeline;
mod proxy;
mod toxics;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use self::counters::ByteMetrics;
use self::proxy::Proxy;
use super::{FaultError, LinkFaults, ProxyBytes, ProxyInfo, Stream, Toxic, ToxicKind};

/// One toxic as the links see it: `id` orders the chain (creation order) and
/// names the toxic's per-connection state; `version` changes on update.
#[derive(Debug, Clone)]
pub(crate) struct ToxicEntry {
    pub id: u64,
    pub version: u64,
    pub toxic: Toxic,
}

/// How many removed `timeout` toxics a proxy remembers for links that
/// missed both their add and their removal (see [`Toxics::cleaned`]).
const CLEANED_KEPT: usize = 256;

/// A proxy's toxics as published to its links.
#[derive(Debug, Clone, Default)]
pub(crate) struct Toxics {
    /// Both streams, in creation order.
    pub entries: Vec<ToxicEntry>,
    /// Recently removed `timeout` toxics (id, stream). The watch a link
    /// follows keeps only the latest value, so a link can miss a toxic added
    /// and removed in quick succession (a `reset` right after an add); it
    /// still owes it Toxiproxy's `Cleanup` (close) if the toxic was added
    /// after the link started.
    pub cleaned: VecDeque<(u64, Stream)>,
    /// Every id below this had been handed out when this value was
    /// published; a link started on this value knows every toxic below it.
    pub seq: u64,
}

/// The value a proxy's links follow.
pub(crate) type Chain = Arc<Toxics>;

impl Toxics {
    /// Remove the toxics `which` selects, remembering removed timeouts;
    /// true if any was removed.
    pub(crate) fn remove(&mut self, which: impl Fn(&ToxicEntry) -> bool) -> bool {
        let before = self.entries.len();
        let mut kept = Vec::with_capacity(before);
        for e in self.entries.drain(..) {
            if !which(&e) {
                kept.push(e);
            } else if matches!(e.toxic.kind, ToxicKind::Timeout { .. }) {
                self.cleaned.push_back((e.id, e.toxic.stream));
                if self.cleaned.len() > CLEANED_KEPT {
                    self.cleaned.pop_front();
                }
            }
        }
        self.entries = kept;
        self.entries.len() != before
    }
}

/// The embedded fault engine. Cheap to clone (clones share the proxies);
/// when the last clone is dropped every listener and connection closes.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    seed: u64,
    proxies: Mutex<HashMap<String, Arc<Proxy>>>,
    bytes: Arc<ByteMetrics>,
    sources: Arc<Sources>,
}

/// The local addresses the upstream connections are opened from, taken in
/// turn (empty: the kernel picks, as Toxiproxy does). Every local address
/// has its own ephemeral port range towards one destination, so K of them
/// open K times as many connections to one broker address.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    addrs: Vec<IpAddr>,
    next: AtomicUsize,
}

impl Sources {
    /// The address for the next upstream connection.
    pub(crate) fn pick(&self) -> Option<IpAddr> {
        if self.addrs.is_empty() {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Some(self.addrs[n % self.addrs.len()])
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let proxies = self.proxies.get_mut().unwrap_or_else(|p| p.into_inner());
        for (_, p) in proxies.drain() {
            p.abort();
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("seed", &self.inner.seed)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine without proxies. `seed` drives the toxicity rolls, jitter
    /// and slicing of every connection, so a run replays.
    pub fn new(seed: u64) -> Engine {
        Engine::with_sources(seed, Vec::new())
    }

    /// An engine whose upstream connections are opened from `sources` in
    /// turn (bound before connecting), so that one broker address takes
    /// more connections than one local address has ephemeral ports.
    pub fn with_sources(seed: u64, sources: Vec<IpAddr>) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                seed,
                proxies: Mutex::new(HashMap::new()),
                bytes: Arc::new(ByteMetrics::default()),
                sources: Arc::new(Sources {
                    addrs: sources,
                    next: AtomicUsize::new(0),
                }),
            }),
        }
    }

    fn proxies(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Proxy>>> {
        self.inner.proxies.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, name: &str) -> Result<Arc<Proxy>, FaultError> {
        self.proxies()
            .get(name)
            .cloned()
            .ok_or_else(|| FaultError::no_such_proxy(name))
    }

    /// Close every listener and every connection and forget every proxy;
    /// returns once no connection of this engine remains.
    pub async fn shutdown(&self) {
        let proxies: Vec<Arc<Proxy>> = self.proxies().drain().map(|(_, p)| p).collect();
        for p in &proxies {
            p.disable().await;
        }
        for p in &proxies {
            let mut live = p.live.subscribe();
            let _ = live.wait_for(|n| *n == 0).await;
        }
    }

    /// How many connections `proxy` is relaying now (accepted and not yet
    /// fully closed).
    pub fn connections(&self, proxy: &str) -> Result<usize, FaultError> {
        Ok(*self.get(proxy)?.live.borrow())
    }

    /// Wait until `proxy` relays exactly `count` connections (wrap it in a
    /// timeout).
    pub async fn wait_for_connections(&self, proxy: &str, count: usize) -> Result<(), FaultError> {
        let mut live = self.get(proxy)?.live.subscribe();
        let _ = live.wait_for(|n| *n == count).await;
        Ok(())
    }

    /// Create a proxy, listening at once or (`enabled` false) only once
    /// enabled, as Toxiproxy's `POST /proxies` with `"enabled"`.
    pub async fn create_proxy_with(
        &self,
        name: &str,
        listen: SocketAddr,
        upstream: &str,
        enabled: bool,
    ) -> Result<ProxyInfo, FaultError> {
        if name.is_empty() {
            return Err(FaultError::Api {
                endpoint: "embedded engine: create proxy".into(),
                status: 400,
                message: "missing required field: name".into(),
            });
        }
        let mut proxies = self.proxies();
        if proxies.contains_key(name) {
            return Err(FaultError::ProxyExists {
                proxy: name.to_owned(),
                at: None,
            });
        }
        let proxy = Proxy::new(
            name,
            listen,
            upstream,
            proxy_seed(self.inner.seed, name),
            self.inner.bytes.clone(),
            self.inner.sources.clone(),
        );
        if enabled {
            proxy.enable()?;
        }
        let info = proxy.info();
        proxies.insert(name.to_owned(), proxy);
        Ok(info)
    }

    /// Bytes received from and sent to each side, per proxy, direction,
    /// listen address and upstream (deleted proxies included), in label
    /// order; see [`metrics`].
    pub fn proxy_bytes(&self) -> Vec<ProxyBytes> {
        self.inner.bytes.snapshot()
    }

    /// Every proxy, by name.
    pub fn proxies_info(&self) -> Vec<ProxyInfo> {
        let mut v: Vec<ProxyInfo> = self.proxies().values().map(|p| p.info()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Change a proxy's listen address and/or upstream (restarting it if
    /// enabled, as Toxiproxy does), then its enabled state.
    pub async fn update_proxy(
        &self,
        name: &str,
        listen: Option<SocketAddr>,
        upstream: Option<&str>,
        enabled: Option<bool>,
    ) -> Result<ProxyInfo, FaultError> {
        let p = self.get(name)?;
        p.retarget(listen, upstream).await?;
        match enabled {
            Some(true) => p.enable()?,
            Some(false) => p.disable().await,
            None => {}
        }
        Ok(p.info())
    }

    /// One toxic of a proxy, by name.
    pub fn toxic(&self, proxy: &str, name: &str) -> Result<Toxic, FaultError> {
        self.get(proxy)?
            .toxics()
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| FaultError::NoSuchToxic {
                proxy: proxy.to_owned(),
                toxic: name.to_owned(),
                at: None,
            })
    }

    /// Change a toxic's attributes and toxicity (Toxiproxy's toxic update:
    /// name and stream stay). A value waiting in it is let through at once
    /// and the toxicity is rolled again on every connection.
    pub async fn update_toxic(
        &self,
        proxy: &str,
        name: &str,
        kind: ToxicKind,
        toxicity: f32,
    ) -> Result<Toxic, FaultError> {
        check_toxicity(toxicity)?;
        let p = self.get(proxy)?;
        let mut result = Err(FaultError::NoSuchToxic {
            proxy: proxy.to_owned(),
            toxic: name.to_owned(),
            at: None,
        });
        p.edit(|chain, ids| {
            let Some(i) = chain.entries.iter().position(|e| e.toxic.name == name) else {
                return false;
            };
            let old = &chain.entries[i].toxic;
            if old.kind.type_name() != kind.type_name() {
                result = Err(FaultError::InvalidToxic(format!(
                    "toxic {name} on proxy {proxy} is {}, not {}",
                    old.kind.type_name(),
                    kind.type_name()
                )));
                return false;
            }
            let e = &mut chain.entries[i];
            e.toxic.kind = kind.clone();
            e.toxic.toxicity = toxicity;
            e.version = ids.fetch_add(1, Ordering::Relaxed);
            result = Ok(e.toxic.clone());
            true
        });
        result
    }
}

fn check_toxicity(t: f32) -> Result<(), FaultError> {
    if (0.0..=1.0).contains(&t) {
        Ok(())
    } else {
        Err(FaultError::InvalidToxic(format!(
            "toxicity {t} is outside 0..=1"
        )))
    }
}

#[async_trait]
impl LinkFaults for Engine {
    async fn version(&self) -> Result<String, FaultError> {
        Ok(format!(
            "mqtt-chaos embedded fault engine {}",
            env!("CARGO_PKG_VERSION")
        ))
    }

    async fn create_proxy(
        &self,
        name: &str,
        listen: SocketAddr,
        upstream: &str,
    ) -> Result<ProxyInfo, FaultError> {
        self.create_proxy_with(name, listen, upstream, true).await
    }

    async fn delete_proxy(&self, name: &str) -> Result<(), FaultError> {
        let p = self
            .proxies()
            .remove(name)
            .ok_or_else(|| FaultError::no_such_proxy(name))?;
        p.disable().await;
        Ok(())
    }

    async fn proxy(&self, name: &str) -> Result<ProxyInfo, FaultError> {
        Ok(self.get(name)?.info())
    }

    async fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), FaultError> {
        let p = self.get(name)?;
        if enabled {
            p.enable()
        } else {
            p.disable().await;
            Ok(())
        }
    }

    async fn add_toxic(&self, proxy: &str, toxic: &Toxic) -> Result<Toxic, FaultError> {
        check_toxicity(toxic.toxicity)?;
        let p = self.get(proxy)?;
        let mut toxic = toxic.clone();
        if toxic.name.is_empty() {
            toxic.name = format!("{}_{}", toxic.kind.type_name(), toxic.stream.as_str());
        }
        let mut exists = false;
        p.edit(|chain, ids| {
            if chain.entries.iter().any(|e| e.toxic.name == toxic.name) {
                exists = true;
                return false;
            }
            let id = ids.fetch_add(1, Ordering::Relaxed);
            chain.entries.push(ToxicEntry {
                id,
                version: id,
                toxic: toxic.clone(),
            });
            true
        });
        if exists {
            return Err(FaultError::ToxicExists {
                proxy: proxy.to_owned(),
                toxic: toxic.name,
                at: None,
            });
        }
        Ok(toxic)
    }

    async fn remove_toxic(&self, proxy: &str, toxic: &str) -> Result<(), FaultError> {
        let p = self.get(proxy)?;
        let removed = p.edit(|chain, _| chain.remove(|e| e.toxic.name == toxic));
        if removed {
            Ok(())
        } else {
            Err(FaultError::NoSuchToxic {
                proxy: proxy.to_owned(),
                toxic: toxic.to_owned(),
                at: None,
            })
        }
    }

    /// Remove every toxic of both streams, enable every proxy, and end the
    /// half-open and cut modes (a reset heals every fault this engine can
    /// make).
    async fn reset(&self) -> Result<(), FaultError> {
        let proxies: Vec<Arc<Proxy>> = self.proxies().values().cloned().collect();
        for p in proxies {
            p.edit(|chain, _| chain.remove(|_| true));
            p.half_open
                .send_if_modified(|on| std::mem::replace(on, false));
            p.cut.send_if_modified(|on| std::mem::replace(on, false));
            p.enable()?;
        }
        Ok(())
    }

    async fn set_half_open(&self, proxy: &str, on: bool) -> Result<(), FaultError> {
        let p = self.get(proxy)?;
        p.half_open
            .send_if_modified(|cur| std::mem::replace(cur, on) != on);
        Ok(())
    }

    async fn wait_idle(
        &self,
        proxy: &str,
        deadline: std::time::Duration,
    ) -> Result<bool, FaultError> {
        let p = self.get(proxy)?;
        let mut live = p.live.subscribe();
        Ok(tokio::time::timeout(deadline, live.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok()))
    }

    async fn set_cut(&self, proxy: &str, on: bool) -> Result<(), FaultError> {
        let p = self.get(proxy)?;
        p.cut
            .send_if_modified(|cur| std::mem::replace(cur, on) != on);
        Ok(())
    }
}

/// A proxy's seed: the engine's, mixed with the proxy's name (FNV-1a), so
/// it does not depend on the order proxies are made in.
fn proxy_seed(seed: u64, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    seed ^ h
}
