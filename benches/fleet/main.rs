//! The fleet capacity bench: what the harness costs per message and per
//! device, measured as ratios against a bare rumqttc fleet carrying the same
//! load in the same run, against one Mosquitto the bench starts itself.
//!
//! ```text
//! cargo bench --bench fleet -- --devices 1000,5000 [--duration 60s] [--rate 1]
//!                              [--qos 1] [--payload 128] [--keep DIR]
//! cargo bench --bench fleet -- --idle --devices 10000 --hold 10m
//! cargo bench --bench fleet -- --idle --devices 30000 --brokers 2
//! ```
//!
//! # Map
//!
//! * [`broker`]: the Mosquitto of the whole bench (own config, free port
//!   on 127.0.0.1, no limits that drop messages); one per shard with
//!   `--brokers K`.
//! * [`bare`]: the baseline: N rumqttc clients and one subscriber, as a
//!   process of its own (this binary re-executed with `--bare`).
//! * [`harness_run`]: the harness's run of the same load: the scenario
//!   written here, the figures read from its `report.json`.
//! * [`child`]: every child process as a guard: bounded wait, CPU and peak
//!   RSS from /proc, stopped on every path (SIGTERM, then SIGKILL).
//! * [`procfs`]: the /proc parsers and readers.
//! * [`table`]: rows, the project's goals, Markdown.
//!
//! Flow: Mosquitto starts once; a 1-device run of each fleet gives the
//! memory of a process without devices; then for each N the bare fleet
//! and the harness run one after the other (the broker empty in between),
//! each measured from /proc: its CPU (utime + stime, all threads) over the
//! messages delivered, its VmHWM, and Mosquitto's CPU during that phase.

mod bare;
mod broker;
mod child;
mod harness_run;
mod procfs;
mod table;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;

use crate::broker::Broker;
use crate::child::Proc;
use crate::table::{Measured, Row, Timeline};

#[derive(Parser, Debug)]
#[command(
    name = "fleet",
    about = "Fleet capacity: the harness against a bare rumqttc fleet"
)]
struct Args {
    /// Fleet sizes, one run of each fleet per size.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    devices: Vec<u32>,
    /// Messages per second per device.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// QoS of the telemetry.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// How long each fleet publishes.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Payload size, bytes.
    #[arg(long, default_value_t = 128)]
    payload: usize,
    /// Keepalive of every device (default: 30 s, 60 s with --idle).
    #[arg(long, value_parser = humantime::parse_duration)]
    keepalive: Option<Duration>,
    /// Connect and hold without publishing, printing the connected count.
    #[arg(long)]
    idle: bool,
    /// How long --idle holds the fleet.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    hold: Duration,
    /// Brokers, one Mosquitto each. With K > 1 each fleet runs as K
    /// processes, process i holding the devices of index k mod K = i
    /// against broker i (the harness as `run --shard i/K`, its shards
    /// merged after): past one broker's open-file limit, the harness side
    /// goes on.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8))]
    brokers: u32,
    /// Keep the scenarios, reports and logs in this directory (default: a
    /// temp dir, removed at the end).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    /// Run as the bare fleet (a child of the bench).
    #[arg(long, hide = true)]
    bare: bool,
    /// The broker's port (with --bare).
    #[arg(long, hide = true, default_value_t = 0)]
    port: u16,
}

/// Where the steady part of a run begins, on its clock: past the
/// connection ramp (the whole fleet connects within 2 s) and the first
/// interval, for both fleets alike.
pub const STEADY_FROM: Duration = Duration::from_secs(20);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// SIGINT or SIGTERM reached the bench: every wait gives up, and the
/// guards stop what was started.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

extern "C" fn on_signal(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let a = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for s in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            let _ = sigaction(s, &a);
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = mqtt_chaos::limits::raise_nofile() {
        eprintln!("fleet bench: {e}");
    }
    if args.bare {
        return bare_main(&args);
    }
    install_signal_handlers();
    match bench(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet bench: {e}");
            ExitCode::from(if interrupted() { 130 } else { 1 })
        }
    }
}

fn keepalive(args: &Args) -> Duration {
    args.keepalive
        .unwrap_or(Duration::from_secs(if args.idle { 60 } else { 30 }))
}

