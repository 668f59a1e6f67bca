//! Lints: client configurations that are legal but known to go wrong.
//!
//! Pure and never fatal: each lint names the profile, and the figure of
//! METRICS.md where a run will show the mistake, with an explanation.

use std::time::Duration;

use serde::Serialize;

use super::duration::format as human;
use super::{ClientIdStrategy, FaultKind, Fleet, Scenario};

/// A static warning about a profile: a known client-configuration mistake,
/// and the figure of METRICS.md where a run will show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lint {
    pub profile: String,
    pub figure: String,
    pub message: String,
}

/// Known client-configuration mistakes, per profile, each naming the figure
/// a run will show it in. Never fatal.
pub fn lint(s: &Scenario) -> Vec<Lint> {
    let mut out = Vec::new();
    for (name, p) in &s.profiles {
        let fleets: Vec<&Fleet> = s.fleets.iter().filter(|f| &f.profile == name).collect();
        let mut push = |figure: &str, message: String| {
            out.push(Lint {
                profile: name.clone(),
                figure: figure.into(),
                message,
            })
        };
        let qos_of = |stream: &str, fleet_qos: u8| p.qos.get(stream).copied().unwrap_or(fleet_qos);
        let streams: Vec<(&str, u8)> = fleets
            .iter()
            .flat_map(|f| {
                f.streams
                    .iter()
                    .map(|x| (x.name.as_str(), qos_of(&x.name, x.qos)))
            })
            .collect();
        let commands: Vec<(&str, u8)> = fleets
            .iter()
            .flat_map(|f| {
                f.commands
                    .iter()
                    .map(|x| (x.name.as_str(), qos_of(&x.name, x.qos)))
            })
            .collect();
        let devices: u64 = fleets.iter().map(|f| u64::from(f.count)).sum();
        let groups: Vec<&str> = fleets.iter().map(|f| f.group()).collect();

        for (name, qos) in &commands {
            if let Some(sub) = p.subscribe_qos.get(*name).filter(|s| *s < qos) {
                push(
                    "commands.downgraded",
                    format!(
                        "the devices subscribe to {name} at QoS {sub}, below the QoS {qos} it is published at: the broker delivers it at QoS {sub}{}",
                        if *sub == 0 {
                            ", and a command in flight when a link breaks is lost for good (commands.lost_after_ack)"
                        } else {
                            ""
                        }
                    ),
                );
            }
        }
        match (p.keepalive, p.ping_timeout) {
            (None, _) => push(
                "zombie_time",
                "keepalive is \"off\": the client sends no PINGREQ, so a blackholed or half-open \
                 link is never noticed (zombie_time lasts the whole outage, counted in \
                 zombie_undetected) and the broker never drops a silent client"
                    .into(),
            ),
            (Some(k), None) => push(
                "zombie_time",
                format!(
                    "no ping_timeout: rumqttc notices a missing PINGRESP only at its next \
                     keepalive tick, so a blackholed link can go unnoticed for up to 2 × keepalive \
                     ({}) (zombie_time; zombie_undetected when the outage heals first)",
                    human(k.saturating_mul(2))
                ),
            ),
            _ => {}
        }
        if let (Some(k), Some(longest)) = (p.keepalive, longest_blackhole(s, &groups)) {
            let notice = k.saturating_add(p.ping_timeout.unwrap_or(k));
            if notice >= longest {
                push(
                    "zombie_undetected",
                    format!(
                        "keepalive {} with {} is longer than the timeline's longest blackhole \
                         ({}): the client cannot notice it before it heals (zombie_undetected), \
                         and the broker drops the silent client only after 1.5 × keepalive ({})",
                        human(k),
                        match p.ping_timeout {
                            Some(t) => format!("ping_timeout {}", human(t)),
                            None => "no ping_timeout".to_string(),
                        },
                        human(longest),
                        human(k.saturating_mul(3) / 2)
                    ),
                );
            }
        }
        let qos0: Vec<&str> = streams
            .iter()
            .filter(|(_, q)| *q == 0)
            .map(|(n, _)| *n)
            .collect();
        if !qos0.is_empty() {
            push(
                "lost_qos0",
                format!(
                    "telemetry at QoS 0 ({}): whatever is in flight or queued when the link drops \
                     is lost without trace (lost_qos0)",
                    dedup_join(&qos0)
                ),
            );
        }
        if p.protocol == 5 {
            use super::SessionExpiry;
            let expiry = p
                .session_expiry
                .unwrap_or(SessionExpiry::After(Duration::ZERO));
            if !p.clean_session && expiry == SessionExpiry::After(Duration::ZERO) {
                push(
                    "session_present",
                    "protocol 5 with clean_session = false but no session_expiry: MQTT 5's \
                     session expiry is 0 then, so the session ends with the connection and no \
                     reconnect resumes it (session_present stays 0); set session_expiry"
                        .into(),
                );
            }
            if let Some(delay) = p.will.as_ref().and_then(|w| w.delay) {
                // The broker publishes the will after the delay or when the
                // session ends, whichever comes first (MQTT 5, 3.1.2.5).
                match expiry.duration() {
                    Some(e) if e.is_zero() => push(
                        "false_offline",
                        format!(
                            "will delay {} with session_expiry 0: the session ends with the \
                             connection, so the broker publishes the will at once and every \
                             blip is still reported offline (false_offline); set a \
                             session_expiry of at least the delay",
                            human(delay)
                        ),
                    ),
                    Some(e) if e < delay => push(
                        "false_offline",
                        format!(
                            "will delay {} is longer than session_expiry {}: the will fires \
                             when the session ends, after {} (false_offline for blips longer \
                             than that)",
                            human(delay),
                            human(e),
                            human(e)
                        ),
                    ),
                    _ => {}
                }
                if p.clean_session {
                    push(
                        "false_offline",
                        format!(
                            "will delay {} with clean_session = true: a reconnect with clean \
                             start ends the waiting session, and the broker publishes its will \
                             then, so a blip is reported offline just as the device is back \
                             (false_offline); set clean_session = false",
                            human(delay)
                        ),
                    );
                }
            }
        }
        if !p.ack.wait {
            push(
                "silent_loss",
                "ack.wait = false: the application counts a message as sent when it hands it to \
                 the client, so messages lost after that are never reported to it (silent_loss)"
                    .into(),
            );
        }
        let all_flows = streams.iter().chain(&commands);
        if all_flows.clone().next().is_some() && all_flows.clone().all(|(_, q)| *q == 2) {
            push(
                "ack_latency",
                "every stream and command is QoS 2: four packets and a second round trip per \
                 message cost throughput and latency (ack_latency, e2e_latency); QoS 1 with \
                 duplicate-tolerant handling is usually enough"
                    .into(),
            );
        }
        let qos2: Vec<&str> = streams
            .iter()
            .filter(|(_, q)| *q == 2)
            .map(|(n, _)| *n)
            .collect();
        if !qos2.is_empty() && p.ack.wait && p.ack.retries > 0 {
            push(
                "duplicates",
                format!(
                    "telemetry at QoS 2 ({}) with {} ack retries: exactly-once holds only within \
                     one MQTT exchange; a republish after an ack timeout is a new message to the \
                     broker, so an outage longer than ack.timeout ({}) delivers duplicates \
                     (a violation at QoS 2)",
                    dedup_join(&qos2),
                    p.ack.retries,
                    human(p.ack.timeout)
                ),
            );
        }
        match &p.will {
            None => push(
                "missed_offline",
                "no Last Will: a device that dies is never reported offline on its status topic \
                 (missed_offline)"
                    .into(),
            ),
            Some(w) => {
                if w.qos == 0 {
                    push(
                        "missed_offline",
                        "the will is QoS 0: the broker may drop it on the way to a busy or \
                         reconnecting observer, and the death goes unreported (missed_offline)"
                            .into(),
                    );
                }
                if !w.retain {
                    push(
                        "missed_offline",
                        "the will is not retained: an observer that (re)subscribes after it fired \
                         never learns the device is offline (missed_offline)"
                            .into(),
                    );
                }
                if !p.online_republish {
                    push(
                        "stale_offline_time",
                        "`online` is not republished after a connect: the `offline` the will left \
                         on the status topic stays there after the device is back \
                         (stale_offline_time)"
                            .into(),
                    );
                }
            }
        }
        if p.clean_session && !p.resubscribe && !commands.is_empty() {
            push(
                "commands.lost_after_ack",
                format!(
                    "clean_session = true and resubscribe = false: after a reconnect the broker \
                     holds no subscription for the device, so commands ({}) are acked to the \
                     backend and dropped (lost_after_ack of commands)",
                    dedup_join(&commands.iter().map(|(n, _)| *n).collect::<Vec<_>>())
                ),
            );
        }
        if let ClientIdStrategy::Fixed(id) = &p.client_id {
            if devices > 1 {
                push(
                    "flaps",
                    format!(
                        "client_id is fixed to \"{id}\" for {devices} devices: each connect takes \
                         over another device's connection, so they knock each other off in a loop \
                         (flaps, false_offline)"
                    ),
                );
            }
            if !p.clean_session {
                push(
                    "flaps",
                    format!(
                        "clean_session = false with the fixed client id \"{id}\": every device \
                         resumes the same broker session and receives the others' queued messages \
                         (flaps, duplicates)"
                    ),
                );
            }
        }
        match &p.reconnect {
            None => push(
                "reconnect_after_heal",
                "reconnect is \"off\": a device stays down after its first connection loss, so \
                 it never comes back after a heal (reconnect_after_heal, first_attempt_delay)"
                    .into(),
            ),
            Some(r) => {
                if let Some(longest) = longest_outage(s, &groups) {
                    if r.max > longest.saturating_mul(3) {
                        push(
                            "first_attempt_delay",
                            format!(
                                "reconnect max {} is far above the longest outage here ({}): \
                                 after a longer outage a device may wait up to {} after the link \
                                 is back before it tries again (first_attempt_delay, \
                                 reconnect_after_heal)",
                                human(r.max),
                                human(longest),
                                human(r.max)
                            ),
                        );
                    }
                }
            }
        }
        if let Some(t) = p.ping_timeout {
            if let Some(lat) = largest_latency(s, &groups) {
                if lat.saturating_mul(2) >= t {
                    push(
                        "false_offline",
                        format!(
                            "ping_timeout {} is not above the round trip under the timeline's \
                             latency ({} each way): pings time out on a slow but working link and \
                             the client drops a healthy connection (false_offline, flaps)",
                            human(t),
                            human(lat)
                        ),
                    );
                }
            }
        }
    }
    out
}

