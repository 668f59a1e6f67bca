//! What the bench reads from /proc: a process's CPU time and resident
//! memory, and the TCP connections established to the broker. The parsers
//! are pure (text in, figures out); the readers are one file read each.

use std::time::Duration;

/// Linux reports utime and stime in clock ticks of USER_HZ, which is 100 on
/// every architecture this runs on (it is not the kernel's HZ).
const USER_HZ: u64 = 100;

/// CPU time (user + system, all threads) from the text of `/proc/PID/stat`.
/// The command name in parentheses may hold spaces, so fields are counted
/// after the last `)`: utime and stime are fields 14 and 15 of the line.
pub fn parse_cpu(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

/// A `Vm…:` field of `/proc/PID/status`, in KiB (`VmHWM`, `VmRSS`).
pub fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        v.split_whitespace().next()?.parse().ok()
    })
}

/// Established TCP connections whose local port is `port`, from the text of
/// `/proc/net/tcp`: on the broker's side, one per connected client.
pub fn parse_established(tcp: &str, port: u16) -> usize {
    let want = format!(":{port:04X}");
    tcp.lines()
        .skip(1)
        .filter(|l| {
            let mut f = l.split_whitespace();
            let local = f.nth(1).unwrap_or("");
            let state = f.nth(1).unwrap_or("");
            local.ends_with(&want) && state == "01"
        })
        .count()
}

/// CPU time of process `pid` so far (a zombie's too: its final figure).
pub fn cpu(pid: i32) -> Option<Duration> {
    parse_cpu(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Peak resident set (VmHWM) of a live process, KiB.
pub fn peak_rss_kib(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&s, "VmHWM")
}

/// Resident set now (VmRSS) of a live process, KiB.
pub fn rss_kib(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&s, "VmRSS")
}

/// Connections established to the broker listening on 127.0.0.1:`port`.
pub fn established(port: u16) -> usize {
    std::fs::read_to_string("/proc/net/tcp")
        .map(|t| parse_established(&t, port))
        .unwrap_or(0)
}
