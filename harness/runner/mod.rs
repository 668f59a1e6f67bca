//! One run, start to finish, as a stack of guarded parts.
//!
//! [`run`] installs the signal handling first ([`signals`]), checks every
//! input before anything starts ([`prepare`], the run directory
//! [`outdir`], the history file), then starts the parts in order — broker,
//! fault backend (a Toxiproxy container), the run's proxies, the observer,
//! the fleet, the timeline ([`timeline`]) — each kept in `Parts` the moment
//! it exists. Whatever ends the run — its end, a fault backend that failed,
//! the broker gone, Ctrl-C, SIGTERM, a panic — the same `Parts::teardown`
//! heals and stops them in reverse order, each step bounded; cleanup is
//! written once, there.
//!
//! The harness's own health is data (METRICS.md, Verdicts): a signal, a
//! broker that exited, a teardown that failed become incidents in the
//! history ([`crate::health`]) and make the verdict `error` in every output.
//!
//! The figures are also written as a time series while the run goes
//! (`run.json` at the start, then `intervals.jsonl` and one `.hlog` per
//! duration figure, see `metrics::hlog`): the main loop cuts an interval
//! every `interval` of the scenario (each cut also amending the earlier
//! intervals whose messages or episodes it learnt more of, see
//! `metrics::interval`), and the last one is cut at the end, after every
//! event was recorded, so the intervals fold up to the report.

pub mod outdir;
mod prepare;
pub mod signals;
mod specs;
mod timeline;
pub mod workers;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{mpsc, Mutex as AsyncMutex};
use tokio::task::JoinHandle;

use crate::broker::{self, Broker, BrokerError, BrokerSettings};
use crate::clock::{Nanos, RunClock};
use crate::fault::container::{ContainerSettings, ToxiproxyContainer};
use crate::fault::engine::Engine;
use crate::fault::toxiproxy::Toxiproxy;
use crate::fault::{LinkFaults, Placement};
use crate::fleet::{Fleet, Shared};
use crate::health::{Cause, Incident};
use crate::history::Event;
use crate::metrics::hlog::{self, IntervalLog};
use crate::metrics::interval::RunInfo;
use crate::metrics::{Recorder, RunContext};
use crate::observer::Observer;
use crate::plan::Plan;
use crate::progress::{Progress, Snapshot};
use crate::report::{self, Report};
use crate::scenario::{self, ScenarioError};

pub use outdir::{OutDirError, RunDir};
pub use prepare::prepare;
pub use signals::{Shutdown, Stop};
pub use specs::{
    parse_sources, usable_sources, BrokerSpec, FaultsSpec, ProxyOptions, ProxySetup, MAX_SOURCES,
};
pub use timeline::{toxic_of, within, BROKER_DEADLINE, BROKER_START_DEADLINE, CALL_DEADLINE};

use timeline::Targets;

/// Exit codes, one meaning each.
pub mod exit {
    /// Ran, and every SLO held.
    pub const PASS: u8 = 0;
    /// Ran, and an SLO was breached.
    pub const BREACH: u8 = 1;
    /// Bad usage or bad scenario; nothing was started.
    pub const USAGE: u8 = 2;
    /// The environment failed: broker unreachable, fault backend failing…
    pub const ENVIRONMENT: u8 = 3;
    /// Interrupted (Ctrl-C); the report of what was measured is written.
    pub const INTERRUPTED: u8 = 130;
}

/// Why a run could not give a verdict (nothing was measured yet), one
/// variant per boundary; `exit_code` gives each its exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    OutDir(#[from] OutDirError),
    #[error("broker: {0}")]
    Broker(#[from] BrokerError),
    #[error("fault backend: {0}")]
    FaultBackend(String),
    #[error("{0}")]
    Environment(String),
    #[error("{} before the run started measuring; everything started was stopped", .0.name())]
    Interrupted(Stop),
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Scenario(_) | RunError::Usage(_) | RunError::OutDir(_) => exit::USAGE,
            RunError::Broker(_) | RunError::FaultBackend(_) | RunError::Environment(_) => {
                exit::ENVIRONMENT
            }
            RunError::Interrupted(_) => exit::INTERRUPTED,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub scenario: PathBuf,
    pub out: Option<PathBuf>,
    pub broker: Option<String>,
    pub faults: Option<String>,
    pub seed: Option<u64>,
    pub duration: Option<Duration>,
    pub quiet: bool,
    /// Also write every event of the run, one JSON object a line (jepsen's
    /// history): for debugging a run and for tests that check event order.
    pub history: Option<PathBuf>,
    /// This binary (the embedded broker runs as a child of it).
    pub exe: PathBuf,
    /// Where the proxies sit; each field overrides `[faults]`.
    pub proxy: ProxyOptions,
    /// `--shard I/N`: run only this slice of the fleet ([`crate::shard`]).
    pub shard: Option<crate::shard::Shard>,
    /// `--start-at`: the run's clock starts at this Unix time (ms), the
    /// common start instant of the shards of one run.
    pub start_at_unix_ms: Option<u64>,
    /// `--workers N`: split the fleet across N processes of this machine
    /// ([`workers`]); 0 or 1: one process.
    pub workers: u32,
}