fn dedup_join(names: &[&str]) -> String {
    let mut v = names.to_vec();
    v.sort_unstable();
    v.dedup();
    v.join(", ")
}

fn hits(target: Option<&str>, groups: &[&str]) -> bool {
    target.is_none_or(|t| groups.contains(&t))
}

/// The longest time the timeline keeps the profile's groups from the broker.
fn longest_outage(s: &Scenario, groups: &[&str]) -> Option<Duration> {
    s.timeline
        .iter()
        .filter(|f| hits(f.target.as_deref(), groups) || f.kind.is_broker_fault())
        .filter_map(|f| match &f.kind {
            FaultKind::LinkDown
            | FaultKind::Blackhole { .. }
            | FaultKind::HalfOpen
            | FaultKind::Cut
            | FaultKind::ResetPeer { .. }
            | FaultKind::BrokerRestart
            | FaultKind::BrokerKill
            | FaultKind::BrokerPause
            | FaultKind::BrokerPartition => f.duration,
            FaultKind::Flapping { down, .. } => Some(*down),
            _ => None,
        })
        .filter(|d| !d.is_zero())
        .max()
}

/// The longest blackhole-like fault (bytes dropped, TCP open) on the groups.
fn longest_blackhole(s: &Scenario, groups: &[&str]) -> Option<Duration> {
    s.timeline
        .iter()
        .filter(|f| hits(f.target.as_deref(), groups) || f.kind.is_broker_fault())
        .filter_map(|f| match &f.kind {
            FaultKind::Blackhole { toxicity, .. } if toxicity.is_none_or(|t| t >= 1.0) => {
                f.duration
            }
            FaultKind::HalfOpen | FaultKind::Cut | FaultKind::BrokerPause => f.duration,
            _ => None,
        })
        .filter(|d| !d.is_zero())
        .max()
}

