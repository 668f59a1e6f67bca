//! One run, start to finish: resolve the scenario, start the broker and the
//! fault backend, put one proxy per device group in front of the broker,
//! start the observer and the fleet, play the timeline, drain, stop, and
//! write the report. Every exit path heals what was applied and stops what
//! was started (`Ctrl-C` included).
//!
//! The figures are also written as a time series while the run goes
//! (`run.json` at the start, then `intervals.jsonl` and one `.hlog` per
//! duration figure, see `metrics::hlog`): the main loop cuts an interval
//! every `interval` of the scenario, and the last one is cut at the end,
//! after every event was recorded, so the intervals add up to the report.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Mutex as AsyncMutex};
use tokio::task::JoinHandle;

use crate::broker::{self, Broker, BrokerSettings};
use crate::clock::{Nanos, RunClock};
use crate::fault::container::{ContainerSettings, ToxiproxyContainer};
use crate::fault::engine::Engine;
use crate::fault::toxiproxy::Toxiproxy;
use crate::fault::{self, LinkFaults, Placement, Stream, Toxic, ToxicKind};
use crate::fleet::{Fleet, Shared};
use crate::history::{Event, FaultEvent};
use crate::metrics::hlog::{self, IntervalLog};
use crate::metrics::interval::RunInfo;
use crate::metrics::{Recorder, RunContext};
use crate::observer::Observer;
use crate::plan::{Plan, ScheduledFault};
use crate::progress::{Progress, Snapshot};
use crate::report::{self, Report};
use crate::scenario::{self, FaultKind, Scenario, ScenarioError, StreamSel};

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

/// Why a run could not give a verdict.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Environment(String),
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Scenario(_) | RunError::Usage(_) => exit::USAGE,
            RunError::Environment(_) => exit::ENVIRONMENT,
        }
    }
}

/// `--broker`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerSpec {
    Embedded,
    Mosquitto,
    External(String),
    /// A container the harness creates: `emqx[=IMAGE[:TAG]]` or
    /// `mosquitto-container[=IMAGE[:TAG]]`.
    Container {
        flavor: broker::container::Flavor,
        image: Option<String>,
    },
    /// `docker=CONTAINER@HOST:PORT`: a container somebody else runs.
    Attached(String),
}

impl BrokerSpec {
    pub fn parse(s: &str) -> Result<BrokerSpec, String> {
        use broker::container::{parse_attached, split_image, Flavor};
        let container = |flavor: Flavor, image: Option<&str>| {
            if let Some(i) = image {
                split_image(i).map_err(|e| format!("--broker {}={i}: {e}", flavor.name()))?;
            }
            Ok(BrokerSpec::Container {
                flavor,
                image: image.map(str::to_string),
            })
        };
        match s {
            "embedded" => Ok(BrokerSpec::Embedded),
            "mosquitto" => Ok(BrokerSpec::Mosquitto),
            "emqx" => container(Flavor::Emqx, None),
            "mosquitto-container" => container(Flavor::Mosquitto, None),
            s if s.starts_with("emqx=") => container(Flavor::Emqx, Some(&s["emqx=".len()..])),
            s if s.starts_with("mosquitto-container=") => {
                container(Flavor::Mosquitto, Some(&s["mosquitto-container=".len()..]))
            }
            s if s.starts_with("docker=") => {
                let spec = &s["docker=".len()..];
                parse_attached(spec).map_err(|e| format!("--broker {s}: {e}"))?;
                Ok(BrokerSpec::Attached(spec.into()))
            }
            s if s.starts_with("tcp://") || s.starts_with("mqtt://") => {
                Ok(BrokerSpec::External(s.into()))
            }
            other => Err(format!(
                "unknown broker \"{other}\": use embedded, mosquitto, emqx[=IMAGE:TAG], \
                 mosquitto-container[=IMAGE:TAG], docker=CONTAINER@HOST:PORT, \
                 tcp://HOST:PORT or mqtt://HOST:PORT"
            )),
        }
    }
}

/// `--faults`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultsSpec {
    Embedded,
    /// A running Toxiproxy's API URL.
    Toxiproxy(String),
    /// A Toxiproxy started in a container for the run, from this image.
    ToxiproxyContainer(String),
}

impl FaultsSpec {
    pub fn parse(s: &str) -> Result<FaultsSpec, String> {
        match s {
            "embedded" => Ok(FaultsSpec::Embedded),
            "toxiproxy-container" => Ok(FaultsSpec::ToxiproxyContainer(
                fault::container::DEFAULT_IMAGE.into(),
            )),
            s if s.starts_with("toxiproxy-container=") => {
                let image = &s["toxiproxy-container=".len()..];
                fault::container::split_image(image).map_err(|e| e.to_string())?;
                Ok(FaultsSpec::ToxiproxyContainer(image.into()))
            }
            s if s.starts_with("toxiproxy=") => {
                Ok(FaultsSpec::Toxiproxy(s["toxiproxy=".len()..].into()))
            }
            other => Err(format!(
                "unknown fault backend \"{other}\": use embedded, toxiproxy=http://HOST:PORT or toxiproxy-container[=IMAGE]"
            )),
        }
    }