/// A finished run: its report is written in `dir`.
#[derive(Debug)]
pub struct Finished {
    pub report: Report,
    pub dir: PathBuf,
    /// Stopped by SIGINT or SIGTERM before its end.
    pub interrupted: bool,
    /// The first thing the harness or its environment did wrong (the report
    /// lists every one in `errors`); `None` when the run can vouch for its
    /// figures.
    pub environment_error: Option<String>,
}

impl Finished {
    /// 130 for an interrupted run, 3 for any other run in `error`, 1 for a
    /// breach, 0 for a pass: the same verdict as every output.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            return exit::INTERRUPTED;
        }
        match self.report.verdict {
            report::Verdict::Pass => exit::PASS,
            report::Verdict::Fail => exit::BREACH,
            report::Verdict::Error => exit::ENVIRONMENT,
        }
    }
}

/// How long the devices may take to disconnect at the end.
const FLEET_STOP_DEADLINE: Duration = Duration::from_secs(30);
/// How long removing a container (Toxiproxy, a broker) may take.
const CONTAINER_DEADLINE: Duration = Duration::from_secs(60);
/// How long the first start of the broker may take (a container broker
/// boots; each backend also has its own readiness timeout within this).
const INITIAL_START_DEADLINE: Duration = Duration::from_secs(180);
/// The whole teardown, every step included.
pub const TEARDOWN_DEADLINE: Duration = Duration::from_secs(180);

/// The parts of a run that must be torn down, each kept the moment it
/// exists; [`Parts::teardown`] stops them in reverse order.
#[derive(Default)]
struct Parts {
    broker: Option<Arc<AsyncMutex<Box<dyn Broker>>>>,
    toxiproxy: Option<ToxiproxyContainer>,
    links: Option<Arc<dyn LinkFaults>>,
    /// group → proxy name, as each was created.
    proxies: HashMap<String, String>,
    observer: Option<Observer>,
    fleet: Option<Arc<AsyncMutex<Fleet>>>,
    targets: Option<Arc<Targets>>,
    timeline: Vec<JoinHandle<()>>,
    /// The other shards of a `--workers` run: waited for before the broker
    /// they share is stopped.
    workers: Option<Arc<AsyncMutex<workers::Workers>>>,
}

impl Parts {
    /// Heal and stop everything that was started, newest first; each step
    /// has its deadline and the whole has [`TEARDOWN_DEADLINE`]. Returns
    /// what failed, one line each (the run's `teardown` incidents).
    async fn teardown(&mut self) -> Vec<String> {
        let mut failed = Vec::new();
        if tokio::time::timeout(TEARDOWN_DEADLINE, self.teardown_steps(&mut failed))
            .await
            .is_err()
        {
            failed.push(format!(
                "the teardown did not finish within {} s; what was left is removed when this process ends",
                TEARDOWN_DEADLINE.as_secs()
            ));
        }
        failed
    }

    async fn teardown_steps(&mut self, failed: &mut Vec<String>) {
        for t in &self.timeline {
            t.abort();
        }
        for t in self.timeline.drain(..) {
            let _ = t.await;
        }
        if let Some(t) = self.targets.take() {
            failed.extend(timeline::heal_everything(&t).await);
        }
        if let Some(f) = self.fleet.take() {
            let stop = async { f.lock().await.stop().await };
            if tokio::time::timeout(FLEET_STOP_DEADLINE, stop)
                .await
                .is_err()
            {
                failed.push(format!(
                    "fleet: the devices did not stop within {} s",
                    FLEET_STOP_DEADLINE.as_secs()
                ));
            }
        }
        if let Some(o) = self.observer.take() {
            o.stop().await; // bounded by the observer itself
        }
        if let Some(l) = self.links.take() {
            failed.extend(timeline::delete_proxies(&*l, &self.proxies).await);
            self.proxies.clear();
        }
        if let Some(w) = self.workers.take() {
            failed.extend(w.lock().await.wait().await);
        }
        // The Toxiproxy container before the broker: it may sit on the
        // broker's network, which cannot be removed while it is attached.
        if let Some(c) = self.toxiproxy.take() {
            if let Err(e) = within(CONTAINER_DEADLINE, c.shutdown()).await {
                failed.push(format!("fault backend shutdown: {e}"));
            }
        }
        if let Some(b) = self.broker.take() {
            let shutdown = async { b.lock().await.shutdown().await };
            if let Err(e) = within(CONTAINER_DEADLINE, shutdown).await {
                failed.push(format!("broker shutdown: {e}"));
            }
        }
    }
}

