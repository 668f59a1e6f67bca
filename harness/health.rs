//! The harness's own health (METRICS.md, Verdicts).
//!
//! Every figure of a report says what the *client* did. Whatever the harness
//! or its environment did wrong — the broker gone outside a scheduled fault,
//! a fault applied late or never, a fault backend that failed or hung, a loss
//! the harness's own clients caused, the run interrupted or killed — is an
//! [`Incident`] with its time and [`Cause`]: recorded in the same history as
//! every other event, listed in `report.json`'s `errors`, and it makes the
//! verdict `error` in every output and exit code 3 (130 for Ctrl-C).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a run cannot vouch for its figures. One variant per kind of cause,
/// so a report reader (or a CI script) can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The broker could not be reached (the observer was down longer than
    /// its bound) outside a scheduled broker fault.
    BrokerUnavailable,
    /// The broker's process or container exited on its own.
    BrokerExited,
    /// The broker did not come back after a scheduled broker fault.
    BrokerNotBack,
    /// A fault was never confirmed by its backend: it was not applied.
    FaultNotApplied,
    /// A fault was confirmed later than `fault_tolerance` after its schedule.
    FaultLate,
    /// The fault backend failed, or did not answer within its deadline.
    FaultBackend,
    /// The harness's own clients lost or refused a message (a quota reason
    /// code, a collector that fell behind): not the client's loss.
    HarnessLoss,
    /// A subscription of the harness's own clients was refused or
    /// downgraded by the broker.
    SubscriptionRefused,
    /// The harness fell behind its own schedule (publishing, collecting).
    ScheduleLag,
    /// The run was interrupted (Ctrl-C, SIGTERM) before its end.
    Interrupted,
    /// The run stopped without writing its end (killed, machine lost): a
    /// report rebuilt from its files covers only what was written.
    Incomplete,
    /// The time series of the run could not be written.
    TimeSeries,
    /// Tearing the run down failed or hung (a proxy, a container, the broker).
    Teardown,
    /// A broken invariant of the harness itself (ledger horizon, unknown
    /// devices, events that outlived the run).
    Internal,
}

impl Cause {
    pub const ALL: [Cause; 14] = [
        Cause::BrokerUnavailable,
        Cause::BrokerExited,
        Cause::BrokerNotBack,
        Cause::FaultNotApplied,
        Cause::FaultLate,
        Cause::FaultBackend,
        Cause::HarnessLoss,
        Cause::SubscriptionRefused,
        Cause::ScheduleLag,
        Cause::Interrupted,
        Cause::Incomplete,
        Cause::TimeSeries,
        Cause::Teardown,
        Cause::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::BrokerUnavailable => "broker_unavailable",
            Cause::BrokerExited => "broker_exited",
            Cause::BrokerNotBack => "broker_not_back",
            Cause::FaultNotApplied => "fault_not_applied",
            Cause::FaultLate => "fault_late",
            Cause::FaultBackend => "fault_backend",
            Cause::HarnessLoss => "harness_loss",
            Cause::SubscriptionRefused => "subscription_refused",
            Cause::ScheduleLag => "schedule_lag",
            Cause::Interrupted => "interrupted",
            Cause::Incomplete => "incomplete",
            Cause::TimeSeries => "time_series",
            Cause::Teardown => "teardown",
            Cause::Internal => "internal",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `report.json`'s `errors`: when (run clock, s; `null` when
/// the moment is not known, e.g. found while assembling the report), why,
/// and what happened in words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub at_s: Option<f64>,
    pub cause: Cause,
    pub message: String,
}

impl Incident {
    pub fn new(at_s: Option<f64>, cause: Cause, message: impl Into<String>) -> Incident {
        Incident {
            at_s,
            cause,
            message: message.into(),
        }
    }

    /// An incident found while assembling the report (no moment of its own).
    pub fn untimed(cause: Cause, message: impl Into<String>) -> Incident {
        Incident::new(None, cause, message)
    }
}

impl fmt::Display for Incident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at_s {
            Some(t) => write!(f, "[{}] at {t:.3} s: {}", self.cause, self.message),
            None => write!(f, "[{}] {}", self.cause, self.message),
        }
    }
}

/// Files written before incidents had a cause carried plain strings: read
/// them back as `internal` incidents without a time.
impl<'de> Deserialize<'de> for Incident {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Incident, D::Error> {
        #[derive(Deserialize)]
        struct Full {
            at_s: Option<f64>,
            cause: Cause,
            message: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Full(Full),
            Text(String),
        }
        Ok(match Either::deserialize(d)? {
            Either::Full(f) => Incident::new(f.at_s, f.cause, f.message),
            Either::Text(t) => Incident::untimed(Cause::Internal, t),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_has_the_name_serde_gives_it() {
        for c in Cause::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            let back: Cause = serde_json::from_str(&json).unwrap();
            assert_eq!(back, c);
        }
    }

    #[test]
    fn incidents_round_trip_and_old_strings_read_as_internal() {
        let i = Incident::new(
            Some(12.5),
            Cause::FaultLate,
            "timeline[0] link_down: 3.2 s late",
        );
        let json = serde_json::to_string(&i).unwrap();
        assert_eq!(
            json,
            r#"{"at_s":12.5,"cause":"fault_late","message":"timeline[0] link_down: 3.2 s late"}"#
        );
        assert_eq!(serde_json::from_str::<Incident>(&json).unwrap(), i);
        let old: Incident = serde_json::from_str("\"time series: disk full\"").unwrap();
        assert_eq!(
            old,
            Incident::untimed(Cause::Internal, "time series: disk full")
        );
        assert!(
            serde_json::from_str::<Incident>(r#"{"cause":"nope","message":"x","at_s":null}"#)
                .is_err()
        );
    }

    #[test]
    fn display_names_the_cause_and_the_time() {
        let i = Incident::new(Some(1.0), Cause::BrokerExited, "exited with status 9");
        assert_eq!(
            i.to_string(),
            "[broker_exited] at 1.000 s: exited with status 9"
        );
        assert_eq!(
            Incident::untimed(Cause::Internal, "x").to_string(),
            "[internal] x"
        );
    }
}