    fn is_toxiproxy(&self) -> bool {
        !matches!(self, FaultsSpec::Embedded)
    }
}

/// Where the proxies sit, from `[faults]` and the command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyOptions {
    /// `--proxy-upstream HOST:PORT`: the broker as the fault backend reaches it.
    pub upstream: Option<String>,
    /// `--proxy-ports FIRST-LAST`: published proxy ports of a Toxiproxy in
    /// another network.
    pub ports: Option<String>,
    /// `--docker-network NAME`: the network `toxiproxy-container` joins.
    pub network: Option<String>,
}

/// [`ProxyOptions`] checked against the chosen backends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxySetup {
    pub upstream: Option<String>,
    pub ports: Option<std::ops::RangeInclusive<u16>>,
    pub network: Option<String>,
}

/// What the command line asks for.
#[derive(Debug, Clone)]
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
}

/// A finished run.
#[derive(Debug)]
pub struct Finished {
    pub report: Report,
    pub dir: PathBuf,
    pub interrupted: bool,
    /// A fault backend failed mid-run: the report holds what was measured.
    pub environment_error: Option<String>,
}

impl Finished {
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            exit::INTERRUPTED
        } else if self.environment_error.is_some() {
            exit::ENVIRONMENT
        } else {
            match self.report.verdict {
                report::Verdict::Pass => exit::PASS,
                report::Verdict::Fail => exit::BREACH,
                report::Verdict::Error => exit::ENVIRONMENT,
            }
        }
    }
}

/// Load, validate and resolve; the checks that need no I/O beyond reading
/// the file, including those that depend on the chosen backends.
pub fn prepare(opts: &RunOptions) -> Result<(Plan, BrokerSpec, FaultsSpec, ProxySetup), RunError> {
    let text = std::fs::read_to_string(&opts.scenario)
        .map_err(|e| RunError::Usage(format!("{}: cannot read: {e}", opts.scenario.display())))?;
    let mut sc: Scenario = scenario::load_str(&opts.scenario, &text)?;
    let broker_spec = opts
        .broker
        .clone()
        .or_else(|| sc.broker.backend.clone())
        .unwrap_or_else(|| "embedded".into());
    let broker_spec = BrokerSpec::parse(&broker_spec).map_err(RunError::Usage)?;
    let faults_spec = opts
        .faults
        .clone()
        .or_else(|| sc.faults.backend.clone())
        .unwrap_or_else(|| "embedded".into());
    let faults_spec = FaultsSpec::parse(&faults_spec).map_err(RunError::Usage)?;
    if let Some(d) = opts.duration {
        for (i, f) in sc.timeline.iter().enumerate() {
            if f.at + f.duration.unwrap_or_default() > d {
                return Err(RunError::Usage(format!(
                    "--duration {}: timeline[{i}] ({}) runs until {}, beyond it",
                    scenario::duration::format(d),
                    f.kind.name(),
                    scenario::duration::format(f.at + f.duration.unwrap_or_default())
                )));
            }
        }
        sc.duration = d;
    }
    let at = |field: &str, msg: String| -> RunError {
        scenario::error_at(&opts.scenario, &text, field, msg).into()
    };
    // What each broker can do, checked before anything starts.
    // An external broker is as it is configured: whether it takes keepalive
    // 0 is checked once it answers; lifecycle faults are never possible.
    let caps = match &broker_spec {
        BrokerSpec::Embedded => broker::embedded::CAPABILITIES,
        BrokerSpec::Mosquitto => broker::mosquitto::CAPABILITIES,
        BrokerSpec::External(_) => broker::Capabilities {
            restart: false,
            kill: false,
            pause: false,
            persistence: true,
            keepalive_zero: true,
            partition: false,
        },
        BrokerSpec::Container { flavor, .. } => broker::container::capabilities(
            *flavor,
            &BrokerSettings {
                persistence: sc.broker.persistence,
            },
        ),
        BrokerSpec::Attached(_) => broker::container::ATTACHED_CAPABILITIES,
    };
    let broker_name = match &broker_spec {
        BrokerSpec::Embedded => "the embedded broker (rumqttd)",
        BrokerSpec::Mosquitto => "mosquitto",
        BrokerSpec::External(_) => "an external broker",
        BrokerSpec::Container {
            flavor: broker::container::Flavor::Emqx,
            ..
        } => "EMQX (container)",
        BrokerSpec::Container { .. } => "mosquitto (container)",
        BrokerSpec::Attached(_) => "a container the harness did not create",
    };
    for (name, p) in &sc.profiles {
        if p.keepalive.is_none() && !caps.keepalive_zero {
            return Err(at(
                &format!("profiles.{name}.keepalive"),
                format!("keepalive \"off\" (0) is refused by {broker_name}; run it with --broker mosquitto"),
            ));
        }
    }
    if sc.broker.persistence && !caps.persistence {
        return Err(at(
            "broker.persistence",
            format!("{broker_name} cannot keep sessions across restarts; use --broker mosquitto"),
        ));
    }
    for (i, f) in sc.timeline.iter().enumerate() {
        let ok = match f.kind {
            FaultKind::BrokerRestart => caps.restart,
            FaultKind::BrokerKill => caps.kill,
            FaultKind::BrokerPause => caps.pause,
            FaultKind::BrokerPartition => caps.partition,
            _ => true,
        };
        if !ok && matches!(f.kind, FaultKind::BrokerPartition) {
            return Err(at(
                &format!("timeline[{i}].kind"),
                format!(
                    "broker_partition disconnects a broker container the harness created from its \
                     Docker network; {broker_name} is not one: use --broker emqx or mosquitto-container"
                ),
            ));
        }
        if !ok {
            return Err(at(
                &format!("timeline[{i}].kind"),
                format!(
                    "{} needs a broker the harness controls; {broker_name} is not",
                    f.kind.name()
                ),
            ));
        }
        if matches!(f.kind, FaultKind::HalfOpen) && faults_spec.is_toxiproxy() {
            return Err(at(
                &format!("timeline[{i}].kind"),
                "half_open is a mode of the embedded fault engine, not of Toxiproxy; use kind = \"blackhole\"".into(),
            ));
        }
    }
    let plan = Plan::resolve(&sc, opts.seed);
    let proxies = proxy_setup(
        opts,
        &sc,
        &text,
        &broker_spec,
        &faults_spec,
        plan.groups.len(),
    )?;
    Ok((plan, broker_spec, faults_spec, proxies))
}

