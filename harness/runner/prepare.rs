//! The checks of a run that need no I/O beyond reading the scenario:
//! load, validate, resolve into a plan, and refuse what the chosen backends
//! cannot do — before anything is started or written.

use crate::broker::{self, BrokerSettings};
use crate::fault;
use crate::plan::Plan;
use crate::scenario::{self, FaultKind, Scenario};

use super::specs::{broker_host_is_loopback, valid_host_port};
use super::{BrokerSpec, FaultsSpec, ProxySetup, RunError, RunOptions};

/// Load, validate and resolve; the checks that need no I/O beyond reading
/// the file, including those that depend on the chosen backends.
/// Why `cut` cannot run on Toxiproxy, and its nearest equivalent there.
const CUT_ON_TOXIPROXY: &str = "cut (neither side's close passed on) is a mode of the embedded fault engine, not of Toxiproxy; its nearest equivalent there is kind = \"blackhole\" (the timeout toxic, timeout 0, both streams), which passes the client's own close on to the broker, so the will fires when the client gives up rather than at the broker's keepalive";

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
        if let Some(msg) = crate::limits::check_duration_override(&sc, d) {
            return Err(RunError::Usage(msg));
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
            mqtt5: true,
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
        if p.protocol == 5 && !caps.mqtt5 {
            return Err(at(
                &format!("profiles.{name}.protocol"),
                format!("protocol = 5 is not served by {broker_name} (rumqttd serves MQTT 5 only on a listener of its own); run it with --broker mosquitto or an EMQX container"),
            ));
        }
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
    // A shard other than the designated one follows the broker faults that
    // shard 0 applies (crate::shard): its broker is shard 0's, reached as
    // an external one.
    let follower = opts.shard.is_some_and(|s| !s.is_designated());
    if let Some(shard) = opts.shard {
        if shard.count > 1 && opts.start_at_unix_ms.is_none() {
            return Err(RunError::Usage(format!(
                "--shard {shard}: the shards of one run need their common start instant (--start-at, e.g. the same Unix ms for every shard)"
            )));
        }
        if follower
            && !matches!(
                broker_spec,
                BrokerSpec::External(_) | BrokerSpec::Attached(_)
            )
        {
            return Err(RunError::Usage(format!(
                "--shard {shard}: the shards share shard 0's broker; give its address (--broker tcp://HOST:PORT)"
            )));
        }
    }
    for (i, f) in sc.timeline.iter().enumerate() {
        if follower && f.kind.id().target() == scenario::FaultTarget::Broker {
            continue;
        }
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
        if matches!(f.kind, FaultKind::Cut) && faults_spec.is_toxiproxy() {
            return Err(at(&format!("timeline[{i}].kind"), CUT_ON_TOXIPROXY.into()));
        }
    }
    for (k, w) in sc.weather.iter().enumerate() {
        use crate::scenario::weather::DropKind;
        let kind = w.silent_drop.map(|d| d.kind);
        if faults_spec.is_toxiproxy() && kind == Some(DropKind::HalfOpen) {
            return Err(at(
                &format!("weather[{k}].silent_drop.kind"),
                "half_open is a mode of the embedded fault engine, not of Toxiproxy; use kind = \"blackhole\"".into(),
            ));
        }
        if faults_spec.is_toxiproxy() && kind == Some(DropKind::Cut) {
            return Err(at(
                &format!("weather[{k}].silent_drop.kind"),
                CUT_ON_TOXIPROXY.into(),
            ));
        }
    }
    let whole = Plan::resolve(&sc, opts.seed);
    // The open files the run needs, against what this process may hold
    // (the soft limit raised to the hard one first; the broker child
    // inherits it).
    let (soft, _) =
        crate::limits::raise_nofile().map_err(|e| RunError::Environment(e.to_string()))?;
    let size = crate::limits::RunSize::of(&whole.scenario);
    if broker_spec == BrokerSpec::Embedded {
        // It serves every shard.
        broker::embedded::check_load(whole.devices.len() as u32, size.messages_per_s)
            .map_err(RunError::Usage)?;
    }
    let whole_size = size;
    let (plan, size) = match opts.shard {
        Some(shard) => (whole.shard(shard), size.shard(shard.count)),
        None => (whole, size),
    };
    crate::limits::check_fds(
        crate::limits::fds_needed(&size, faults_spec.proxy_place()),
        soft,
    )
    .map_err(RunError::Usage)?;
    if let Some(available) = crate::limits::mem_available() {
        crate::limits::check_memory(size.devices, available).map_err(RunError::Usage)?;
    }
    let proxies = proxy_setup(
        opts,
        &sc,
        &text,
        &broker_spec,
        &faults_spec,
        plan.linked_groups().len(),
    )?;
    if let Some(ports) = crate::limits::ephemeral_ports() {
        // The shards of `--workers` share this machine's ports (shard 0,
        // which checks, holds the whole count).
        let here = if opts.workers > 1 { &whole_size } else { &size };
        let proxied = here.proxied_connections.min(here.connections);
        crate::limits::check_ports(here.connections - proxied, proxied, &proxies.sources, ports)
            .map_err(RunError::Usage)?;
    }
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
                    "{groups} device groups with link faults need {groups} proxy ports, {} has {count}",
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
    if let Some(list) = &opts.proxy.sources {
        let flag = |m: String| RunError::Usage(format!("--source-addresses: {m}"));
        if faults != &FaultsSpec::Embedded {
            return Err(flag("source addresses apply to the embedded fault engine (--faults embedded); Toxiproxy opens its upstream connections from the address its host picks".into()));
        }
        setup.sources = super::specs::usable_sources(list).map_err(flag)?;
    }
    if let FaultsSpec::ToxiproxyContainer(_) = faults {
        let published = fault::container::PROXY_PORTS.count();
        if groups > published {
            return Err(RunError::Usage(format!(
                "--faults toxiproxy-container publishes {published} proxy ports; the scenario has {groups} device groups with link faults"
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
