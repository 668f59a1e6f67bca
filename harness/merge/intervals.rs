//! The shards' interval records folded into the merged run's (pure).
//!
//! Shards cut at the same nominal times from their common start instant,
//! so their intervals are merged by index; a shard's `last` interval (cut
//! at its end, after the drain) goes to the merged run's last index, as a
//! shard may have cut one regular interval fewer or more than another.
//! A shard lacking an index contributes nothing there but its gauges,
//! which carry from its latest earlier interval. The shards' files are
//! read folded (amendments applied), so the merged run is written as
//! intervals only, each already final.

use std::collections::{BTreeMap, BTreeSet};

use crate::health::Incident;
use crate::metrics::interval::{IntervalRecord, ProfileInterval};
use crate::metrics::{LinkFigures, LinkRecord};
use crate::report::FaultRecord;
use crate::scenario::FaultTarget;
use crate::shard::Shard;

/// One shard's time series, as read from its run directory.
#[derive(Debug, Clone)]
pub struct ShardSeries {
    pub shard: Shard,
    /// Its complete intervals, in order.
    pub records: Vec<IntervalRecord>,
    /// Its `incomplete` incident when it stopped without writing its end
    /// (`report::rebuild` would add it to the shard's own report).
    pub incomplete: Option<Incident>,
}

/// What is wrong with one shard's intervals (`shard` is its place in the
/// slice given to [`merge_intervals`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesError {
    pub shard: usize,
    pub message: String,
}

/// What a shard's series says at a merged index: its gauges and
/// populations as of its latest interval so far.
#[derive(Default)]
struct ShardState {
    /// Per profile: awaiting_reconnect, connected.
    gauges: BTreeMap<String, (u64, Option<u64>)>,
    /// Per profile: its devices with a will.
    will_devices: BTreeMap<String, u64>,
    faults: BTreeMap<usize, FaultRecord>,
    unobserved_ns: i64,
}

/// `shard I/N: ` before an incident's message.
pub fn prefixed(shard: Shard, i: &Incident) -> Incident {
    Incident {
        message: format!("shard {shard}: {}", i.message),
        ..i.clone()
    }
}

/// Merge the shards' series (every shard of the run, in index order) into
/// the merged run's intervals, `0 ..= M` where `M` is the highest index of
/// any shard:
///
/// * message, connection and error counters (deltas) sum; histograms add
///   bucket for bucket; `exposed` / `healed` are any shard's;
/// * gauges (`awaiting_reconnect`, `connected`) sum over every shard's
///   value at the cut (carried from its latest earlier interval);
/// * link figures (the samples of the episodes that started in the
///   interval) add up over the shards that have the index, and the
///   population (devices with a will) over every shard;
/// * `unobserved_ns`: the merged cumulative time is the largest of the
///   shards' (each collector watches the same broker for its own devices:
///   their downtimes overlap, and the largest is the time some collector
///   could not see), so its deltas are those of that maximum;
/// * `errors`: every shard's, prefixed `shard I/N: `, and the
///   `incomplete` incident of a shard that stopped without its end, at the
///   index of its last interval;
/// * fault records by timeline index: broker faults as shard 0 (the one
///   that applied them) recorded them; link and device faults combined
///   ([`combine`]); a record is listed where its combination changed.
pub fn merge_intervals(shards: &[ShardSeries]) -> Result<Vec<IntervalRecord>, SeriesError> {
    for (s, series) in shards.iter().enumerate() {
        for (pos, r) in series.records.iter().enumerate() {
            if r.index != pos as u64 {
                return Err(SeriesError {
                    shard: s,
                    message: format!(
                        "interval {} comes where interval {pos} should (the intervals must run 0, 1, 2, …)",
                        r.index
                    ),
                });
            }
            if r.last && pos + 1 != series.records.len() {
                return Err(SeriesError {
                    shard: s,
                    message: format!("interval {} is marked last but is not", r.index),
                });
            }
        }
    }
    let Some(top) = shards
        .iter()
        .filter_map(|s| s.records.last().map(|r| r.index))
        .max()
    else {
        return Ok(Vec::new());
    };
    let finished = shards
        .iter()
        .any(|s| s.records.last().is_some_and(|r| r.last));
    // Where each shard's records go, and where its incomplete incident goes.
    let placed = |r: &IntervalRecord| if r.last { top } else { r.index };
    let mut at: Vec<BTreeMap<u64, &IntervalRecord>> = Vec::new();
    for s in shards {
        at.push(s.records.iter().map(|r| (placed(r), r)).collect());
    }
    let incomplete_at = |s: &ShardSeries| s.records.last().map_or(0, placed);

    let mut states: Vec<ShardState> = shards.iter().map(|_| ShardState::default()).collect();
    let mut emitted: BTreeMap<usize, FaultRecord> = BTreeMap::new();
    let mut out = Vec::with_capacity(top as usize + 1);
    let (mut prev_end, mut prev_unobserved) = (0u64, 0i64);
    for i in 0..=top {
        let mut profiles: BTreeMap<String, ProfileInterval> = BTreeMap::new();
        let mut errors = Vec::new();
        let mut unknown_device_events = 0;
        let mut end_ns = prev_end;
        let mut changed: BTreeSet<usize> = BTreeSet::new();
        let mut links: BTreeMap<String, LinkFigures> = BTreeMap::new();
        for (s, series) in shards.iter().enumerate() {
            let state = &mut states[s];
            if let Some(r) = at[s].get(&i) {
                end_ns = end_ns.max(r.end_ns);
                unknown_device_events += r.unknown_device_events;
                state.unobserved_ns += r.unobserved_ns;
                errors.extend(r.errors.iter().map(|e| prefixed(series.shard, e)));
                for f in &r.faults {
                    state.faults.insert(f.index, f.clone());
                    changed.insert(f.index);
                }
                for (name, p) in &r.profiles {
                    profiles.entry(name.clone()).or_default().add_counts(p);
                    state
                        .gauges
                        .insert(name.clone(), (p.awaiting_reconnect, p.connected));
                    let Some(link) = &p.link_figures else {
                        return Err(SeriesError {
                            shard: s,
                            message: format!(
                                "interval {}, profile {name}: no link_figures (written by a harness \
                                 older than merge), so its connection and offline figures cannot \
                                 be added up exactly",
                                r.index
                            ),
                        });
                    };
                    let figures = link.decode().map_err(|e| SeriesError {
                        shard: s,
                        message: format!("interval {}, profile {name}: link_figures: {e}", r.index),
                    })?;
                    state
                        .will_devices
                        .insert(name.clone(), figures.will_devices);
                    links.entry(name.clone()).or_default().add(&figures);
                }
            }
            if series.incomplete.is_some() && incomplete_at(series) == i {
                errors.extend(series.incomplete.iter().map(|e| prefixed(series.shard, e)));
            }
        }

        // Gauges and populations: every shard's latest.
        for state in &states {
            for name in state.gauges.keys() {
                profiles.entry(name.clone()).or_default();
            }
        }
        for (name, p) in profiles.iter_mut() {
            let mut link = links.remove(name).unwrap_or_default();
            link.will_devices = 0;
            let (mut awaiting, mut connected) = (0, None::<u64>);
            for state in &states {
                if let Some((a, c)) = state.gauges.get(name) {
                    awaiting += a;
                    if let Some(c) = c {
                        connected = Some(connected.unwrap_or(0) + c);
                    }
                }
                link.will_devices += state.will_devices.get(name).copied().unwrap_or(0);
            }
            p.awaiting_reconnect = awaiting;
            p.connected = connected;
            p.link = None;
            p.link_figures = Some(LinkRecord::encode(&link));
        }

        let unobserved = states.iter().map(|s| s.unobserved_ns).max().unwrap_or(0);
        let mut faults = Vec::new();
        for f in changed {
            if let Some(rec) = combine(shards, &states, f) {
                if emitted.get(&f) != Some(&rec) {
                    emitted.insert(f, rec.clone());
                    faults.push(rec);
                }
            }
        }
        out.push(IntervalRecord {
            index: i,
            start_ns: prev_end,
            end_ns,
            last: finished && i == top,
            unobserved_ns: unobserved - prev_unobserved,
            unknown_device_events,
            errors,
            faults,
            profiles,
            link_totals: None,
        });
        prev_end = end_ns;
        prev_unobserved = unobserved;
    }
    Ok(out)
}