/// Check where the proxies may sit with these backends; refuse what cannot
/// work (a container cannot reach a broker on the host's loopback).
fn proxy_setup(
    opts: &RunOptions,
    sc: &Scenario,
    text: &str,
    broker: &BrokerSpec,
    faults: &FaultsSpec,
    groups: usize,
) -> Result<ProxySetup, RunError> {
    // (value, scenario field, command-line flag): the flag wins.
    let pick =
        |flag: &Option<String>, field: &Option<String>, name: &'static str, cli: &'static str| {
            match (flag, field) {
                (Some(v), _) => Some((v.clone(), cli.to_string())),
                (None, Some(v)) => Some((v.clone(), format!("faults.{name}"))),
                _ => None,
            }
        };
    let upstream = pick(
        &opts.proxy.upstream,
        &sc.faults.upstream,
        "upstream",
        "--proxy-upstream",
    );
    let ports = pick(
        &opts.proxy.ports,
        &sc.faults.proxy_ports,
        "proxy_ports",
        "--proxy-ports",
    );
    let network = pick(
        &opts.proxy.network,
        &sc.faults.network,
        "network",
        "--docker-network",
    );
    let refuse = |(_, source): &(String, String), msg: String| -> RunError {
        match source.strip_prefix("faults.") {
            Some(_) => scenario::error_at(&opts.scenario, text, source, msg).into(),
            None => RunError::Usage(format!("{source}: {msg}")),
        }
    };
    let mut setup = ProxySetup::default();
    if let Some(u) = &upstream {
        if faults == &FaultsSpec::Embedded {
            return Err(refuse(u, "the embedded fault engine runs in this process and reaches the broker directly; an upstream applies to Toxiproxy".into()));
        }
        if !valid_host_port(&u.0) {
            return Err(refuse(u, format!("\"{}\" is not HOST:PORT", u.0)));
        }
        setup.upstream = Some(u.0.clone());
    }
    if let Some(p) = &ports {
        if !matches!(faults, FaultsSpec::Toxiproxy(_)) {
            return Err(refuse(p, "published proxy ports apply to toxiproxy=http://HOST:PORT (toxiproxy-container publishes its own)".into()));
        }
        let range = fault::placement::parse_port_range(&p.0).map_err(|m| refuse(p, m))?;
        let count = range.clone().count();
        if count < groups {
            return Err(refuse(
                p,
                format!(
                    "{groups} device groups need {groups} proxy ports, {} has {count}",
                    p.0
                ),
            ));
        }
        setup.ports = Some(range);
    }
    if let Some(n) = &network {
        if !matches!(faults, FaultsSpec::ToxiproxyContainer(_)) {
            return Err(refuse(
                n,
                "a Docker network applies to toxiproxy-container".into(),
            ));
        }
        setup.network = Some(n.0.clone());
    }
    if let FaultsSpec::ToxiproxyContainer(_) = faults {
        let published = fault::container::PROXY_PORTS.count();
        if groups > published {
            return Err(RunError::Usage(format!(
                "--faults toxiproxy-container publishes {published} proxy ports; the scenario has {groups} device groups"
            )));
        }
        match broker {
            BrokerSpec::Embedded | BrokerSpec::Mosquitto => {
                return Err(RunError::Usage(format!(
                    "--faults toxiproxy-container cannot reach {}: it listens on the host's 127.0.0.1, which is the container's own loopback; use a broker reachable from containers (--broker tcp://HOST:PORT, with --proxy-upstream naming it as the container sees it, e.g. broker:1883), or --faults embedded",
                    if *broker == BrokerSpec::Embedded { "the embedded broker" } else { "the local mosquitto" }
                )));
            }
            BrokerSpec::External(url)
                if broker_host_is_loopback(url) && setup.upstream.is_none() =>
            {
                return Err(RunError::Usage(
                    "--faults toxiproxy-container: the broker's address is on the host's loopback, which is the container's own; say how the container reaches the broker with --proxy-upstream HOST:PORT or [faults] upstream (e.g. broker:1883 for a container named broker on the same network)".into(),
                ));
            }
            _ => {}
        }
    }
    Ok(setup)
}

