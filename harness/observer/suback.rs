//! Checking the SUBACKs of the harness's own subscriptions (pure).
//!
//! A broker may refuse a subscription (return code 0x80: an ACL, a `$SYS`
//! tree closed to remote clients) or grant a lower QoS than asked. Either
//! way the observer would see less than the run's figures assume, and a
//! missing message would be charged to the client under test. Every SUBACK
//! of the observer is therefore checked against what it asked, filter by
//! filter (a SUBACK's return codes are in the order of the SUBSCRIBE's
//! filters), and every shortfall becomes a harness incident
//! ([`crate::health::Cause::SubscriptionRefused`]).

use std::fmt;

/// What the broker granted one filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granted {
    /// Granted at this QoS.
    Qos(u8),
    /// Refused (return code 0x80).
    Refused,
    /// The SUBACK carried fewer return codes than the SUBSCRIBE had filters.
    Missing,
}

/// One filter that was not granted what it asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    pub filter: String,
    pub asked: u8,
    pub granted: Granted,
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.granted {
            Granted::Qos(g) => write!(
                f,
                "the broker granted the observer's subscription {:?} QoS {g}, asked QoS {}: \
                 what it delivers below QoS {} is not what the run measures",
                self.filter, self.asked, self.asked
            ),
            Granted::Refused => write!(
                f,
                "the broker refused the observer's subscription {:?} (asked QoS {}, \
                 return code 0x80): nothing under it is observed",
                self.filter, self.asked
            ),
            Granted::Missing => write!(
                f,
                "the broker's SUBACK carries no return code for the observer's \
                 subscription {:?} (asked QoS {})",
                self.filter, self.asked
            ),
        }
    }
}

/// Every filter of one SUBSCRIBE (`asked`: filter and QoS, in order) whose
/// return code (`granted`, in the same order) is a refusal, a lower QoS or
/// missing. An empty answer: everything was granted as asked.
pub fn check(asked: &[(String, u8)], granted: &[Granted]) -> Vec<Shortfall> {
    asked
        .iter()
        .enumerate()
        .filter_map(|(i, (filter, q))| {
            let g = granted.get(i).copied().unwrap_or(Granted::Missing);
            let short = match g {
                Granted::Qos(g) => g < *q,
                Granted::Refused | Granted::Missing => true,
            };
            short.then(|| Shortfall {
                filter: filter.clone(),
                asked: *q,
                granted: g,
            })
        })
        .collect()
}

/// rumqttc's return code as a [`Granted`].
pub fn granted(code: &rumqttc::SubscribeReasonCode) -> Granted {
    match code {
        rumqttc::SubscribeReasonCode::Success(q) => Granted::Qos(*q as u8),
        rumqttc::SubscribeReasonCode::Failure => Granted::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked() -> Vec<(String, u8)> {
        vec![
            ("tele/+".into(), 2),
            ("status/dev-0000".into(), 2),
            ("$SYS/brokers/+/clients/+/connected".into(), 1),
        ]
    }

    #[test]
    fn everything_granted_as_asked_or_higher_is_no_shortfall() {
        let g = [Granted::Qos(2), Granted::Qos(2), Granted::Qos(2)];
        assert_eq!(check(&asked(), &g), vec![]);
    }

    #[test]
    fn a_refusal_names_the_filter_and_the_qos_asked() {
        let g = [Granted::Qos(2), Granted::Refused, Granted::Qos(1)];
        let s = check(&asked(), &g);
        assert_eq!(
            s,
            vec![Shortfall {
                filter: "status/dev-0000".into(),
                asked: 2,
                granted: Granted::Refused,
            }]
        );
        let text = s[0].to_string();
        assert!(text.contains("\"status/dev-0000\"") && text.contains("asked QoS 2"));
        assert!(text.contains("0x80"), "{text}");
    }

    #[test]
    fn a_downgrade_names_both_levels() {
        let g = [Granted::Qos(1), Granted::Qos(2), Granted::Qos(0)];
        let s = check(&asked(), &g);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].granted, Granted::Qos(1));
        assert_eq!(s[1].filter, "$SYS/brokers/+/clients/+/connected");
        let text = s[0].to_string();
        assert!(text.contains("QoS 1, asked QoS 2"), "{text}");
    }

    #[test]
    fn missing_return_codes_count_as_shortfalls() {
        let s = check(&asked(), &[Granted::Qos(2)]);
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|s| s.granted == Granted::Missing));
    }

    #[test]
    fn rumqttc_codes_map_to_granted() {
        use rumqttc::{QoS, SubscribeReasonCode};
        assert_eq!(
            granted(&SubscribeReasonCode::Success(QoS::AtMostOnce)),
            Granted::Qos(0)
        );
        assert_eq!(
            granted(&SubscribeReasonCode::Success(QoS::ExactlyOnce)),
            Granted::Qos(2)
        );
        assert_eq!(granted(&SubscribeReasonCode::Failure), Granted::Refused);
    }
}
