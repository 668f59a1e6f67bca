//! The `mqtt-chaos` command line. Exit codes, one meaning each:
//! 0 ran and every SLO held; 1 ran and an SLO was breached; 2 bad usage or
//! bad scenario (nothing started); 3 the environment failed (broker
//! unreachable, fault backend failing, …); 130 interrupted by Ctrl-C (the
//! report of what was measured is still written). `compare`: 0 no
//! regression, 1 a later run regressed against the first, 2 bad usage (a
//! bad `--threshold`), a report that could not be read, or runs that cannot
//! be compared. `report` and `merge`: as `run` (by the verdict), 2 for a
//! directory that cannot be read or shards that do not belong together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mqtt_chaos::report::compare;
use mqtt_chaos::runner::{self, exit, RunOptions};

#[derive(Parser)]
#[command(
    name = "mqtt-chaos",
    version,
    about = "Chaos and soak tests for MQTT client configurations"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the fault proxies sit; each overrides the scenario's `[faults]`.
#[derive(clap::Args)]
struct ProxyArgs {
    /// HOST:PORT of the broker as Toxiproxy reaches it (e.g. emqx:1883 from
    /// a compose network); default: the broker's address.
    #[arg(long)]
    proxy_upstream: Option<String>,
    /// FIRST-LAST: ports a Toxiproxy in another network publishes under the
    /// same numbers on its API host (docker-compose.yml: 8666-8697).
    #[arg(long)]
    proxy_ports: Option<String>,
    /// An existing Docker network for toxiproxy-container to join.
    #[arg(long)]
    docker_network: Option<String>,
    /// Local addresses the embedded fault engine opens its upstream
    /// connections from, in turn: A,B,... or A-B (e.g. 127.0.0.2-127.0.0.9).
    /// Each adds one ephemeral port range towards the broker's address.
    #[arg(long, value_name = "ADDRESSES")]
    source_addresses: Option<String>,
}