fn valid_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && !host.contains(['/', ' '])
                && port.parse::<u16>().is_ok_and(|p| p != 0)
        }
        None => false,
    }
}

/// Whether `tcp://HOST:PORT` names this host's loopback.
fn broker_host_is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Handles shared by the fault tasks.
struct Targets {
    broker: AsyncMutex<Box<dyn Broker>>,
    links: Arc<dyn LinkFaults>,
    /// group → proxy name
    proxies: HashMap<String, String>,
    fleet: AsyncMutex<Fleet>,
    clock: RunClock,
    events: mpsc::Sender<Event>,
}

/// Run a prepared plan.
pub async fn run(opts: &RunOptions) -> Result<Finished, RunError> {
    let (plan, broker_spec, faults_spec, proxy_setup) = prepare(opts)?;
    let started_at = chrono::Utc::now();
    let dir = match &opts.out {
        Some(d) => d.clone(),
        None => PathBuf::from("reports").join(format!(
            "{}-{}",
            plan.scenario.name,
            started_at.format("%Y%m%dT%H%M%SZ")
        )),
    };
    std::fs::create_dir_all(&dir).map_err(|e| {
        RunError::Usage(format!(
            "{}: cannot create the report directory: {e}",
            dir.display()
        ))
    })?;

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
    let mut broker: Box<dyn Broker> = match &broker_spec {
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
    // A container broker can take a while to come up: Ctrl-C meanwhile
    // removes what was created instead of leaving it to the next start.
    let started = tokio::select! {
        r = broker.start() => r.map_err(|e| RunError::Environment(format!("broker: {e}"))),
        _ = tokio::signal::ctrl_c() => Err(RunError::Environment(
            "interrupted while the broker was starting".into(),
        )),
    };
    if let Err(e) = started {
        let _ = broker.shutdown().await;
        return Err(e);
    }
    let broker_addr = broker.addr();
    if !broker.capabilities().keepalive_zero {
        if let Some((name, _)) = plan
            .scenario
            .profiles
            .iter()
            .find(|(_, p)| p.keepalive.is_none())
        {
            let _ = broker.shutdown().await;
            let text = std::fs::read_to_string(&opts.scenario).unwrap_or_default();
            return Err(scenario::error_at(
                &opts.scenario,
                &text,
                &format!("profiles.{name}.keepalive"),
                format!("keepalive \"off\" (0) is refused by {}", broker.version()),
            )
            .into());
        }
    }

    // A Toxiproxy container lives until the teardown below; dropped on an
    // early return, it is removed all the same.
    let mut toxiproxy_container: Option<ToxiproxyContainer> = None;
    let (links, placement): (Arc<dyn LinkFaults>, Placement) = match &faults_spec {
        FaultsSpec::Embedded => (Arc::new(Engine::new(plan.seed)), Placement::host()),
        FaultsSpec::Toxiproxy(url) => {
            let client = Toxiproxy::new(url).map_err(|e| RunError::Usage(e.to_string()))?;
            let placement = match &proxy_setup.ports {
                None => Placement::host(),
                Some(ports) => match api_host(url).await {
                    Ok(host) => Placement::same_ports(host, ports.clone()),
                    Err(e) => {
                        let _ = broker.shutdown().await;
                        return Err(RunError::Environment(format!("fault backend: {e}")));
                    }
                },
            };
            (
                Arc::new(client),
                placement.with_upstream(proxy_setup.upstream.clone()),
            )
        }
        FaultsSpec::ToxiproxyContainer(image) => {
            // A broker container: join its network and reach it by alias,
            // unless told otherwise.
            let broker_net = broker.docker_network();
            let settings = ContainerSettings {
                image: image.clone(),
                network: proxy_setup
                    .network
                    .clone()
                    .or_else(|| broker_net.as_ref().map(|(n, _)| n.clone())),
                ..ContainerSettings::for_this_process()
            };
            match ToxiproxyContainer::start(&settings).await {
                Ok(c) => {
                    let upstream = proxy_setup
                        .upstream
                        .clone()
                        .or_else(|| broker_net.as_ref().map(|(_, a)| a.clone()))
                        .unwrap_or_else(|| broker_addr.to_string());
                    let out = (
                        Arc::new(c.client().clone()) as Arc<dyn LinkFaults>,
                        c.placement(upstream),
                    );
                    toxiproxy_container = Some(c);
                    out
                }
                Err(e) => {
                    let _ = broker.shutdown().await;
                    return Err(RunError::Environment(format!("fault backend: {e}")));
                }
            }
        }
    };
    let faults_version = match links.version().await {
        Ok(v) => v,
        Err(e) => {
            shutdown_toxiproxy(&mut toxiproxy_container).await;
            let _ = broker.shutdown().await;
            return Err(RunError::Environment(format!("fault backend: {e}")));
        }
    };
    let mut proxies = HashMap::new();
    let mut addrs: HashMap<String, SocketAddr> = HashMap::new();
    if let Err(e) = placement.check(plan.groups.len()) {
        shutdown_toxiproxy(&mut toxiproxy_container).await;
        let _ = broker.shutdown().await;
        return Err(RunError::Usage(e.to_string()));
    }
    for (i, g) in plan.groups.iter().enumerate() {
        // Unique per run: a Toxiproxy may be shared by several runs at once.
        let name = format!("mqtt-chaos-{}-{g}", std::process::id());
        match links
            .create_proxy(&name, placement.listen(i), &placement.upstream(broker_addr))
            .await
        {
            Ok(info) => {
                addrs.insert(g.clone(), placement.reach(i, info.listen));
                proxies.insert(g.clone(), name);
            }
            Err(e) => {
                cleanup_links(&*links, &proxies).await;
                shutdown_toxiproxy(&mut toxiproxy_container).await;
                let _ = broker.shutdown().await;
                return Err(RunError::Environment(format!("fault backend: {e}")));
            }
        }
    }

    // The time series: what the report needs beyond the intervals, then the
    // interval files themselves (truncated: a run directory holds one run).
    let harness_version = format!("mqtt-chaos {}", env!("CARGO_PKG_VERSION"));
    let run_info = RunInfo {
        schema_version: report::SCHEMA_VERSION,
        scenario: plan.scenario.name.clone(),
        seed: plan.seed,
        started_at: report::rfc3339(started_at),
        versions: report::Versions {
            harness: harness_version.clone(),
            broker: broker.version(),
            faults: faults_version.clone(),
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
    };
    let interval_log = hlog::write_run_info(&dir, &run_info)
        .and_then(|_| IntervalLog::create(&dir, started_at.into()));
    let mut interval_log = match interval_log {
        Ok(l) => l,
        Err(e) => {
            cleanup_links(&*links, &proxies).await;
            shutdown_toxiproxy(&mut toxiproxy_container).await;
            let _ = broker.shutdown().await;
            return Err(RunError::Environment(e.to_string()));
        }
    };
    // A time series that cannot be written (disk full) does not end a soak:
    // the report is still written, and the run ends as an environment failure.
    let mut interval_error: Option<String> = None;

    let clock = RunClock::start();
    let (events_tx, mut events_rx) = mpsc::channel::<Event>(65_536);
    let recorder = Arc::new(Mutex::new(Recorder::new(&plan)));
    let mut history = match &opts.history {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| RunError::Usage(format!("{}: cannot write the history: {e}", p.display())),
        )?)),
        None => None,
    };
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
                let mut r = recorder.lock().expect("recorder lock");
                for ev in buf.drain(..) {
                    r.record(&ev);
                }
            }
        })
    };

    let publish_until = Nanos::from_duration(plan.scenario.duration);
    let observer = match Observer::start(
        &plan,
        broker_addr,
        clock,
        events_tx.clone(),
        publish_until,
        connect_timeout,
        broker
            .sys_client_events()
            .then(|| crate::observer::sys::ROOT.to_string()),
    )
    .await
    {
        Ok(o) => o,
        Err(e) => {
            cleanup_links(&*links, &proxies).await;
            shutdown_toxiproxy(&mut toxiproxy_container).await;
            let _ = broker.shutdown().await;
            return Err(RunError::Environment(e.to_string()));
        }
    };
    let shared = Shared {
        clock,
        events: events_tx.clone(),
        publish_until,
        seed: plan.seed,
    };
    let fleet = Fleet::start(&plan, &addrs, shared, clock.now());
    let targets = Arc::new(Targets {
        broker: AsyncMutex::new(broker),
        links: links.clone(),
        proxies,
        fleet: AsyncMutex::new(fleet),
        clock,
        events: events_tx.clone(),
    });

    // The timeline: one task per fault; the first failure ends the run.
    let (fail_tx, mut fail_rx) = mpsc::channel::<String>(plan.faults.len().max(1));
    let fault_tasks: Vec<JoinHandle<()>> = plan
        .faults
        .iter()
        .cloned()
        .map(|f| {
            let t = targets.clone();
            let fail = fail_tx.clone();
            tokio::spawn(async move {
                if let Err(e) = play(&t, &f).await {
                    let _ = fail.send(e).await;
                }
            })
        })
        .collect();

    let total = plan.scenario.duration + plan.drain;
    let mut progress = Progress::new(opts.quiet, total);
    let end = tokio::time::Instant::from_std(clock.instant(Nanos::from_duration(total)));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
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
    let mut environment_error = None;
    // SIGTERM (a CI job cancelled) is handled like Ctrl-C: heal, stop, report.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| RunError::Environment(format!("cannot handle SIGTERM: {e}")))?;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(end) => break,
            _ = tokio::signal::ctrl_c() => { interrupted = true; break; }
            _ = term.recv() => { interrupted = true; break; }
            Some(e) = fail_rx.recv() => { environment_error = Some(e); break; }
            _ = cuts.tick(), if interval_error.is_none() => {
                let rec = recorder.lock().expect("recorder lock").cut_interval(clock.now());
                if let Err(e) = interval_log.append(&rec) {
                    interval_error = Some(e.to_string());
                }
                series.push(&rec);
            }
            _ = tick.tick() => {
                let live = recorder.lock().expect("recorder lock").live();
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

    // Teardown: stop the timeline, heal everything, stop clients, stop backends.
    for t in &fault_tasks {
        t.abort();
    }
    for t in fault_tasks {
        let _ = t.await;
    }
    heal_everything(&targets, &plan).await;
    targets.fleet.lock().await.stop().await;
    observer.stop().await;
    let end_at = clock.now();
    let broker_version = targets.broker.lock().await.version();
    cleanup_links(&*links, &targets.proxies).await;
    // The Toxiproxy container first: it may sit on the broker's network,
    // which cannot be removed while it is attached.
    if let Some(c) = toxiproxy_container.take() {
        if let Err(e) = c.shutdown().await {
            environment_error.get_or_insert(format!("fault backend shutdown: {e}"));
        }
    }
    if let Err(e) = targets.broker.lock().await.shutdown().await {
        environment_error.get_or_insert(format!("broker shutdown: {e}"));
    }
    drop(fail_tx);
    drop(events_tx);
    drop(targets);
    // Every sender is gone once the fleet and observer stopped: the
    // aggregator folds what is left in the channel and ends.
    let mut aggregator = aggregator;
    if tokio::time::timeout(Duration::from_secs(10), &mut aggregator)
        .await
        .is_err()
    {
        aggregator.abort();
        let _ = aggregator.await;
        environment_error
            .get_or_insert("internal: the event aggregator did not finish in 10 s".into());
    }
    let mut recorder = Arc::try_unwrap(recorder)
        .map_err(|_| RunError::Environment("internal: event senders outlived the run".into()))?
        .into_inner()
        .expect("recorder lock");
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
            faults: faults_version,
        },
        unobserved_s: None,
        slos: scenario::slos(&plan.scenario),
    };
    if interval_error.is_none() {
        let rec = recorder.cut_last_interval(end_at);
        if let Err(e) = interval_log.append(&rec) {
            interval_error = Some(e.to_string());
        }
        series.push(&rec);
    }
    let mut report = recorder.finish(end_at, ctx);
    if let Some(e) = interval_error {
        report.push_error(crate::health::Incident::untimed(
            crate::health::Cause::TimeSeries,
            format!("time series: {e}"),
        ));
        environment_error.get_or_insert(format!("time series: {e}"));
    }
    write_outputs(&report, &series.finish(), &dir)?;
    Ok(Finished {
        report,
        dir,
        interrupted,
        environment_error,
    })
}