/// Fault `f` of the timeline as the shards recorded it so far. A broker
/// fault is shard 0's record (the designated shard applied it; the others
/// only followed). A link or device fault is applied by every shard to its
/// own devices, so the merged record spans them all: requested at the
/// earliest request, started at the latest confirmation, healed at the
/// latest heal (not healed while a shard that started it has not healed
/// it), applied when applied by every shard that recorded it, and the
/// first shard's error, prefixed `shard I/N: `.
fn combine(shards: &[ShardSeries], states: &[ShardState], f: usize) -> Option<FaultRecord> {
    let recs: Vec<(Shard, &FaultRecord)> = shards
        .iter()
        .zip(states)
        .filter_map(|(s, st)| st.faults.get(&f).map(|r| (s.shard, r)))
        .collect();
    let (_, first) = recs.first()?;
    if first.kind.target() == FaultTarget::Broker {
        return recs
            .iter()
            .find(|(s, _)| s.is_designated())
            .map(|(_, r)| (*r).clone());
    }
    let min = |v: &mut dyn Iterator<Item = f64>| v.reduce(f64::min);
    let max = |v: &mut dyn Iterator<Item = f64>| v.reduce(f64::max);
    let started: Vec<&FaultRecord> = recs
        .iter()
        .map(|(_, r)| *r)
        .filter(|r| r.started_at_s.is_some())
        .collect();
    let healed_at_s = if !started.is_empty() && started.iter().all(|r| r.healed_at_s.is_some()) {
        max(&mut started.iter().filter_map(|r| r.healed_at_s))
    } else {
        None
    };
    Some(FaultRecord {
        index: f,
        kind: first.kind,
        target: first.target.clone(),
        scheduled_at_s: recs.iter().find_map(|(_, r)| r.scheduled_at_s),
        requested_at_s: min(&mut recs.iter().filter_map(|(_, r)| r.requested_at_s)),
        started_at_s: max(&mut started.iter().filter_map(|r| r.started_at_s)),
        healed_at_s,
        applied: recs.iter().all(|(_, r)| r.applied),
        error: recs
            .iter()
            .find_map(|(s, r)| r.error.as_ref().map(|e| format!("shard {s}: {e}"))),
        weather: first.weather,
        // Each shard names the picked devices it holds.
        devices: recs
            .iter()
            .flat_map(|(_, r)| r.devices.iter().cloned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
    })
}