/// What the setup hands the measuring part of the run.
struct Started {
    broker_addr: SocketAddr,
    broker_version: String,
    faults_version: String,
    /// group → where its devices connect.
    addrs: HashMap<String, SocketAddr>,
    connect_timeout: Duration,
    sys_events: bool,
}

/// Run a scenario: signals handled from here on (SIGINT and SIGTERM ask the
/// run to stop; it heals, tears down and writes its report).
pub async fn run(opts: &RunOptions) -> Result<Finished, RunError> {
    let shutdown = Shutdown::install()
        .map_err(|e| RunError::Environment(format!("cannot handle SIGINT/SIGTERM: {e}")))?;
    run_with(opts, shutdown).await
}

/// [`run`] with the caller's stop requests.
pub async fn run_with(opts: &RunOptions, shutdown: Shutdown) -> Result<Finished, RunError> {
    if opts.workers > 1 {
        return run_workers(opts, shutdown).await;
    }
    run_one(opts, shutdown, None).await
}

/// `--workers N`: this process runs shard 0 and spawns the others
/// ([`workers`]); their directories are merged into the run's.
async fn run_workers(opts: &RunOptions, shutdown: Shutdown) -> Result<Finished, RunError> {
    let n = opts.workers;
    if opts.shard.is_some() || opts.start_at_unix_ms.is_some() {
        return Err(RunError::Usage(
            "--workers makes its own shards and start instant; --shard and --start-at are for shards started by hand (or by an orchestrator)".into(),
        ));
    }
    if n > workers::MAX_WORKERS {
        return Err(RunError::Usage(format!(
            "--workers {n}: at most {} on one machine",
            workers::MAX_WORKERS
        )));
    }
    let shard0 = crate::shard::Shard { index: 0, count: n };
    // Checked as shard 0 will run it (the start instant is set once the
    // broker is up).
    let as_shard0 = RunOptions {
        shard: Some(shard0),
        start_at_unix_ms: Some(0),
        ..opts.clone()
    };
    let (plan, ..) = prepare(&as_shard0)?;
    let top = RunDir::claim(
        opts.out.as_deref(),
        Path::new("reports"),
        &format!(
            "{}-{}",
            plan.scenario.name,
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ),
    )?;
    let pool = Arc::new(AsyncMutex::new(workers::Workers::new(
        n,
        top.path().to_path_buf(),
    )));
    let own = RunOptions {
        out: Some(workers::shard_dir(top.path(), shard0)),
        ..as_shard0
    };
    let first = run_one(&own, shutdown, Some(pool.clone())).await?;
    let dirs = pool.lock().await.dirs();
    // The merge claims the run's directory itself, as `mqtt-chaos merge`.
    let dir = top.path().to_path_buf();
    drop(top);
    let merged = crate::merge::merge(&dirs, Some(&dir)).map_err(|e| {
        RunError::Environment(format!(
            "the shards could not be merged ({e}); each shard's report is in {}",
            dir.display()
        ))
    })?;
    let environment_error = merged.report.errors.first().map(|e| e.to_string());
    Ok(Finished {
        report: merged.report,
        dir,
        interrupted: first.interrupted,
        environment_error,
    })
}