/// Write every output of a run into `dir`: `report.json`, `report.md`,
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

async fn cleanup_links(links: &dyn LinkFaults, proxies: &HashMap<String, String>) {
    for name in proxies.values() {
        let _ = links.delete_proxy(name).await;
    }
}

/// Heal whatever the aborted timeline left applied (broker resumed and
/// running, proxies reset, crashed devices left as they are: the run is over).
async fn heal_everything(t: &Targets, plan: &Plan) {
    // Only our own proxies: `POST /reset` would heal every proxy of a
    // Toxiproxy that other runs share.
    for name in t.proxies.values() {
        let _ = t.links.set_half_open(name, false).await;
        let _ = t.links.set_enabled(name, true).await;
        if let Ok(info) = t.links.proxy(name).await {
            for toxic in info.toxics {
                let _ = t.links.remove_toxic(name, &toxic.name).await;
            }
        }
    }
    let mut b = t.broker.lock().await;
    let _ = b.resume().await;
    let _ = b.heal_partition().await;
    if plan.faults.iter().any(|f| f.kind.is_broker_fault()) {
        // A broker stopped or killed by an interrupted fault comes back, so
        // the fleet can disconnect cleanly; starting a running broker is a no-op.
        let _ = b.start().await;
    }
}

fn streams(sel: StreamSel) -> &'static [Stream] {
    match sel {
        StreamSel::Upstream => &[Stream::Upstream],
        StreamSel::Downstream => &[Stream::Downstream],
        StreamSel::Both => &[Stream::Upstream, Stream::Downstream],
    }
}

