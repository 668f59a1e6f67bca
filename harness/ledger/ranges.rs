//! Runs of consecutive sequence numbers that share a state, kept as ranges.
//!
//! The ledger remembers two kinds of seq it may still hear about: *unseen*
//! seqs (skipped over when a higher one showed up first) and *provisional
//! losses* (outcome known, not received yet: a late arrival turns them into
//! deliveries). Losses come in bursts (an outage loses a run of consecutive
//! seqs), so a range map costs memory per burst, not per message.
//!
//! A loss also remembers the interval its messages were intended in (the
//! *bucket*, see the ledger's doc): a late arrival or a change of figure
//! is told to that interval. Consecutive losses of one burst share their
//! bucket unless the burst spans an interval's end, so that costs a range
//! per interval a burst spans, not per message.

use std::collections::BTreeMap;

/// What a range of seqs is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// Neither published nor received yet (a later seq was seen first).
    Unseen,
    /// Published, outcome known, never received (so far); `bucket`: the
    /// interval of the messages' `t_intended`.
    Lost {
        kind: LossKind,
        qos: u8,
        bucket: u64,
    },
}

/// Which loss figure a never-received message counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LossKind {
    /// QoS ≥ 1, acked, published while a collector covered it.
    AfterAck,
    /// QoS ≥ 1, acked, published inside a coverage gap of the collector.
    Unobserved,
    /// QoS ≥ 1, failed or no outcome at all.
    Unacked,
    /// QoS ≥ 1, the app did not wait for the ack.
    Silent,
    /// QoS 0.
    Qos0,
    /// QoS ≥ 1, acked, a command for a device that is dead at the end
    /// (crashed, never rebooted): nobody could receive it.
    Undeliverable,
}

/// Inclusive ranges `start..=end`, disjoint, keyed by start. Adjacent ranges
/// with the same mark are merged.
#[derive(Debug, Default)]
pub(crate) struct Ranges {
    map: BTreeMap<u64, (u64, Mark)>,
}

impl Ranges {
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The mark of `seq`, if it lies in a range.
    pub(crate) fn get(&self, seq: u64) -> Option<Mark> {
        let (_, &(end, mark)) = self.map.range(..=seq).next_back()?;
        (seq <= end).then_some(mark)
    }

    /// Mark `start..=end` (which must lie in no range yet).
    pub(crate) fn insert(&mut self, start: u64, end: u64, mark: Mark) {
        debug_assert!(start <= end);
        let mut start = start;
        let mut end = end;
        // Merge with the range ending just before.
        if start > 0 {
            if let Some((&s, &(e, m))) = self.map.range(..start).next_back() {
                if e + 1 == start && m == mark {
                    self.map.remove(&s);
                    start = s;
                }
            }
        }
        // Merge with the range starting just after.
        if let Some(next) = end.checked_add(1) {
            if let Some(&(e, m)) = self.map.get(&next) {
                if m == mark {
                    self.map.remove(&next);
                    end = e;
                }
            }
        }
        self.map.insert(start, (end, mark));
    }

    /// Take `seq` out of its range (splitting it); returns its mark.
    pub(crate) fn remove(&mut self, seq: u64) -> Option<Mark> {
        let (&s, &(e, mark)) = self.map.range(..=seq).next_back()?;
        if seq > e {
            return None;
        }
        self.map.remove(&s);
        if s < seq {
            self.map.insert(s, (seq - 1, mark));
        }
        if seq < e {
            self.map.insert(seq + 1, (e, mark));
        }
        Some(mark)
    }

    /// Forget the lowest range; returns it.
    pub(crate) fn pop_lowest(&mut self) -> Option<(u64, u64, Mark)> {
        self.map.pop_first().map(|(s, (e, m))| (s, e, m))
    }

    /// Give every range whose mark `to` maps to `Some(new)` the mark `new`;
    /// returns each changed range's old mark and its number of seqs.
    pub(crate) fn remark(&mut self, to: impl Fn(Mark) -> Option<Mark>) -> Vec<(Mark, u64)> {
        let hit: Vec<(u64, u64, Mark, Mark)> = self
            .map
            .iter()
            .filter_map(|(&s, &(e, m))| to(m).map(|new| (s, e, m, new)))
            .collect();
        let mut changed = Vec::with_capacity(hit.len());
        for (s, e, old, new) in hit {
            self.map.remove(&s);
            self.insert(s, e, new);
            changed.push((old, e - s + 1));
        }
        changed
    }

    /// Every range, lowest first.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64, Mark)> + '_ {
        self.map.iter().map(|(&s, &(e, m))| (s, e, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOST: Mark = Mark::Lost {
        kind: LossKind::AfterAck,
        qos: 1,
        bucket: 0,
    };

    #[test]
    fn neighbouring_seqs_with_one_mark_share_one_range() {
        let mut r = Ranges::default();
        r.insert(5, 5, LOST);
        r.insert(7, 7, LOST);
        assert_eq!(r.len(), 2);
        r.insert(6, 6, LOST);
        assert_eq!(r.len(), 1);
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![(5, 7, LOST)]);
    }

    #[test]
    fn different_marks_are_not_merged() {
        let mut r = Ranges::default();
        r.insert(0, 4, Mark::Unseen);
        r.insert(5, 5, LOST);
        assert_eq!(r.len(), 2);
        assert_eq!(r.get(4), Some(Mark::Unseen));
        assert_eq!(r.get(5), Some(LOST));
        assert_eq!(r.get(6), None);
    }

    #[test]
    fn removing_from_the_middle_splits_a_range() {
        let mut r = Ranges::default();
        r.insert(10, 20, LOST);
        assert_eq!(r.remove(15), Some(LOST));
        assert_eq!(r.remove(15), None);
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            vec![(10, 14, LOST), (16, 20, LOST)]
        );
        assert_eq!(r.remove(10), Some(LOST));
        assert_eq!(r.remove(20), Some(LOST));
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            vec![(11, 14, LOST), (16, 19, LOST)]
        );
    }

    #[test]
    fn losses_of_different_intervals_are_not_merged_and_a_remark_keeps_them_apart() {
        let later = Mark::Lost {
            kind: LossKind::AfterAck,
            qos: 1,
            bucket: 1,
        };
        let mut r = Ranges::default();
        r.insert(0, 4, LOST);
        r.insert(5, 9, later);
        assert_eq!(r.len(), 2);
        let changed = r.remark(|m| match m {
            Mark::Lost {
                kind: LossKind::AfterAck,
                qos,
                bucket,
            } => Some(Mark::Lost {
                kind: LossKind::Undeliverable,
                qos,
                bucket,
            }),
            _ => None,
        });
        assert_eq!(changed, vec![(LOST, 5), (later, 5)]);
        assert_eq!(r.len(), 2);
        assert!(matches!(
            r.get(7),
            Some(Mark::Lost {
                kind: LossKind::Undeliverable,
                bucket: 1,
                ..
            })
        ));
    }

    #[test]
    fn pop_lowest_forgets_the_oldest_range() {
        let mut r = Ranges::default();
        r.insert(8, 9, LOST);
        r.insert(1, 2, Mark::Unseen);
        assert_eq!(r.pop_lowest(), Some((1, 2, Mark::Unseen)));
        assert_eq!(r.len(), 1);
    }
}
