//! The rows the bench prints, the project's goals they are checked
//! against, and the Markdown (pure: figures in, text out).

use std::time::Duration;

/// The project's capacity goals (README, "Fleet capacity").
pub const GOAL_CPU_RATIO: f64 = 1.5;
pub const GOAL_RSS_KIB_PER_DEVICE: f64 = 60.0;
pub const GOAL_P99: Duration = Duration::from_millis(50);

/// What one fleet's run cost and counted.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub cpu: Duration,
    pub peak_rss_kib: u64,
    pub mosquitto_cpu: Duration,
    pub sent: u64,
    pub delivered: u64,
    pub e2e_p99_us: Option<u64>,
    /// Past the connection ramp: from `STEADY_FROM` to the end of the
    /// schedule.
    pub steady_p99_us: Option<u64>,
    /// The harness's verdict and incidents (none for the bare fleet).
    pub verdict: Option<String>,
    pub incidents: Vec<String>,
}

impl Measured {
    /// CPU µs per delivered message.
    pub fn cpu_us_per_msg(&self) -> Option<f64> {
        per_msg(self.cpu, self.delivered)
    }
    pub fn mosquitto_us_per_msg(&self) -> Option<f64> {
        per_msg(self.mosquitto_cpu, self.delivered)
    }
}

fn per_msg(cpu: Duration, delivered: u64) -> Option<f64> {
    (delivered > 0).then(|| cpu.as_secs_f64() * 1e6 / delivered as f64)
}

/// RSS per device of N devices in K processes: (the processes' VmHWM
/// summed − K × VmHWM with 1 device) / (N − K), KiB; the 1-device run
/// stands for a process with no devices.
pub fn rss_per_device_kib(peak_kib: u64, one_device_kib: u64, n: u32, procs: u32) -> Option<f64> {
    (n > procs).then(|| {
        (peak_kib as f64 - f64::from(procs) * one_device_kib as f64) / f64::from(n - procs)
    })
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub devices: u32,
    pub harness: Measured,
    pub bare: Measured,
    pub harness_rss_per_device: Option<f64>,
    pub bare_rss_per_device: Option<f64>,
}

impl Row {
    pub fn ratio(&self) -> Option<f64> {
        Some(self.harness.cpu_us_per_msg()? / self.bare.cpu_us_per_msg()?)
    }

    /// The goals this row misses, by name; empty: all met.
    pub fn missed(&self) -> Vec<String> {
        let mut m = Vec::new();
        if let Some(v) = self.harness.verdict.as_deref().filter(|v| *v != "pass") {
            let why = if self.harness.incidents.is_empty() {
                String::new()
            } else {
                format!(": {}", self.harness.incidents.join(", "))
            };
            m.push(format!("verdict {v}{why}"));
        }
        if self.ratio().is_none_or(|r| r > GOAL_CPU_RATIO) {
            m.push(format!("CPU > {GOAL_CPU_RATIO} ×"));
        }
        if self
            .harness_rss_per_device
            .is_none_or(|k| k > GOAL_RSS_KIB_PER_DEVICE)
        {
            m.push(format!("RSS > {GOAL_RSS_KIB_PER_DEVICE} KiB"));
        }
        if self.harness.sent == 0 || self.harness.delivered != self.harness.sent {
            m.push("delivered ≠ sent".into());
        }
        if self
            .harness
            .steady_p99_us
            .is_none_or(|p| p as u128 >= GOAL_P99.as_micros())
        {
            m.push(format!("steady p99 ≥ {} ms", GOAL_P99.as_millis()));
        }
        m
    }
}

fn num(x: Option<f64>, decimals: usize) -> String {
    x.map_or("—".into(), |v| format!("{v:.decimals$}"))
}

fn ms(us: Option<u64>) -> String {
    us.map_or("—".into(), |u| format!("{:.1} ms", u as f64 / 1000.0))
}

/// Connected devices over an idle phase: (seconds since its start, count).
pub type Timeline = Vec<(u64, usize)>;