/// Remove the run's Toxiproxy container, if any, on a path that ends the run
/// early (before the broker, whose network it may sit on).
async fn shutdown_toxiproxy(c: &mut Option<ToxiproxyContainer>) {
    if let Some(c) = c.take() {
        if let Err(e) = c.shutdown().await {
            tracing::warn!("fault backend shutdown: {e}");
        }
    }
}

/// The toxic kind (and streams, toxicity) a network fault maps to.
pub fn toxic_of(kind: &FaultKind) -> Option<(ToxicKind, StreamSel, Option<f32>)> {
    let ms = |d: Duration| d.as_millis() as u64;
    Some(match kind {
        FaultKind::Latency {
            latency,
            jitter,
            stream,
            toxicity,
        } => (
            ToxicKind::Latency {
                latency: ms(*latency),
                jitter: ms(*jitter),
            },
            *stream,
            *toxicity,
        ),
        FaultKind::Bandwidth {
            rate,
            stream,
            toxicity,
        } => (ToxicKind::Bandwidth { rate: *rate }, *stream, *toxicity),
        FaultKind::Blackhole { stream, toxicity } => {
            (ToxicKind::Timeout { timeout: 0 }, *stream, *toxicity)
        }
        FaultKind::ResetPeer {
            timeout,
            stream,
            toxicity,
        } => (
            ToxicKind::ResetPeer {
                timeout: ms(*timeout),
            },
            *stream,
            *toxicity,
        ),
        FaultKind::SlowClose {
            delay,
            stream,
            toxicity,
        } => (
            ToxicKind::SlowClose { delay: ms(*delay) },
            *stream,
            *toxicity,
        ),
        FaultKind::Slicer {
            average_size,
            size_variation,
            delay,
            stream,
            toxicity,
        } => (
            ToxicKind::Slicer {
                average_size: *average_size,
                size_variation: *size_variation,
                delay: delay.as_micros() as u64,
            },
            *stream,
            *toxicity,
        ),
        FaultKind::LimitData {
            bytes,
            stream,
            toxicity,
        } => (ToxicKind::LimitData { bytes: *bytes }, *stream, *toxicity),
        _ => return None,
    })
}

