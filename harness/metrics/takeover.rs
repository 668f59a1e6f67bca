//! `takeovers` (METRICS.md): connections the broker closed because another
//! client connected with the same client id — a `client_id_conflict`
//! fault's intruder, or another device of a profile with a fixed id —
//! counted whether or not a will fired (Mosquitto fires none when a
//! persistent MQTT 3.1.1 session is taken over, so no offline report shows
//! it).
//!
//! Pure. An MQTT 3.1.1 client is not told why its connection closed, so a
//! loss is a takeover when another holder of the same client id got its
//! CONNACK close to it: the broker closes the old connection while it
//! handles the new CONNECT, so the old client sees its connection end
//! within moments of the new one's CONNACK (before it, or just after when
//! the two events cross in the harness). The window is wide enough for a
//! loaded machine and far shorter than any reconnect backoff a profile can
//! take with a shared id.

use std::time::Duration;

use crate::clock::Nanos;
use crate::history::DeviceId;

/// How long before a loss another holder's CONNACK still explains it.
pub const BEFORE: Duration = Duration::from_secs(2);
/// How long after a loss another holder's CONNACK still explains it.
pub const AFTER: Duration = Duration::from_secs(1);

/// Who connected with a client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    Device(DeviceId),
    /// The intruder of a `client_id_conflict` fault on this device.
    Intruder(DeviceId),
}

/// The takeovers among `me`'s connection `losses`, given every CONNACK of
/// its client id (`claims`, in time order).
pub fn count(losses: &[Nanos], claims: &[(Nanos, Holder)], me: Holder) -> u64 {
    takeovers(losses, claims, me).count() as u64
}

/// The losses among `me`'s connection `losses` that were takeovers (see
/// [`count`]), in the order given.
pub fn takeovers<'a>(
    losses: &'a [Nanos],
    claims: &'a [(Nanos, Holder)],
    me: Holder,
) -> impl Iterator<Item = Nanos> + 'a {
    losses.iter().copied().filter(move |&loss| {
        let from = Nanos(loss.0.saturating_sub(BEFORE.as_nanos() as u64));
        let to = loss.plus(AFTER);
        let start = claims.partition_point(|(t, _)| *t < from);
        claims[start..]
            .iter()
            .take_while(|(t, _)| *t <= to)
            .any(|(_, h)| *h != me)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Nanos {
        Nanos(v * 1_000_000)
    }

    #[test]
    fn a_loss_beside_another_holders_connack_is_a_takeover() {
        let me = Holder::Device(0);
        let claims = vec![
            (ms(1_000), me),
            (ms(5_000), Holder::Intruder(0)),
            (ms(5_400), me),
            (ms(9_003), Holder::Device(1)),
        ];
        // Lost at 5.001 s (the intruder's CONNACK 1 ms before): a takeover.
        // Lost at 9.000 s, the sibling's CONNACK 3 ms after: a takeover.
        // Lost at 20 s, nobody else connected near it: not one.
        assert_eq!(count(&[ms(5_001), ms(9_000), ms(20_000)], &claims, me), 2);
        // Its own reconnect never explains its loss.
        assert_eq!(count(&[ms(5_390)], &[(ms(5_400), me)], me), 0);
        // Outside the window on either side.
        assert_eq!(
            count(&[ms(10_000)], &[(ms(7_999), Holder::Device(1))], me),
            0
        );
        assert_eq!(
            count(&[ms(10_000)], &[(ms(11_001), Holder::Device(1))], me),
            0
        );
        assert_eq!(
            count(&[ms(10_000)], &[(ms(8_000), Holder::Device(1))], me),
            1
        );
        assert_eq!(count(&[], &claims, me), 0);
    }
}