impl From<ProxyArgs> for runner::ProxyOptions {
    fn from(a: ProxyArgs) -> Self {
        runner::ProxyOptions {
            upstream: a.proxy_upstream,
            ports: a.proxy_ports,
            network: a.docker_network,
            sources: a.source_addresses,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and write report.json, report.md, junit.xml and report.html.
    Run {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Where to write the report (default reports/<scenario>-<UTC time>/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// embedded (default), mosquitto, emqx[=IMAGE:TAG],
        /// mosquitto-container[=IMAGE:TAG], docker=CONTAINER@HOST:PORT, or
        /// tcp://HOST:PORT / mqtt://HOST:PORT.
        #[arg(long)]
        broker: Option<String>,
        /// embedded (default), toxiproxy=http://HOST:PORT, or
        /// toxiproxy-container[=IMAGE] (a Toxiproxy started in Docker for the run).
        #[arg(long)]
        faults: Option<String>,
        #[command(flatten)]
        proxy: ProxyArgs,
        /// Overrides the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Overrides the scenario's duration (e.g. 30s, 5m, 72h; at most 366 days).
        #[arg(long, value_parser = parse_run_duration)]
        duration: Option<Duration>,
        /// Print nothing but errors.
        #[arg(long, short)]
        quiet: bool,
        /// Also write every event of the run to this file (JSON lines).
        #[arg(long)]
        history: Option<PathBuf>,
        /// Run only the slice I/N of the fleet (0-based: 0/3, 1/3, 2/3), for
        /// a run split across processes or machines; `mqtt-chaos merge`
        /// folds the shards' directories into one run. Shard 0 applies the
        /// broker faults; the others follow them.
        /// `slot=K/N` counts from 1 (Docker Swarm's {{.Task.Slot}}); `{shard}`
        /// in --out becomes the index.
        #[arg(long, env = "MQTT_CHAOS_SHARD", value_parser = parse_shard)]
        shard: Option<mqtt_chaos::shard::Shard>,
        /// The common start instant of the shards of one run: Unix time in
        /// milliseconds, or +DURATION from now (e.g. +20s). Every shard's
        /// clock, schedule and faults start then.
        #[arg(long, env = "MQTT_CHAOS_START_AT", value_parser = parse_start_at)]
        start_at: Option<u64>,
        /// Split the fleet across N processes of this machine (each with its
        /// own open-file budget and core): this one runs shard 0/N and the
        /// broker, the others join it; their directories (shard-I in the
        /// run's) are merged into one report.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
        workers: u32,
    },
    /// Rebuild a run's report.json, report.md, junit.xml and report.html from
    /// its interval files alone (also for a run that was killed), for the
    /// whole run or a window.
    Report {
        /// The run's directory (holds run.json, intervals.jsonl, *.hlog).
        run_dir: PathBuf,
        /// Start of the window, on the run's clock (e.g. 10m, 24h).
        #[arg(long, value_parser = parse_duration, requires = "to")]
        from: Option<Duration>,
        /// End of the window (exclusive).
        #[arg(long, value_parser = parse_duration, requires = "from")]
        to: Option<Duration>,
    },
    /// Merge the run directories of the shards 0/N … N-1/N of one run
    /// (`run --shard I/N`) into one run directory, with the reports of the
    /// whole fleet; exit codes as `report` (2: shards that do not belong
    /// together, or a directory that cannot be read).
    Merge {
        /// The shards' run directories (any order; every index once).
        #[arg(required = true, num_args = 1..)]
        run_dirs: Vec<PathBuf>,
        /// Where to write the merged run (default: merged-<scenario>-<UTC
        /// start> beside the first shard's directory).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compare runs side by side (every figure of report.json) and flag
    /// regressions of each later run against the first; exit 1 when any
    /// regressed, 2 for bad usage, unreadable reports or runs that cannot be
    /// compared.
    Compare {
        /// Run directories (holding report.json) or report.json files; the
        /// first is the baseline.
        #[arg(required = true, num_args = 1..)]
        runs: Vec<PathBuf>,
        /// md: a Markdown job summary; json: every figure and regression
        /// (docs/compare.schema.json).
        #[arg(long, value_enum, default_value_t = CompareFormat::Md)]
        format: CompareFormat,
        /// FIGURE=LIMIT, repeatable: how much worse FIGURE (or a group:
        /// e2e_latency, commands, reason_codes; after a profile's name, in
        /// that profile only: weak.lost_qos0) may get: N% (relative), +N
        /// (absolute; durations with a unit, +250ms), 0 (not at all), off.
        /// Unnamed figures: counts and rates 10 % (or at all from 0),
        /// durations 20 % and 20 ms.
        #[arg(long = "threshold", value_name = "FIGURE=LIMIT")]
        thresholds: Vec<mqtt_chaos::report::compare::Threshold>,
        /// Compare runs of different scenarios, profiles, fleet sizes or
        /// min_outage (refused otherwise), with a warning in the output.
        #[arg(long)]
        allow_different_scenarios: bool,
    },
    /// Check a scenario without running it (and lint its profiles).
    Validate {
        scenario: PathBuf,
        /// Check it against this broker's capabilities too.
        #[arg(long)]
        broker: Option<String>,
        /// And this fault backend.
        #[arg(long)]
        faults: Option<String>,
        #[command(flatten)]
        proxy: ProxyArgs,
    },
    /// Serve a Toxiproxy-compatible HTTP API over the embedded fault engine
    /// (a stand-in for Toxiproxy where the real one cannot run). Prints
    /// `listening on ADDR` once the API accepts connections (port 0 picks a
    /// free port).
    ProxyServer {
        /// Where the API listens (Toxiproxy's default port is 8474).
        #[arg(long, default_value = "127.0.0.1:8474")]
        listen: SocketAddr,
        /// Seeds toxicity rolls and jitter.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Serve the proxies' byte counters on /metrics (Prometheus), as
        /// Toxiproxy's -proxy-metrics.
        #[arg(long)]
        proxy_metrics: bool,
        /// Behave like a real Toxiproxy 2.12 when a proxy is disabled or
        /// deleted: its connections are closed first, and the answer comes
        /// this long after (e.g. 5ms), so a fault's effects precede its
        /// confirmation by a wide margin.
        #[arg(long, value_parser = parse_duration)]
        answer_delay: Option<Duration>,
        /// Local addresses to open upstream connections from, in turn
        /// (A,B,... or A-B), as `run --source-addresses`.
        #[arg(long, value_name = "ADDRESSES")]
        source_addresses: Option<String>,
    },
    /// Run the embedded broker (rumqttd) in this process; used by the harness.
    #[command(hide = true)]
    BrokerServe {
        #[arg(long)]
        listen: SocketAddr,
    },
}

/// The tokio runtime of `run` and `proxy-server`.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("cannot start the runtime: {e}");
        ExitCode::from(exit::ENVIRONMENT)
    })
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    mqtt_chaos::scenario::duration::parse(s)
}

fn parse_shard(s: &str) -> Result<mqtt_chaos::shard::Shard, String> {
    mqtt_chaos::shard::Shard::parse(s)
}

fn parse_start_at(s: &str) -> Result<u64, String> {
    mqtt_chaos::shard::parse_start_at(s, std::time::SystemTime::now())
}

fn parse_run_duration(s: &str) -> Result<Duration, String> {
    mqtt_chaos::limits::parse_run_duration(s)
}

/// The exit code of a report's verdict: 0 pass, 1 fail, 3 error.
fn verdict_code(v: mqtt_chaos::report::Verdict) -> u8 {
    match v {
        mqtt_chaos::report::Verdict::Pass => exit::PASS,
        mqtt_chaos::report::Verdict::Fail => exit::BREACH,
        mqtt_chaos::report::Verdict::Error => exit::ENVIRONMENT,
    }
}

/// What `compare` writes on stdout.
#[derive(Clone, Copy, clap::ValueEnum)]
enum CompareFormat {
    Md,
    Json,
}

/// `compare`: 0 no regression, 1 a regression, 2 an unreadable report or
/// runs that cannot be compared. Warnings go to stderr too.
fn compare_runs(paths: &[PathBuf], format: CompareFormat, opts: &compare::Options) -> ExitCode {
    let mut runs = Vec::with_capacity(paths.len());
    for p in paths {
        match compare::load(p) {
            Ok(r) => runs.push((p.display().to_string(), r)),
            Err(e) => {
                eprintln!("compare: {e}");
                return ExitCode::from(exit::USAGE);
            }
        }
    }
    let c = match compare::compare(&runs, opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("compare: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    for w in &c.warnings {
        eprintln!("compare: warning: {}", w.message);
    }
    match format {
        CompareFormat::Md => print!("{}", compare::markdown(&c)),
        CompareFormat::Json => print!("{}", compare::json(&c)),
    }
    ExitCode::from(if c.regressions.is_empty() {
        exit::PASS
    } else {
        exit::BREACH
    })
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MQTT_CHAOS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Validate {
            scenario,
            broker,
            faults,
            proxy,
        } => {
            let opts = RunOptions {
                scenario: scenario.clone(),
                broker,
                faults,
                quiet: true,
                proxy: proxy.into(),
                ..RunOptions::default()
            };
            match runner::prepare(&opts) {
                Ok((plan, _, _, _)) => {
                    for l in mqtt_chaos::scenario::lint(&plan.scenario) {
                        println!(
                            "lint: profile {}: {} (shows in {})",
                            l.profile, l.message, l.figure
                        );
                    }
                    println!(
                        "{}: valid: {} devices in {} groups, {} faults, {} SLOs",
                        scenario.display(),
                        plan.devices.len(),
                        plan.groups.len(),
                        plan.faults.len(),
                        plan.scenario.slo.len()
                    );
                    println!(
                        "{}: size: {}",
                        scenario.display(),
                        mqtt_chaos::limits::RunSize::of(&plan.scenario)
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        Command::Run {
            scenario,
            out,
            broker,
            faults,
            proxy,
            seed,
            duration,
            quiet,
            history,
            shard,
            start_at,
            workers,
        } => {
            let exe = match std::env::current_exe() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("cannot find this program's own path: {e}");
                    return ExitCode::from(exit::ENVIRONMENT);
                }
            };
            let out = match (out, shard) {
                (Some(o), Some(s)) => Some(mqtt_chaos::shard::out_dir(&o, s)),
                (o, _) => o,
            };
            let opts = RunOptions {
                scenario,
                out,
                broker,
                faults,
                seed,
                duration,
                quiet,
                history,
                exe,
                proxy: proxy.into(),
                shard,
                start_at_unix_ms: start_at,
                workers,
            };
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match rt.block_on(runner::run(&opts)) {
                Ok(done) => {
                    if !quiet {
                        println!("{}", mqtt_chaos::report::summary(&done.report));
                        println!("report: {}", done.dir.join("report.json").display());
                        println!("        {}", done.dir.join("report.md").display());
                        println!("        {}", done.dir.join("junit.xml").display());
                        println!("        {}", done.dir.join("report.html").display());
                    }
                    for e in &done.report.errors {
                        eprintln!("error: {e}");
                    }
                    if done.interrupted {
                        eprintln!("interrupted: the report holds what was measured until then");
                    }
                    ExitCode::from(done.exit_code())
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        Command::Report { run_dir, from, to } => {
            let window = from.zip(to);
            let (report, series) = match mqtt_chaos::report::rebuild_with_series(&run_dir, window) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(exit::USAGE);
                }
            };
            // The whole run's report goes where the run put it; a window's
            // beside it, named after the window.
            let out = match window {
                None => run_dir.clone(),
                Some((f, t)) => run_dir.join(format!("window-{}s-{}s", f.as_secs(), t.as_secs())),
            };
            if let Err(e) = std::fs::create_dir_all(&out)
                .map_err(|e| format!("{}: {e}", out.display()))
                .and_then(|()| {
                    runner::write_outputs(&report, &series, &out).map_err(|e| e.to_string())
                })
            {
                eprintln!("{e}");
                return ExitCode::from(exit::ENVIRONMENT);
            }
            println!("{}", mqtt_chaos::report::summary(&report));
            println!("report: {}", out.join("report.json").display());
            for e in &report.errors {
                eprintln!("error: {e}");
            }
            ExitCode::from(verdict_code(report.verdict))
        }
        Command::Merge { run_dirs, out } => {
            match mqtt_chaos::merge::merge(&run_dirs, out.as_deref()) {
                Ok(m) => {
                    println!("{}", mqtt_chaos::report::summary(&m.report));
                    println!("merged {} shards: {}", run_dirs.len(), m.dir.display());
                    println!("report: {}", m.dir.join("report.json").display());
                    for e in &m.report.errors {
                        eprintln!("error: {e}");
                    }
                    ExitCode::from(verdict_code(m.report.verdict))
                }
                Err(e) => {
                    eprintln!("merge: {e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        Command::Compare {
            runs,
            format,
            thresholds,
            allow_different_scenarios,
        } => compare_runs(
            &runs,
            format,
            &compare::Options {
                thresholds: compare::Thresholds(thresholds),
                allow_different_scenarios,
            },
        ),
        Command::ProxyServer {
            listen,
            seed,
            proxy_metrics,
            answer_delay,
            source_addresses,
        } => {
            use mqtt_chaos::fault::engine::{api::ApiServer, Engine};
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            let sources = match source_addresses.as_deref().map(runner::usable_sources) {
                None => Vec::new(),
                Some(Ok(s)) => s,
                Some(Err(e)) => {
                    eprintln!("proxy-server: --source-addresses: {e}");
                    return ExitCode::from(exit::USAGE);
                }
            };
            rt.block_on(async {
                let server =
                    match ApiServer::bind(Engine::with_sources(seed, sources), listen).await {
                        Ok(s) => s.proxy_metrics(proxy_metrics).answer_delay(answer_delay),
                        Err(e) => {
                            eprintln!("proxy-server: {e}");
                            return ExitCode::from(exit::ENVIRONMENT);
                        }
                    };
                println!("listening on {}", server.local_addr());
                let _ = std::io::Write::flush(&mut std::io::stdout());
                server.serve().await;
                ExitCode::SUCCESS
            })
        }
        Command::BrokerServe { listen } => match mqtt_chaos::broker::embedded::serve(listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("broker-serve: {e}");
                ExitCode::from(exit::ENVIRONMENT)
            }
        },
    }
}
