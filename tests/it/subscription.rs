//! Subscription QoS below the publish QoS: a device subscribing to its
//! commands at QoS 1 while the backend publishes them at QoS 2, and the
//! collector reading QoS 2 telemetry at QoS 1. The broker delivers every
//! message at the lower QoS, so with no fault every delivered message is
//! `downgraded`, exactly, and none is lost. Real binary, real Mosquitto.

use std::process::Command;

use crate::support::{self, report, said, OwnMosquitto};

const SCENARIO: &str = r#"
name = "downgrade"
duration = "6s"
drain = "3s"
seed = 5
interval = "3s"

[profiles.p]
keepalive = "5s"
ping_timeout = "2s"
connect_timeout = "3s"
reconnect = { initial = "200ms", max = "1s", jitter = 0.0 }
clean_session = false
ack = { wait = true, timeout = "3s", retries = 3 }
subscribe_qos = { control = 1 }

[[fleets]]
name = "a"
count = 3
profile = "p"
streams = [{ name = "telemetry", topic = "tele/{device}", qos = 2, rate = 5.0, collector_qos = 1 }]
commands = [{ name = "control", topic = "cmd/{device}", qos = 2, rate = 2.0 }]

[slo]
lost_after_ack = "= 0"
"p.commands.lost_after_ack" = "= 0"
"#;

#[test]
fn messages_read_below_their_qos_are_all_downgraded_and_none_lost() {
    let Some(binary) = support::mosquitto() else {
        return;
    };
    let m = OwnMosquitto::start(binary, "", &[]);
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let out = dir.path().join("run");
    let o = Command::new(support::bin())
        .arg("run")
        .arg(&scenario)
        .args(["--broker", &m.spec(), "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    let r = report(&out);
    assert_eq!(r["errors"], serde_json::json!([]), "{r}");
    // Telemetry figures sit at the top of a population, commands under
    // `commands`.
    for (label, f) in [
        ("telemetry", &r["totals"]),
        ("commands", &r["totals"]["commands"]),
    ] {
        let delivered = f["delivered"].as_u64().unwrap();
        assert!(delivered > 0, "{label}: {f}");
        assert_eq!(f["sent"], f["delivered"], "{label}: {f}");
        assert_eq!(f["downgraded"].as_u64(), Some(delivered), "{label}: {f}");
        assert_eq!(f["lost_after_ack"], 0, "{label}: {f}");
    }
    // validate says so before the run, naming the figure.
    let o = Command::new(support::bin())
        .arg("validate")
        .arg(&scenario)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("lint: profile p: the devices subscribe to control at QoS 1, below the QoS 2 it is published at")
            && out.contains("(shows in commands.downgraded)"),
        "{out}"
    );
}