fn bare_main(args: &Args) -> ExitCode {
    let load = bare::Load {
        devices: args.devices.first().copied().unwrap_or(1),
        port: args.port,
        rate: (!args.idle).then_some(args.rate),
        qos: args.qos,
        payload: args.payload,
        keepalive: keepalive(args),
        duration: if args.idle { args.hold } else { args.duration },
        drain: harness_run::DRAIN,
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bare fleet: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(bare::run(load)) {
        Ok(r) => {
            println!("{}", serde_json::to_string(&r).unwrap_or_default());
            // Do not wait for the clients' tasks to wind down.
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("bare fleet: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The scratch directory: `--keep DIR`, or a temp dir removed at the end.
enum WorkDir {
    Kept(PathBuf),
    Temp(tempfile::TempDir),
}

impl WorkDir {
    fn path(&self) -> &Path {
        match self {
            WorkDir::Kept(p) => p,
            WorkDir::Temp(t) => t.path(),
        }
    }
}

/// `target/release/mqtt-chaos`: cargo builds it with the bench; built
/// here (`cargo build --release`) when it is missing all the same.
fn harness_binary(work: &Path) -> Result<PathBuf, String> {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_mqtt-chaos"));
    if bin.exists() {
        return Ok(bin);
    }
    eprintln!(
        "fleet bench: {} is missing: cargo build --release",
        bin.display()
    );
    let log = std::fs::File::create(work.join("cargo-build.log")).map_err(|e| e.to_string())?;
    let mut p = Proc::spawn(
        "cargo build --release",
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--bin", "mqtt-chaos"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .stderr(log),
        Duration::from_secs(10),
    )?;
    let cost = p.wait(Instant::now() + Duration::from_secs(45 * 60), |_| {})?;
    if !cost.status.success() || !bin.exists() {
        return Err(format!(
            "cargo build --release failed (see {})",
            work.join("cargo-build.log").display()
        ));
    }
    Ok(bin)
}

/// What a phase is: which fleet, how many devices, for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fleet {
    Bare,
    Harness,
}

impl Fleet {
    fn name(self) -> &'static str {
        match self {
            Fleet::Bare => "bare",
            Fleet::Harness => "harness",
        }
    }

    /// Connections of its own to the broker beside the devices: the bare
    /// subscriber; the harness's collector (and its prober, while probing).
    fn own_connections(self) -> usize {
        match self {
            Fleet::Bare => 1,
            Fleet::Harness => mqtt_chaos::limits::HARNESS_CONNECTIONS as usize,
        }
    }
}

struct Ctx<'a> {
    args: &'a Args,
    brokers: &'a [Broker],
    work: &'a Path,
    harness_bin: &'a Path,
}

/// The devices of shard `i` of `k` among `n` (those of index j mod k = i).
fn share(n: u32, i: u32, k: u32) -> u32 {
    n / k + u32::from(i < n % k)
}

/// How far ahead of now the shards of one harness run start together:
/// time for each process to start and prepare.
const SHARD_LEAD: Duration = Duration::from_secs(10);

/// Run one fleet of `n` devices for `duration` (publishing, or holding
/// with --idle) as `procs` processes, process i against broker i; what it
/// cost (summed over the processes), counted, and its connected devices
/// over time.
fn phase(
    ctx: &Ctx,
    fleet: Fleet,
    n: u32,
    procs: u32,
    duration: Duration,
) -> Result<(Measured, Timeline), String> {
    let brokers = &ctx.brokers[..procs as usize];
    for b in brokers {
        let left = b.wait_empty(Duration::from_secs(30));
        if left > 0 {
            eprintln!(
                "fleet bench: {left} connections still open at the broker on port {} before this phase",
                b.port
            );
        }
    }
    let args = ctx.args;
    let tag = format!(
        "{}-{n}{}{}",
        fleet.name(),
        if args.idle { "-idle" } else { "" },
        if procs > 1 {
            format!("-x{procs}")
        } else {
            String::new()
        }
    );
    let out_dir = ctx.work.join(&tag);
    let scenario = ctx.work.join(format!("{tag}.toml"));
    if fleet == Fleet::Harness {
        let load = harness_run::Load {
            devices: n,
            rate: (!args.idle).then_some(args.rate),
            qos: args.qos,
            payload: args.payload,
            keepalive: keepalive(args),
            duration,
        };
        std::fs::write(&scenario, harness_run::scenario_text(&load)).map_err(|e| e.to_string())?;
    }
    let start_at = std::time::SystemTime::now() + SHARD_LEAD;
    let start_at_ms = start_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis();
    let deadline = duration
        + harness_run::DRAIN
        + if fleet == Fleet::Bare {
            Duration::from_secs(60)
        } else {
            // Its own teardown is bounded by 180 s.
            Duration::from_secs(240) + SHARD_LEAD
        };
    eprintln!(
        "fleet bench: {} fleet, {n} devices{}, {}",
        fleet.name(),
        if procs > 1 {
            format!(" in {procs} processes, one broker each")
        } else {
            String::new()
        },
        humantime::format_duration(duration)
    );
    let mosquitto_before: Vec<Duration> = brokers.iter().map(Broker::cpu).collect();
    let started = Instant::now();
    let mut children = Vec::new();
    let mut stdout_paths = Vec::new();
    let mut logs = Vec::new();
    let mut shard_dirs = Vec::new();
    for (i, b) in brokers.iter().enumerate() {
        let i = i as u32;
        let name = if procs > 1 {
            format!("{}-{i}", fleet.name())
        } else {
            fleet.name().to_string()
        };
        let log_path = ctx.work.join(format!("{tag}{}.log", suffix(i, procs)));
        let stdout_path = ctx.work.join(format!("{tag}{}.out", suffix(i, procs)));
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let stdout = std::fs::File::create(&stdout_path).map_err(|e| e.to_string())?;
        let mut cmd;
        match fleet {
            Fleet::Bare => {
                cmd = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
                cmd.arg("--bare")
                    .arg(format!("--devices={}", share(n, i, procs)))
                    .arg(format!("--port={}", b.port))
                    .arg(format!("--rate={}", args.rate))
                    .arg(format!("--qos={}", args.qos))
                    .arg(format!("--payload={}", args.payload))
                    .arg(format!("--keepalive={}ms", keepalive(args).as_millis()));
                if args.idle {
                    cmd.arg("--idle")
                        .arg(format!("--hold={}ms", duration.as_millis()));
                } else {
                    cmd.arg(format!("--duration={}ms", duration.as_millis()));
                }
            }
            Fleet::Harness => {
                let dir = if procs > 1 {
                    out_dir.join(format!("shard-{i}"))
                } else {
                    out_dir.clone()
                };
                cmd = Command::new(ctx.harness_bin);
                cmd.arg("run")
                    .arg(&scenario)
                    .arg("--broker")
                    .arg(format!("tcp://127.0.0.1:{}", b.port))
                    .arg("--quiet")
                    .arg("--out")
                    .arg(&dir);
                if procs > 1 {
                    cmd.arg(format!("--shard={i}/{procs}"))
                        .arg(format!("--start-at={start_at_ms}"));
                }
                shard_dirs.push(dir);
            }
        }
        cmd.stdin(Stdio::null()).stdout(stdout).stderr(log);
        children.push(Proc::spawn(&name, &mut cmd, Duration::from_secs(60))?);
        stdout_paths.push(stdout_path);
        logs.push(log_path);
    }
    let mut timeline = Timeline::new();
    let every = (duration / 20).clamp(Duration::from_secs(5), Duration::from_secs(30));
    let mut next = started + every;
    let own = fleet.own_connections();
    let costs = child::wait_all(&mut children, started + deadline, |ps| {
        if args.idle && Instant::now() >= next {
            next += every;
            let c = brokers
                .iter()
                .map(|b| procfs::established(b.port).saturating_sub(own))
                .sum::<usize>();
            let rss: u64 = ps
                .iter()
                .map(|p| procfs::rss_kib(p.pid()).unwrap_or(0))
                .sum();
            let t = started.elapsed().as_secs();
            eprintln!(
                "  t={t}s connected={c}/{n} rss={:.1} MiB",
                rss as f64 / 1024.0
            );
            timeline.push((t, c));
        }
    })?;
    let mosquitto_cpu = brokers
        .iter()
        .zip(&mosquitto_before)
        .map(|(b, before)| b.cpu().saturating_sub(*before))
        .sum();
    let mut m = Measured {
        cpu: costs.iter().map(|c| c.cpu).sum(),
        peak_rss_kib: costs.iter().map(|c| c.peak_rss_kib).sum(),
        mosquitto_cpu,
        ..Measured::default()
    };
    match fleet {
        Fleet::Bare => {
            for ((cost, stdout_path), log) in costs.iter().zip(&stdout_paths).zip(&logs) {
                if !cost.status.success() {
                    return Err(format!(
                        "the bare fleet failed ({}; see {})",
                        cost.status,
                        log.display()
                    ));
                }
                let text = std::fs::read_to_string(stdout_path).map_err(|e| e.to_string())?;
                let r: bare::BareReport = serde_json::from_str(text.trim())
                    .map_err(|e| format!("the bare fleet's report: {e}: {text}"))?;
                if r.connection_errors > 0 {
                    eprintln!("  bare fleet: {} connection errors", r.connection_errors);
                }
                m.sent += r.sent;
                m.delivered += r.delivered;
                // A p99 of several processes is not their sum: the worst
                // of them stands for the fleet.
                m.e2e_p99_us = m.e2e_p99_us.max(r.e2e_p99_us);
                m.steady_p99_us = m.steady_p99_us.max(r.steady_p99_us);
            }
        }
        Fleet::Harness => {
            if procs > 1 {
                harness_run::merge(ctx.harness_bin, &shard_dirs, &out_dir)?;
            }
            let f = harness_run::read_report(&out_dir).map_err(|e| {
                let status: Vec<String> = costs.iter().map(|c| c.status.to_string()).collect();
                format!(
                    "{e} (harness exit {}; see {})",
                    status.join(", "),
                    logs[0].display()
                )
            })?;
            m.sent = f.sent;
            m.delivered = f.delivered;
            m.e2e_p99_us = f.e2e_p99_us;
            if !args.idle {
                m.steady_p99_us = harness_run::steady_p99(ctx.harness_bin, &out_dir, duration)?;
            }
            m.verdict = Some(f.verdict);
            m.incidents = f.incidents;
        }
    }
    eprintln!(
        "  cpu {:.2} s, peak RSS {:.1} MiB, delivered {}/{}, Mosquitto cpu {:.2} s",
        m.cpu.as_secs_f64(),
        m.peak_rss_kib as f64 / 1024.0,
        m.delivered,
        m.sent,
        m.mosquitto_cpu.as_secs_f64()
    );
    Ok((m, timeline))
}

/// The file name suffix of process i of a phase of `procs`.
fn suffix(i: u32, procs: u32) -> String {
    if procs > 1 {
        format!("-{i}")
    } else {
        String::new()
    }
}

/// The 1-device runs standing for each process without devices.
const BASELINE_DURATION: Duration = Duration::from_secs(10);

fn bench(args: &Args) -> Result<(), String> {
    if args.devices.is_empty() || args.devices.contains(&0) {
        return Err("--devices: one or more sizes of at least 1".into());
    }
    let work = match &args.keep {
        Some(p) => {
            std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
            WorkDir::Kept(p.clone())
        }
        None => WorkDir::Temp(tempfile::tempdir().map_err(|e| e.to_string())?),
    };
    let harness_bin = harness_binary(work.path())?;
    let mut brokers = Vec::new();
    for i in 0..args.brokers {
        let dir = if i == 0 {
            work.path().to_path_buf()
        } else {
            let d = work.path().join(format!("broker-{i}"));
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            d
        };
        let b = Broker::start(&dir)?;
        eprintln!(
            "fleet bench: {} on 127.0.0.1:{} (pid {}), work dir {}",
            b.version,
            b.port,
            b.proc.pid(),
            work.path().display()
        );
        brokers.push(b);
    }
    let ctx = Ctx {
        args,
        brokers: &brokers,
        work: work.path(),
        harness_bin: &harness_bin,
    };
    let base_bare = phase(&ctx, Fleet::Bare, 1, 1, BASELINE_DURATION)?.0;
    let base_harness = phase(&ctx, Fleet::Harness, 1, 1, BASELINE_DURATION)?.0;
    let run_for = if args.idle { args.hold } else { args.duration };
    let mut rows = Vec::new();
    let mut timelines = Vec::new();
    for &n in &args.devices {
        let (bare, bare_t) = phase(&ctx, Fleet::Bare, n, args.brokers, run_for)?;
        let (harness, harness_t) = phase(&ctx, Fleet::Harness, n, args.brokers, run_for)?;
        rows.push(Row {
            devices: n,
            harness_rss_per_device: table::rss_per_device_kib(
                harness.peak_rss_kib,
                base_harness.peak_rss_kib,
                n,
                args.brokers,
            ),
            bare_rss_per_device: table::rss_per_device_kib(
                bare.peak_rss_kib,
                base_bare.peak_rss_kib,
                n,
                args.brokers,
            ),
            harness,
            bare,
        });
        timelines.push((n, bare_t, harness_t));
    }
    println!();
    println!(
        "{}{}, 127.0.0.1; {} per device, QoS {}, {} B payload, keepalive {}, {} per fleet",
        brokers[0].version,
        if args.brokers > 1 {
            format!(
                " × {} (each fleet in {0} processes, one broker each)",
                args.brokers
            )
        } else {
            String::new()
        },
        if args.idle {
            "idle".to_string()
        } else {
            format!("{} msg/s", args.rate)
        },
        args.qos,
        args.payload,
        humantime::format_duration(keepalive(args)),
        humantime::format_duration(run_for)
    );
    println!(
        "CPU µs/msg = the processes' utime + stime (all threads, whole run) / messages \
         delivered; RSS/device = (VmHWM summed − K × VmHWM of a 1-device run) / (N − K) for \
         K processes; the 1-device \
         runs: harness {:.1} MiB, bare {:.1} MiB.",
        base_harness.peak_rss_kib as f64 / 1024.0,
        base_bare.peak_rss_kib as f64 / 1024.0
    );
    println!();
    if args.idle {
        print!("{}", table::markdown_idle(&rows, &timelines, run_for));
    } else {
        print!("{}", table::markdown(&rows));
        println!();
        print!("{}", table::markdown_bare(&rows));
    }
    Ok(())
}
