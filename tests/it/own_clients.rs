//! The harness's own clients never cause a loss, and every one of their
//! subscriptions is checked (METRICS.md: "The harness's own clients …
//! respect the broker's inflight and receive-maximum quotas"; Verdicts).
//!
//! Each test starts its own Mosquitto with the config it needs (an ACL, or
//! Mosquitto's defaults, which are what a user's broker runs) on a port of
//! its own, and runs a whole scenario against it as an external broker
//! (`tcp://127.0.0.1:PORT`), through the library runner like `run.rs`.

use mqtt_chaos::health::Cause;
use mqtt_chaos::report::Verdict;

use crate::support::{self, OwnMosquitto};

/// A listener that grants at most QoS 1: every QoS 2 subscription of the
/// observer (telemetry, the devices' status topics) is granted below what
/// it asked. (Mosquitto 2.0.11's `acl_file` cannot make it refuse one:
/// it grants every SUBSCRIBE, 2 for 2, and filters on delivery — checked
/// with `mosquitto_sub -d` against `topic deny status/#`.) The refusal
/// (0x80) path is the same check, unit-tested in `observer::suback`.
const MAX_QOS_1: &str = "max_qos 1\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downgraded_subscription_of_the_observer_makes_the_run_an_error() {
    let Some(binary) = support::mosquitto() else {
        return;
    };
    let m = OwnMosquitto::start(binary, MAX_QOS_1, &[]);
    let text = crate::run::scenario("downgraded", "", "")
        .replace("duration = \"12s\"", "duration = \"3s\"");
    let r = crate::run::run_unchecked(&text, &m.spec(), None, Default::default()).await;
    let report = &r.finished.report;
    assert_eq!(report.verdict, Verdict::Error, "{:?}", report.errors);
    let short: Vec<String> = report
        .errors
        .iter()
        .filter(|i| i.cause == Cause::SubscriptionRefused)
        .map(|i| {
            assert!(i.at_s.is_some_and(|t| t < 3.0), "{i}");
            assert!(i.message.contains("QoS 1, asked QoS 2"), "{i}");
            i.message.clone()
        })
        .collect();
    // One incident per filter asked at QoS 2: telemetry and three status
    // topics; the probe topic (asked QoS 1) is granted as asked.
    assert_eq!(short.len(), 4, "{:?}", report.errors);
    for f in [
        "tele/+",
        "status/dev-0000",
        "status/dev-0001",
        "status/dev-0002",
    ] {
        assert!(
            short.iter().any(|m| m.contains(&format!("{f:?}"))),
            "{f}: {short:?}"
        );
    }
    assert!(short.iter().all(|m| !m.contains("probe")), "{short:?}");
    let json = r.report();
    assert!(
        json["totals"]["delivered"].as_u64().unwrap() > 0,
        "{json:#}"
    );
    assert_eq!(json["verdict"], "error");
    assert_eq!(json["errors"][0]["cause"], "subscription_refused");
}

/// One device with [`BURST`] QoS 2 command streams at the same rate: all
/// of them fall due at the same instant, once.
const BURST: usize = 64;

fn burst_scenario() -> String {
    let mut s = String::from(
        r#"
name = "burst"
duration = "4s"
drain = "3s"
seed = 5
[profiles.p]
keepalive = "5s"
ping_timeout = "2s"
connect_timeout = "2s"
reconnect = { initial = "200ms", max = "1s", jitter = 0.0 }
clean_session = false
ack = { wait = true, timeout = "3s", retries = 0 }
[[fleets]]
name = "dev"
count = 1
profile = "p"
"#,
    );
    // First slot of every stream: 0.5 s + one period = 2.5 s; the next
    // (4.5 s) is after the 4 s of publishing.
    for i in 0..BURST {
        s.push_str(&format!(
            "[[fleets.commands]]\nname = \"c{i}\"\ntopic = \"cmd/{{device}}/c{i}\"\nqos = 2\nrate = 0.5\n"
        ));
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_qos2_commands_stays_within_mosquittos_default_quota() {
    let Some(binary) = support::mosquitto() else {
        return;
    };
    // Mosquitto's defaults: 20 QoS 2 messages in flight from one client.
    let m = OwnMosquitto::start(binary, "", &[]);
    let r = crate::run::run(&burst_scenario(), &m.spec()).await;
    let json = r.report();
    let c = &json["totals"]["commands"];
    assert_eq!(c["lost_after_ack"], 0, "{c:#}\n{}", m.log());
    assert_eq!(c["delivered"], BURST as u64, "{c:#}");
    assert_eq!(c["duplicates"], 0, "{c:#}");
    assert_eq!(
        r.finished.report.verdict,
        Verdict::Pass,
        "{:?}",
        r.finished.report.errors
    );
}