/// When the whole fleet was first connected (seconds into the phase), and
/// the fewest connected from then over 90 % of the hold (the rest is the
/// end of the hold and the teardown, when devices leave on purpose).
/// `None`: never all connected.
pub fn held(t: &Timeline, devices: usize, hold: Duration) -> Option<(u64, usize)> {
    let (from, _) = *t.iter().find(|(_, c)| *c >= devices)?;
    let until = from + hold.as_secs() * 9 / 10;
    let fewest = t
        .iter()
        .filter(|(at, _)| (from..=until).contains(at))
        .map(|(_, c)| *c)
        .min()?;
    Some((from, fewest))
}

/// The idle tables: per size, what holding the fleet cost each process,
/// then the connected devices over time, side by side.
pub fn markdown_idle(
    rows: &[Row],
    timelines: &[(u32, Timeline, Timeline)],
    hold: Duration,
) -> String {
    let mut s = String::from(
        "| devices | fleet | all connected at | held (min over 90 % of the hold from then) | RSS/device | CPU s | Mosquitto CPU s |\n\
         | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for (r, (_, bare_t, harness_t)) in rows.iter().zip(timelines) {
        for (name, m, rss, t) in [
            ("harness", &r.harness, r.harness_rss_per_device, harness_t),
            ("bare", &r.bare, r.bare_rss_per_device, bare_t),
        ] {
            let (at, held) = match held(t, r.devices as usize, hold) {
                Some((at, c)) => (format!("{at} s"), format!("{c}/{}", r.devices)),
                None => {
                    let most = t.iter().map(|(_, c)| *c).max().unwrap_or(0);
                    ("never".into(), format!("at most {most}/{}", r.devices))
                }
            };
            s.push_str(&format!(
                "| {} | {name} | {at} | {held} | {} KiB | {:.1} | {:.1} |\n",
                r.devices,
                num(rss, 1),
                m.cpu.as_secs_f64(),
                m.mosquitto_cpu.as_secs_f64()
            ));
        }
    }
    for (n, bare_t, harness_t) in timelines {
        s.push_str(&format!(
            "\nConnected devices over time, {n} devices (TCP connections established \
             at the broker, minus each fleet's own clients):\n\n\
             | t | bare | harness |\n| ---: | ---: | ---: |\n"
        ));
        for i in 0..bare_t.len().max(harness_t.len()) {
            let cell = |t: &Timeline| t.get(i).map_or("—".into(), |(_, c)| c.to_string());
            let at = bare_t.get(i).or(harness_t.get(i)).map_or(0, |(t, _)| *t);
            s.push_str(&format!(
                "| {at} s | {} | {} |\n",
                cell(bare_t),
                cell(harness_t)
            ));
        }
    }
    s
}

/// The capacity table, in Markdown.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| devices | harness CPU µs/msg | bare µs/msg | ratio | Mosquitto µs/msg (harness run) \
         | harness RSS/device | bare RSS/device | delivered/sent | e2e p99 | steady p99 | result |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    for r in rows {
        let missed = r.missed();
        let result = if missed.is_empty() {
            "goals met".to_string()
        } else {
            format!("missed: {}", missed.join("; "))
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} KiB | {} KiB | {}/{} | {} | {} | {} |\n",
            r.devices,
            num(r.harness.cpu_us_per_msg(), 1),
            num(r.bare.cpu_us_per_msg(), 1),
            num(r.ratio(), 2),
            num(r.harness.mosquitto_us_per_msg(), 1),
            num(r.harness_rss_per_device, 1),
            num(r.bare_rss_per_device, 1),
            r.harness.delivered,
            r.harness.sent,
            ms(r.harness.e2e_p99_us),
            ms(r.harness.steady_p99_us),
            result
        ));
    }
    s
}

/// The bare fleet's own counts beside it: the baseline's health.
pub fn markdown_bare(rows: &[Row]) -> String {
    let mut s = String::from(
        "| devices | bare delivered/sent | bare e2e p99 | bare steady p99 | Mosquitto µs/msg (bare run) \
         | harness peak RSS | bare peak RSS |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {}/{} | {} | {} | {} | {:.1} MiB | {:.1} MiB |\n",
            r.devices,
            r.bare.delivered,
            r.bare.sent,
            ms(r.bare.e2e_p99_us),
            ms(r.bare.steady_p99_us),
            num(r.bare.mosquitto_us_per_msg(), 1),
            r.harness.peak_rss_kib as f64 / 1024.0,
            r.bare.peak_rss_kib as f64 / 1024.0,
        ));
    }
    s
}