impl Targets {
    async fn record(&self, what: FaultEvent) {
        let _ = self
            .events
            .send(Event::Fault {
                at: self.clock.now(),
                what,
            })
            .await;
    }

    async fn sleep_until(&self, at: Duration) {
        tokio::time::sleep_until(tokio::time::Instant::from_std(
            self.clock.instant(Nanos::from_duration(at)),
        ))
        .await;
    }

    fn proxies_of<'a>(&'a self, f: &'a ScheduledFault) -> impl Iterator<Item = &'a String> + 'a {
        f.groups.iter().filter_map(|g| self.proxies.get(g))
    }
}

/// Play one timeline entry: apply at `at`, heal at `at + duration`, each
/// stamped when the backend confirmed it.
async fn play(t: &Targets, f: &ScheduledFault) -> Result<(), String> {
    t.sleep_until(f.at).await;
    // The window opens now: effects seen before the backend answers belong
    // to the fault (METRICS.md).
    t.record(FaultEvent::Requested { index: f.index }).await;
    let applied = |devices: Vec<u32>| FaultEvent::Applied {
        index: f.index,
        kind: f.kind.name().into(),
        target: f.target.clone(),
        devices,
    };
    let failed = |error: String, applied: bool| FaultEvent::Failed {
        index: f.index,
        error,
        applied,
    };
    macro_rules! step {
        ($e:expr, $applied:expr) => {
            if let Err(e) = $e {
                let msg = format!("timeline[{}] {}: {e}", f.index, f.kind.name());
                t.record(failed(msg.clone(), $applied)).await;
                return Err(msg);
            }
        };
    }
    let end = f.end();
    match &f.kind {
        k if toxic_of(k).is_some() => {
            let (kind, sel, toxicity) = toxic_of(k).expect("checked");
            let mut added: Vec<(String, String)> = Vec::new();
            for p in t.proxies_of(f) {
                for s in streams(sel) {
                    let name = format!("f{}_{}_{}", f.index, kind.type_name(), s.as_str());
                    let toxic = Toxic::new(kind.clone(), *s)
                        .named(name.clone())
                        .with_toxicity(toxicity.unwrap_or(1.0));
                    step!(t.links.add_toxic(p, &toxic).await, !added.is_empty());
                    added.push((p.clone(), name));
                }
            }
            t.record(applied(vec![])).await;
            t.sleep_until(end).await;
            for (p, name) in &added {
                step!(t.links.remove_toxic(p, name).await, true);
            }
        }
        FaultKind::HalfOpen => {
            for p in t.proxies_of(f) {
                step!(t.links.set_half_open(p, true).await, false);
            }
            t.record(applied(vec![])).await;
            t.sleep_until(end).await;
            for p in t.proxies_of(f) {
                step!(t.links.set_half_open(p, false).await, true);
            }
        }
        FaultKind::LinkDown => {
            for p in t.proxies_of(f) {
                step!(t.links.set_enabled(p, false).await, false);
            }
            t.record(applied(vec![])).await;
            t.sleep_until(end).await;
            for p in t.proxies_of(f) {
                step!(t.links.set_enabled(p, true).await, true);
            }
        }
        FaultKind::Flapping { down, up } => {
            let mut at = f.at;
            let mut first = true;
            while at < end {
                for p in t.proxies_of(f) {
                    step!(t.links.set_enabled(p, false).await, !first);
                }
                if first {
                    t.record(applied(vec![])).await;
                    first = false;
                }
                let up_at = (at + *down).min(end);
                t.sleep_until(up_at).await;
                for p in t.proxies_of(f) {
                    step!(t.links.set_enabled(p, true).await, true);
                }
                at = up_at + *up;
                if at < end {
                    t.sleep_until(at).await;
                }
            }
        }
        FaultKind::BrokerRestart | FaultKind::BrokerKill | FaultKind::BrokerPause => {
            {
                let mut b = t.broker.lock().await;
                match f.kind {
                    FaultKind::BrokerRestart => step!(b.stop().await, false),
                    FaultKind::BrokerKill => step!(b.kill().await, false),
                    _ => step!(b.pause().await, false),
                }
            }
            t.record(applied(vec![])).await;
            t.sleep_until(end).await;
            let mut b = t.broker.lock().await;
            if matches!(f.kind, FaultKind::BrokerPause) {
                step!(b.resume().await, true);
            } else {
                step!(b.start().await, true);
            }
        }
        FaultKind::BrokerPartition => {
            step!(t.broker.lock().await.partition().await, false);
            t.record(applied(vec![])).await;
            t.sleep_until(end).await;
            step!(t.broker.lock().await.heal_partition().await, true);
        }
        FaultKind::DeviceCrash { .. } => {
            {
                let mut fleet = t.fleet.lock().await;
                for &d in &f.devices {
                    fleet.crash(d).await;
                }
            }
            t.record(applied(f.devices.clone())).await;
            if f.duration.is_none() {
                return Ok(()); // stays dead: never healed
            }
            t.sleep_until(end).await;
            let mut fleet = t.fleet.lock().await;
            for &d in &f.devices {
                fleet.restart(d).await;
            }
        }
        FaultKind::ClientIdConflict { .. } => {
            {
                let mut fleet = t.fleet.lock().await;
                for &d in &f.devices {
                    fleet.intrude(d);
                }
            }
            t.record(applied(f.devices.clone())).await;
            t.sleep_until(end).await;
            let mut fleet = t.fleet.lock().await;
            for &d in &f.devices {
                fleet.end_intrusion(d).await;
            }
        }
        _ => unreachable!("every fault kind is handled above"),
    }
    t.record(FaultEvent::Healed { index: f.index }).await;
    Ok(())
}