/// One process's run: the whole fleet, or one shard of it; with `pool`,
/// shard 0 of a `--workers` run, which spawns the others once its broker
/// is up.
async fn run_one(
    opts: &RunOptions,
    mut shutdown: Shutdown,
    pool: Option<Arc<AsyncMutex<workers::Workers>>>,
) -> Result<Finished, RunError> {
    let (plan, broker_spec, faults_spec, proxy_setup) = prepare(opts)?;
    let mut opts = opts.clone();
    // The shards of one run share their start instant.
    let mut started_at = match opts.start_at_unix_ms {
        Some(ms) => chrono::DateTime::from_timestamp_millis(ms as i64)
            .ok_or_else(|| RunError::Usage(format!("--start-at {ms}: not a time")))?,
        None => chrono::Utc::now(),
    };
    // Every input is checked before anything starts.
    let run_dir = RunDir::claim(
        opts.out.as_deref(),
        Path::new("reports"),
        &format!(
            "{}-{}",
            plan.scenario.name,
            started_at.format("%Y%m%dT%H%M%SZ")
        ),
    )?;
    let history = match &opts.history {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| RunError::Usage(format!("{}: cannot write the history: {e}", p.display())),
        )?)),
        None => None,
    };

    let mut parts = Parts::default();
    let setup = AssertUnwindSafe(async {
        let started = start(
            &opts,
            &plan,
            (&broker_spec, &faults_spec, &proxy_setup),
            &mut parts,
            &mut shutdown,
        )
        .await?;
        if let Some(pool) = &pool {
            // The broker is up: the other shards start, all at one instant.
            let lead = match faults_spec {
                FaultsSpec::ToxiproxyContainer(_) => workers::LEAD_CONTAINER,
                _ => workers::LEAD,
            };
            let at = chrono::Utc::now() + lead;
            let at_ms = at.timestamp_millis() as u64;
            parts.workers = Some(pool.clone());
            pool.lock().await.spawn(
                &opts,
                plan.seed,
                started.broker_addr,
                at_ms,
                plan.scenario.duration + plan.drain,
            )?;
            opts.start_at_unix_ms = Some(at_ms);
            started_at = chrono::DateTime::from_timestamp_millis(at_ms as i64).unwrap_or(at);
        }
        Ok::<_, RunError>(started)
    })
    .catch_unwind()
    .await;
    let started = match setup {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            for f in parts.teardown().await {
                eprintln!("teardown: {f}");
            }
            return Err(e);
        }
        Err(panic) => {
            let _ = parts.teardown().await;
            std::panic::resume_unwind(panic);
        }
    };
    let measured = AssertUnwindSafe(measure(
        &opts,
        &plan,
        started_at,
        run_dir.path(),
        history,
        started,
        &mut parts,
        &mut shutdown,
    ))
    .catch_unwind()
    .await;
    match measured {
        Ok(Ok(f)) => Ok(f),
        Ok(Err(e)) => {
            // Failed before measuring (the observer could not subscribe, a
            // stop while waiting for the start instant): nothing started
            // is left behind.
            for f in parts.teardown().await {
                eprintln!("teardown: {f}");
            }
            Err(e)
        }
        Err(panic) => {
            // The report cannot be assembled from a state a panic left;
            // nothing started is left behind all the same.
            let _ = parts.teardown().await;
            std::panic::resume_unwind(panic);
        }
    }
}