/// The largest one-way latency (with jitter) the timeline adds to the groups.
fn largest_latency(s: &Scenario, groups: &[&str]) -> Option<Duration> {
    s.timeline
        .iter()
        .filter(|f| hits(f.target.as_deref(), groups))
        .filter_map(|f| match &f.kind {
            FaultKind::Latency {
                latency, jitter, ..
            } => Some(latency.saturating_add(*jitter)),
            _ => None,
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::validate::tests::{base, fault, ms, secs};
    use crate::scenario::{Reconnect, StreamSel, Will};

    /// The lints of `profile`; each message one line of prose (no line
    /// break or run of spaces left by a string continued without `\`).
    fn lints_of(s: &Scenario, profile: &str) -> Vec<(String, String)> {
        let l: Vec<(String, String)> = lint(s)
            .into_iter()
            .filter(|l| l.profile == profile)
            .map(|l| (l.figure, l.message))
            .collect();
        for (_, m) in &l {
            assert!(!m.contains("  ") && !m.contains('\n'), "{m:?}");
        }
        l
    }

    #[track_caller]
    fn only_lint(s: &Scenario, profile: &str, figure: &str, needle: &str) {
        let l = lints_of(s, profile);
        assert_eq!(l.len(), 1, "{l:#?}");
        assert_eq!(l[0].0, figure, "{l:#?}");
        assert!(
            l[0].1.contains(needle),
            "{:?} does not say {needle:?}",
            l[0].1
        );
    }

    #[test]
    fn a_careful_profile_has_no_lints() {
        assert_eq!(lint(&base()), vec![]);
    }

    #[test]
    fn subscribing_to_a_command_below_its_qos_lints_downgraded() {
        let mut s = base();
        let c = s.fleets[0].commands[0].clone();
        let p = s.profiles.get_mut("good").unwrap();
        p.subscribe_qos.insert(c.name.clone(), c.qos);
        assert_eq!(lints_of(&s, "good"), vec![], "the same QoS is fine");
        s.fleets[0].commands[0].qos = 2;
        s.profiles
            .get_mut("good")
            .unwrap()
            .subscribe_qos
            .insert(c.name.clone(), 0);
        only_lint(
            &s,
            "good",
            "commands.downgraded",
            "at QoS 0, below the QoS 2",
        );
    }

    #[test]
    fn keepalive_off_or_no_ping_timeout_lints_zombie_time() {
        let mut s = base();
        let p = s.profiles.get_mut("good").unwrap();
        p.keepalive = None;
        p.ping_timeout = None;
        only_lint(&s, "good", "zombie_time", "zombie_undetected");
        s.profiles.get_mut("good").unwrap().keepalive = Some(secs(5));
        only_lint(&s, "good", "zombie_time", "up to 2 × keepalive (10s)");
    }

    #[test]
    fn qos0_telemetry_lints_lost_qos0() {
        let mut s = base();
        s.profiles
            .get_mut("good")
            .unwrap()
            .qos
            .insert("telemetry".into(), 0);
        only_lint(&s, "good", "lost_qos0", "telemetry");
        // The same fleet QoS under a profile override back to 1 is fine.
        let mut s = base();
        s.fleets[0].streams[0].qos = 0;
        s.profiles
            .get_mut("good")
            .unwrap()
            .qos
            .insert("telemetry".into(), 1);
        assert_eq!(lints_of(&s, "good"), vec![]);
    }

    #[test]
    fn an_mqtt5_will_delay_without_a_session_to_wait_in_lints_false_offline() {
        use crate::scenario::SessionExpiry;
        let mut s = base();
        let p = s.profiles.get_mut("good").unwrap();
        p.protocol = 5;
        p.clean_session = false;
        p.session_expiry = Some(SessionExpiry::After(secs(3600)));
        p.will.as_mut().unwrap().delay = Some(secs(30));
        assert_eq!(lints_of(&s, "good"), vec![]);
        // Session expiry 0 (absent): the will fires at once.
        s.profiles.get_mut("good").unwrap().session_expiry = None;
        let l = lints_of(&s, "good");
        assert_eq!(l.len(), 2, "{l:#?}");
        assert!(l
            .iter()
            .any(|(f, m)| f == "session_present" && m.contains("no session_expiry")));
        assert!(l
            .iter()
            .any(|(f, m)| f == "false_offline" && m.contains("at once")));
        // Expiry shorter than the delay: the will fires at the session's end.
        let p = s.profiles.get_mut("good").unwrap();
        p.session_expiry = Some(SessionExpiry::After(secs(10)));
        only_lint(
            &s,
            "good",
            "false_offline",
            "longer than session_expiry 10s",
        );
        // Clean start ends the waiting session at the reconnect.
        let p = s.profiles.get_mut("good").unwrap();
        p.session_expiry = Some(SessionExpiry::Never);
        p.clean_session = true;
        only_lint(&s, "good", "false_offline", "clean_session = true");
    }

    #[test]
    fn fire_and_forget_lints_silent_loss() {
        let mut s = base();
        s.profiles.get_mut("good").unwrap().ack.wait = false;
        only_lint(&s, "good", "silent_loss", "ack.wait = false");
    }

    #[test]
    fn qos2_everywhere_lints_ack_latency_and_with_retries_duplicates() {
        let mut s = base();
        s.fleets[0].streams[0].qos = 2;
        assert_eq!(lints_of(&s, "good"), vec![]);
        s.fleets[0].commands[0].qos = 2;
        only_lint(&s, "good", "ack_latency", "QoS 2");
        s.profiles.get_mut("good").unwrap().ack.retries = 2;
        let l = lints_of(&s, "good");
        let figures: Vec<&str> = l.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(figures, ["ack_latency", "duplicates"], "{l:#?}");
        assert!(l[1]
            .1
            .contains("telemetry at QoS 2 (telemetry) with 2 ack retries"));
        // Retries at QoS 1 are what QoS 1 is for.
        s.fleets[0].streams[0].qos = 1;
        assert_eq!(lints_of(&s, "good"), vec![]);
    }

    #[test]
    fn a_keepalive_longer_than_the_longest_blackhole_lints_zombie_undetected() {
        let mut s = base();
        s.timeline.push(fault(
            40,
            Some(20),
            Some("a"),
            FaultKind::Blackhole {
                stream: StreamSel::Both,
                toxicity: None,
            },
        ));
        assert_eq!(lints_of(&s, "good"), vec![]);
        s.profiles.get_mut("good").unwrap().keepalive = Some(secs(19));
        only_lint(
            &s,
            "good",
            "zombie_undetected",
            "keepalive 19s with ping_timeout 2s is longer than the timeline's longest blackhole (20s)",
        );
        // A blackhole that hits a share of the connections says nothing.
        if let FaultKind::Blackhole { toxicity, .. } = &mut s.timeline.last_mut().unwrap().kind {
            *toxicity = Some(0.5);
        }
        assert_eq!(lints_of(&s, "good"), vec![]);
    }

    #[test]
    fn a_weak_will_lints_missed_offline_and_stale_offline_time() {
        let set = |f: fn(&mut Will)| {
            let mut s = base();
            f(s.profiles.get_mut("good").unwrap().will.as_mut().unwrap());
            s
        };
        only_lint(&set(|w| w.qos = 0), "good", "missed_offline", "QoS 0");
        only_lint(
            &set(|w| w.retain = false),
            "good",
            "missed_offline",
            "not retained",
        );
        let mut s = base();
        s.profiles.get_mut("good").unwrap().online_republish = false;
        only_lint(&s, "good", "stale_offline_time", "not republished");
        // A will nobody keeps, and no `online` after a connect: both.
        let mut s = base();
        let p = s.profiles.get_mut("good").unwrap();
        p.online_republish = false;
        p.will.as_mut().unwrap().retain = false;
        let figures: Vec<String> = lints_of(&s, "good").into_iter().map(|l| l.0).collect();
        assert_eq!(figures, ["missed_offline", "stale_offline_time"]);
        let mut s = base();
        let p = s.profiles.get_mut("good").unwrap();
        p.will = None;
        p.online_republish = false;
        only_lint(&s, "good", "missed_offline", "no Last Will");
    }

    #[test]
    fn no_resubscription_after_a_clean_reconnect_lints_lost_commands() {
        let mut s = base();
        s.profiles.get_mut("good").unwrap().resubscribe = false;
        only_lint(&s, "good", "commands.lost_after_ack", "commands (control)");
        // Without commands there is nothing to lose.
        let mut s = base();
        s.profiles.get_mut("other").unwrap().resubscribe = false;
        assert_eq!(lints_of(&s, "other"), vec![]);
        // A persistent session keeps the subscription.
        let mut s = base();
        let p = s.profiles.get_mut("good").unwrap();
        p.resubscribe = false;
        p.clean_session = false;
        assert_eq!(lints_of(&s, "good"), vec![]);
    }

    #[test]
    fn a_fixed_client_id_for_several_devices_lints_flaps() {
        let mut s = base();
        s.profiles.get_mut("good").unwrap().client_id = ClientIdStrategy::Fixed("dev".into());
        only_lint(&s, "good", "flaps", "for 3 devices");
        s.fleets[0].count = 1;
        s.profiles.get_mut("good").unwrap().clean_session = false;
        only_lint(
            &s,
            "good",
            "flaps",
            "clean_session = false with the fixed client id",
        );
    }

    #[test]
    fn a_backoff_far_above_the_outages_or_none_lints_reconnect_figures() {
        let mut s = base();
        // fleet a's longest outage: link_down 5s (broker restart 2s).
        s.profiles.get_mut("good").unwrap().reconnect = Some(Reconnect {
            initial: secs(1),
            max: secs(16),
            jitter: 0.1,
        });
        only_lint(
            &s,
            "good",
            "first_attempt_delay",
            "longest outage here (5s)",
        );
        s.profiles.get_mut("good").unwrap().reconnect = Some(Reconnect {
            initial: secs(1),
            max: secs(15),
            jitter: 0.1,
        });
        assert_eq!(lints_of(&s, "good"), vec![]);
        s.profiles.get_mut("good").unwrap().reconnect = None;
        only_lint(&s, "good", "reconnect_after_heal", "stays down");
    }

    #[test]
    fn a_ping_timeout_within_the_latency_round_trip_lints_false_offline() {
        let mut s = base();
        s.timeline.push(fault(
            40,
            Some(5),
            Some("a"),
            FaultKind::Latency {
                latency: ms(900),
                jitter: ms(100),
                stream: StreamSel::Both,
                toxicity: None,
            },
        ));
        only_lint(&s, "good", "false_offline", "ping_timeout 2s");
        // Fleet b (profile other) is not hit.
        assert_eq!(lints_of(&s, "other"), vec![]);
    }
}