impl From<crate::broker::BrokerError> for RunError {
    fn from(e: crate::broker::BrokerError) -> Self {
        RunError::Environment(format!("broker: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_and_fault_specs_parse() {
        assert_eq!(BrokerSpec::parse("embedded").unwrap(), BrokerSpec::Embedded);
        assert_eq!(
            BrokerSpec::parse("mosquitto").unwrap(),
            BrokerSpec::Mosquitto
        );
        assert_eq!(
            BrokerSpec::parse("tcp://127.0.0.1:1883").unwrap(),
            BrokerSpec::External("tcp://127.0.0.1:1883".into())
        );
        assert!(BrokerSpec::parse("emqx5").is_err());
        assert_eq!(
            FaultsSpec::parse("toxiproxy=http://127.0.0.1:8474").unwrap(),
            FaultsSpec::Toxiproxy("http://127.0.0.1:8474".into())
        );
        assert!(FaultsSpec::parse("toxiproxy").is_err());
        assert_eq!(
            FaultsSpec::parse("toxiproxy-container").unwrap(),
            FaultsSpec::ToxiproxyContainer("ghcr.io/shopify/toxiproxy:2.12.0".into())
        );
        assert_eq!(
            FaultsSpec::parse("toxiproxy-container=mqtt-chaos/toxiproxy-standin:local").unwrap(),
            FaultsSpec::ToxiproxyContainer("mqtt-chaos/toxiproxy-standin:local".into())
        );
        assert!(FaultsSpec::parse("toxiproxy-container=notag").is_err());
    }

    #[test]
    fn loopback_brokers_and_upstreams_are_told_apart() {
        assert!(broker_host_is_loopback("tcp://127.0.0.1:1883"));
        assert!(broker_host_is_loopback("mqtt://localhost:1883"));
        assert!(broker_host_is_loopback("tcp://[::1]:1883"));
        assert!(!broker_host_is_loopback("tcp://emqx.lab:1883"));
        assert!(valid_host_port("broker:1883"));
        assert!(!valid_host_port("broker"));
        assert!(!valid_host_port(":1883"));
        assert!(!valid_host_port("broker:0"));
    }

    #[test]
    fn blackhole_is_the_timeout_toxic_with_timeout_zero() {
        let (k, s, _) = toxic_of(&FaultKind::Blackhole {
            stream: StreamSel::Both,
            toxicity: None,
        })
        .unwrap();
        assert_eq!(k, ToxicKind::Timeout { timeout: 0 });
        assert_eq!(s, StreamSel::Both);
    }
}