/// `fut`, unless a stop is requested first.
async fn unless_stopped<T>(
    shutdown: &mut Shutdown,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, RunError> {
    tokio::select! {
        r = fut => Ok(r),
        s = shutdown.wait() => Err(RunError::Interrupted(s)),
    }
}

/// Start the broker, the fault backend and the run's proxies; each part
/// goes into `parts` as soon as it exists.
async fn start(
    opts: &RunOptions,
    plan: &Plan,
    (broker_spec, faults_spec, proxy_setup): (&BrokerSpec, &FaultsSpec, &ProxySetup),
    parts: &mut Parts,
    shutdown: &mut Shutdown,
) -> Result<Started, RunError> {
    let settings = BrokerSettings {
        persistence: plan.scenario.broker.persistence,
    };
    let connect_timeout = plan
        .scenario
        .profiles
        .values()
        .map(|p| p.connect_timeout)
        .max()
        .unwrap_or(Duration::from_secs(5));
    let broker: Box<dyn Broker> = match broker_spec {
        BrokerSpec::Embedded => Box::new(broker::embedded::EmbeddedBroker::new(
            settings,
            opts.exe.clone(),
        )?),
        BrokerSpec::Mosquitto => Box::new(broker::mosquitto::MosquittoBroker::new(
            settings,
            broker::mosquitto::MosquittoBroker::find()?,
        )?),
        BrokerSpec::External(url) => Box::new(
            broker::external::ExternalBroker::parse(url)
                .map_err(|e| RunError::Usage(format!("--broker {url}: {e}")))?
                .with_connect_timeout(connect_timeout),
        ),
        BrokerSpec::Container { flavor, image } => Box::new(
            broker::container::ContainerBroker::new(*flavor, image.as_deref(), settings)
                .map_err(|e| RunError::Usage(e.to_string()))?,
        ),
        BrokerSpec::Attached(spec) => Box::new(
            broker::container::AttachedContainer::parse(spec)
                .map_err(|e| RunError::Usage(e.to_string()))?,
        ),
    };
    let broker = Arc::new(AsyncMutex::new(broker));
    parts.broker = Some(broker.clone());
    let mut b = broker.lock().await;
    unless_stopped(shutdown, within(INITIAL_START_DEADLINE, b.start()))
        .await?
        .map_err(|e| RunError::Environment(format!("broker: {e}")))?;
    let broker_addr = b.addr();
    if !b.capabilities().keepalive_zero {
        if let Some((name, _)) = plan
            .scenario
            .profiles
            .iter()
            .find(|(_, p)| p.keepalive.is_none())
        {
            let text = std::fs::read_to_string(&opts.scenario).unwrap_or_default();
            return Err(scenario::error_at(
                &opts.scenario,
                &text,
                &format!("profiles.{name}.keepalive"),
                format!("keepalive \"off\" (0) is refused by {}", b.version()),
            )
            .into());
        }
    }
    let broker_net = b.docker_network();
    let sys_events = b.sys_client_events();
    let broker_version = b.version();
    drop(b);

    let (links, placement): (Arc<dyn LinkFaults>, Placement) = match faults_spec {
        FaultsSpec::Embedded => (
            Arc::new(Engine::with_sources(plan.seed, proxy_setup.sources.clone())),
            Placement::host(),
        ),
        FaultsSpec::Toxiproxy(url) => {
            let client = Toxiproxy::new(url).map_err(|e| RunError::Usage(e.to_string()))?;
            let placement = match &proxy_setup.ports {
                None => Placement::host(),
                Some(ports) => {
                    let host = unless_stopped(shutdown, api_host(url))
                        .await?
                        .map_err(RunError::FaultBackend)?;
                    Placement::same_ports(host, ports.clone())
                }
            };
            (
                Arc::new(client),
                placement.with_upstream(proxy_setup.upstream.clone()),
            )
        }
        FaultsSpec::ToxiproxyContainer(image) => {
            // A broker container: join its network and reach it by alias,
            // unless told otherwise.
            let settings = ContainerSettings {
                image: image.clone(),
                network: proxy_setup
                    .network
                    .clone()
                    .or_else(|| broker_net.as_ref().map(|(n, _)| n.clone())),
                ..ContainerSettings::for_this_process()
            };
            let c = unless_stopped(shutdown, ToxiproxyContainer::start(&settings))
                .await?
                .map_err(|e| RunError::FaultBackend(e.to_string()))?;
            let upstream = proxy_setup
                .upstream
                .clone()
                .or_else(|| broker_net.as_ref().map(|(_, a)| a.clone()))
                .unwrap_or_else(|| broker_addr.to_string());
            let out = (
                Arc::new(c.client().clone()) as Arc<dyn LinkFaults>,
                c.placement(upstream),
            );
            parts.toxiproxy = Some(c);
            out
        }
    };
    parts.links = Some(links.clone());
    let faults_version = unless_stopped(shutdown, within(CALL_DEADLINE, links.version()))
        .await?
        .map_err(RunError::FaultBackend)?;
    // Only a link a link fault can reach (a group's, or under weather a
    // device's own) connects through a proxy; the others connect straight
    // to the broker (no relay, no descriptors).
    let linked = plan.linked_groups();
    placement
        .check(linked.len())
        .map_err(|e| RunError::Usage(e.to_string()))?;
    let mut addrs: HashMap<String, SocketAddr> =
        plan.links().into_iter().map(|l| (l, broker_addr)).collect();
    // Unique per run (a Toxiproxy may be shared by several runs at once)
    // and per shard (the shards of one run may share one).
    let owner = match &plan.shard {
        Some(s) => format!("{}-s{}", std::process::id(), s.shard.index),
        None => std::process::id().to_string(),
    };
    for (i, g) in linked.iter().enumerate() {
        let name = format!("mqtt-chaos-{owner}-{g}");
        let upstream = placement.upstream(broker_addr);
        let create = links.create_proxy(&name, placement.listen(i), &upstream);
        let info = unless_stopped(shutdown, within(CALL_DEADLINE, create))
            .await?
            .map_err(RunError::FaultBackend)?;
        addrs.insert(g.clone(), placement.reach(i, info.listen));
        parts.proxies.insert(g.clone(), name);
    }
    Ok(Started {
        broker_addr,
        broker_version,
        faults_version,
        addrs,
        connect_timeout,
        sys_events,
    })
}

/// Measure: the time series, the aggregator, the observer, the fleet and
/// the timeline; the main loop until the end, a stop request, a failed
/// fault or the broker gone; then the teardown and the report.
#[allow(clippy::too_many_arguments)]
async fn measure(
    opts: &RunOptions,
    plan: &Plan,
    started_at: chrono::DateTime<chrono::Utc>,
    dir: &Path,
    mut history: Option<std::io::BufWriter<std::fs::File>>,
    started: Started,
    parts: &mut Parts,
    shutdown: &mut Shutdown,
) -> Result<Finished, RunError> {
    let harness_version = format!("mqtt-chaos {}", env!("CARGO_PKG_VERSION"));
    let run_info = RunInfo {
        schema_version: report::SCHEMA_VERSION,
        scenario: plan.scenario.name.clone(),
        seed: plan.seed,
        started_at: report::rfc3339(started_at),
        versions: report::Versions {
            harness: harness_version.clone(),
            broker: started.broker_version.clone(),
            faults: started.faults_version.clone(),
        },
        devices: plan.devices.len() as u32,
        profiles: plan
            .devices_by_profile()
            .into_iter()
            .map(|(p, ids)| (p.to_string(), ids.len() as u32))
            .collect(),
        histograms: crate::metrics::interval::Histograms::NAMES
            .iter()
            .map(|f| (f.to_string(), hlog::hlog_file(f)))
            .collect(),
        resolved_scenario: plan.scenario.clone(),
        intervals_format: crate::metrics::interval::FORMAT,
        shard: plan.shard.as_ref().map(|s| crate::shard::ShardInfo {
            index: s.shard.index,
            count: s.shard.count,
            plan_digest: s.digest.clone(),
            start_unix_ms: opts.start_at_unix_ms.unwrap_or(0),
        }),
        merged_from: Vec::new(),
    };
    let mut interval_log = hlog::write_run_info(dir, &run_info)
        .and_then(|_| IntervalLog::create(dir, started_at.into()))
        .map_err(|e| RunError::Environment(e.to_string()))?;
    // A time series that cannot be written (disk full) does not end a soak:
    // the report is still written, and the run is `error`.
    let mut interval_error: Option<String> = None;

    if let Some(ms) = opts.start_at_unix_ms {
        unless_stopped(shutdown, wait_for_start(ms)).await??;
    }
    let clock = RunClock::start();
    let (events_tx, mut events_rx) = mpsc::channel::<Event>(65_536);
    let recorder = Arc::new(Mutex::new(Recorder::new(plan)));
    let aggregator = {
        let recorder = recorder.clone();
        tokio::spawn(async move {
            use std::io::Write;
            let mut buf = Vec::with_capacity(1024);
            while events_rx.recv_many(&mut buf, 1024).await > 0 {
                if let Some(h) = history.as_mut() {
                    // A history that cannot be written is a debugging aid
                    // lost, not a measurement: the report does not use it.
                    for ev in &buf {
                        let _ = serde_json::to_writer(&mut *h, ev).map(|_| h.write_all(b"\n"));
                    }
                    let _ = h.flush();
                }
                let mut r = recorder.lock().unwrap_or_else(|p| p.into_inner());
                for ev in buf.drain(..) {
                    r.record(&ev);
                }
            }
        })
    };
    let incident = |cause: Cause, message: String| Event::Harness {
        at: clock.now(),
        cause,
        message,
    };

    let publish_until = Nanos::from_duration(plan.scenario.duration);
    let observer = Observer::start(
        plan,
        started.broker_addr,
        clock,
        events_tx.clone(),
        publish_until,
        started.connect_timeout,
        started
            .sys_events
            .then(|| crate::observer::sys::ROOT.to_string()),
    );
    let observer = match unless_stopped(shutdown, observer).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return Err(RunError::Environment(e.to_string())),
        Err(e) => return Err(e),
    };
    parts.observer = Some(observer);
    let shared = Shared {
        clock,
        events: events_tx.clone(),
        publish_until,
        seed: plan.seed,
    };
    // From a common start instant the devices start at a fixed point of
    // the run clock (unless the observer took longer), so each device's
    // schedule, and what it sends, is the same in every shard and in a run
    // of the whole fleet given the same instant.
    let fleet_start = match opts.start_at_unix_ms {
        Some(_) => clock
            .now()
            .max(Nanos::from_duration(crate::shard::FLEET_LEAD)),
        None => clock.now(),
    };
    let fleet = Arc::new(AsyncMutex::new(Fleet::start(
        plan,
        &started.addrs,
        shared,
        fleet_start,
    )));
    parts.fleet = Some(fleet.clone());
    let broker = parts.broker.clone().expect("the broker started");
    // A follower shard never acts on the broker (shard 0 does).
    let has = |kind: scenario::FaultName| {
        (kind.target() != scenario::FaultTarget::Broker || plan.applies_broker_faults())
            && plan.faults.iter().any(|f| f.kind.id() == kind)
    };
    let targets = Arc::new(Targets {
        broker: broker.clone(),
        links: parts.links.clone().expect("the fault backend started"),
        proxies: parts.proxies.clone(),
        fleet,
        clock,
        events: events_tx.clone(),
        broker_down: Default::default(),
        half_open: has(scenario::FaultName::HalfOpen),
        cut: has(scenario::FaultName::Cut),
        pause: has(scenario::FaultName::BrokerPause),
        partition: has(scenario::FaultName::BrokerPartition),
        follow_broker: !plan.applies_broker_faults(),
        broker_addr: started.broker_addr,
    });
    parts.targets = Some(targets.clone());

    // The timeline: one task per fault; the first failure ends the run.
    let (fail_tx, mut fail_rx) = mpsc::channel::<String>(plan.faults.len().max(1));
    parts.timeline = plan
        .faults
        .iter()
        .filter(|f| !f.is_elsewhere())
        .cloned()
        .map(|f| {
            let t = targets.clone();
            let fail = fail_tx.clone();
            tokio::spawn(async move {
                if let Err(e) = timeline::play(&t, &f).await {
                    let _ = fail.send(e).await;
                }
            })
        })
        .collect();
    drop(fail_tx);
    drop(targets);

    let total = plan.scenario.duration + plan.drain;
    let mut progress = Progress::new(opts.quiet, total);
    let end = tokio::time::Instant::from_std(clock.instant(Nanos::from_duration(total)));
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let every = plan.scenario.interval.max(Duration::from_millis(1));
    let mut cuts = tokio::time::interval_at(
        tokio::time::Instant::from_std(clock.instant(Nanos::from_duration(every))),
        every,
    );
    cuts.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The charts of report.html, fed as the intervals are cut; sized for
    // the cuts the run will make, so a multi-day run stays bounded.
    let expected_cuts = (total.as_nanos() / every.as_nanos()) as usize + 1;
    let mut series = report::SeriesBuilder::new(expected_cuts, run_info.profiles.clone());
    let mut interrupted = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(end) => break,
            stop = shutdown.wait() => {
                interrupted = true;
                let at = clock.now().as_duration();
                let _ = events_tx.send(incident(Cause::Interrupted, format!(
                    "{} at {:.3} s: the run was stopped {:.3} s before its scheduled end; \
                     what is not measured is missing, faults due later were not applied",
                    stop.name(),
                    at.as_secs_f64(),
                    total.saturating_sub(at).as_secs_f64(),
                ))).await;
                break;
            }
            // The fault's own `failed` event is in the history already.
            Some(_) = fail_rx.recv() => break,
            _ = cuts.tick(), if interval_error.is_none() => {
                let cut = recorder.lock().unwrap_or_else(|p| p.into_inner()).cut_interval(clock.now());
                if let Err(e) = interval_log.append_cut(&cut) {
                    interval_error = Some(e.to_string());
                }
                series.push_cut(&cut);
            }
            _ = tick.tick() => {
                // The broker's own process or container gone by itself
                // (a fault holding the broker is never mistaken for it).
                let exited = broker.try_lock().ok().and_then(|mut b| b.exited());
                if let Some(why) = exited {
                    let _ = events_tx.send(incident(
                        Cause::BrokerExited,
                        format!("{why}; the run stops: nothing after it could be measured"),
                    )).await;
                    break;
                }
                let live = recorder.lock().unwrap_or_else(|p| p.into_inner()).live();
                let elapsed = clock.now().as_duration();
                progress.update(&Snapshot {
                    elapsed,
                    total,
                    connected: live.connected,
                    devices: live.devices,
                    delivered: live.telemetry_delivered,
                    faults_active: live.faults_active,
                    stage: if elapsed < plan.scenario.duration { "running" } else { "draining" },
                });
            }
        }
    }
    progress.finish();

    let broker_version = broker.lock().await.version();
    drop(broker);
    for f in parts.teardown().await {
        let _ = events_tx.send(incident(Cause::Teardown, f)).await;
    }
    let end_at = clock.now();
    // Every sender is gone once the parts are: the aggregator folds what is
    // left in the channel and ends.
    drop(events_tx);
    let mut aggregator = aggregator;
    let mut late = Vec::new();
    match tokio::time::timeout(Duration::from_secs(10), &mut aggregator).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => late.push(format!("the event aggregator ended abnormally: {e}")),
        Err(_) => {
            aggregator.abort();
            let _ = aggregator.await;
            late.push("the event aggregator did not finish in 10 s".to_string());
        }
    }
    let mut recorder = match Arc::try_unwrap(recorder) {
        Ok(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()),
        Err(_) => {
            return Err(RunError::Environment(
                "internal: event senders outlived the run".into(),
            ))
        }
    };
    let ctx = RunContext {
        scenario: plan.scenario.name.clone(),
        seed: plan.seed,
        started_at,
        // How long devices published: the scenario's duration, or less
        // when the run was cut short.
        duration_s: end_at
            .as_duration()
            .min(plan.scenario.duration)
            .as_secs_f64(),
        versions: report::Versions {
            harness: harness_version,
            broker: broker_version,
            faults: started.faults_version,
        },
        unobserved_s: None,
        slos: scenario::slos(&plan.scenario),
    };
    if interval_error.is_none() {
        let cut = recorder.cut_last_interval(end_at);
        if let Err(e) = interval_log.append_cut(&cut) {
            interval_error = Some(e.to_string());
        }
        series.push_cut(&cut);
    }
    let mut report = recorder.finish(end_at, ctx);
    for l in late {
        report.push_error(Incident::untimed(Cause::Internal, l));
    }
    if let Some(e) = interval_error {
        report.push_error(Incident::untimed(
            Cause::TimeSeries,
            format!("time series: {e}"),
        ));
    }
    write_outputs(&report, &series.finish(), dir)?;
    let environment_error = report.errors.first().map(|e| e.to_string());
    Ok(Finished {
        report,
        dir: dir.to_path_buf(),
        interrupted,
        environment_error,
    })
}

/// `junit.xml`, and `report.html` (with the charts of `series`).
pub fn write_outputs(report: &Report, series: &report::Series, dir: &Path) -> Result<(), RunError> {
    report::write_json(report, &dir.join("report.json")).map_err(|e| {
        RunError::Environment(format!("{}: {e}", dir.join("report.json").display()))
    })?;
    report::write_markdown(report, &dir.join("report.md"))
        .map_err(|e| RunError::Environment(format!("{}: {e}", dir.join("report.md").display())))?;
    report::write_junit(report, &dir.join("junit.xml"))
        .map_err(|e| RunError::Environment(format!("{}: {e}", dir.join("junit.xml").display())))?;
    report::write_html(report, series, &dir.join("report.html")).map_err(|e| {
        RunError::Environment(format!("{}: {e}", dir.join("report.html").display()))
    })?;
    Ok(())
}

/// Sleep until the common start instant (Unix ms); a shard ready later
/// than [`crate::shard::START_TOLERANCE`] after it would run its schedule
/// behind the others' and is refused.
async fn wait_for_start(unix_ms: u64) -> Result<(), RunError> {
    let target = std::time::UNIX_EPOCH + Duration::from_millis(unix_ms);
    match target.duration_since(std::time::SystemTime::now()) {
        Ok(wait) => {
            tokio::time::sleep(wait).await;
            Ok(())
        }
        Err(late) if late.duration() <= crate::shard::START_TOLERANCE => Ok(()),
        Err(late) => Err(RunError::Environment(format!(
            "--start-at {unix_ms}: this run was ready {:.3} s after the common start instant; \
             its schedule would lag the other shards' (start them with more time ahead, e.g. --start-at +30s)",
            late.duration().as_secs_f64()
        ))),
    }
}

/// The address of a Toxiproxy API's host, where its published proxy ports are.
async fn api_host(url: &str) -> Result<std::net::IpAddr, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("{url}: no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if let Ok(ip) = host.parse() {
        return Ok(ip);
    }
    let first = tokio::net::lookup_host((host.as_str(), 0))
        .await
        .map_err(|e| format!("{url}: cannot resolve {host}: {e}"))?
        .next();
    first
        .map(|a| a.ip())
        .ok_or_else(|| format!("{url}: {host} has no address"))
}
