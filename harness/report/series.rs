//! What the charts of `report.html` plot over time, taken from the run's
//! intervals ([`IntervalRecord`]): per profile, the connected-devices gauge
//! and the end-to-end latency percentiles of the messages intended in each
//! interval, and the whole window's `reconnect_after_heal` histogram.
//!
//! # Bounded for runs of several days
//!
//! A chart has at most [`MAX_POINTS`] points a line. A run with more
//! intervals than that is plotted with adjacent intervals merged: `k =
//! ceil(intervals / MAX_POINTS)` consecutive intervals make one point, whose
//! latency percentiles are those of their histograms added up (exact for
//! the merged span, not an average of percentiles) and whose connected
//! gauge is the one at its last cut. The builder holds the point being
//! merged and, for the finished ones, their latency histograms compressed
//! (HdrHistogram's V2 + deflate, a few hundred bytes each): a later
//! amendment of an interval ([`SeriesBuilder::amend`], late samples of the
//! messages intended in it) still adds to its point, so the run's own
//! charts are those a rebuild draws. Its memory is bounded by the points,
//! not by the run's length.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::ledger::latency_histogram;
use crate::metrics::interval::{Amendment, Cut, IntervalRecord};

/// The most points a line of a chart gets.
pub const MAX_POINTS: usize = 2000;

/// The end-to-end latency of one point (µs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyStats {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl LatencyStats {
    /// `None` when the histogram holds no sample.
    pub fn of(h: &Histogram<u64>) -> Option<LatencyStats> {
        (!h.is_empty()).then(|| LatencyStats {
            count: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        })
    }
}

/// One profile at one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PointProfile {
    /// Devices connected at the point's last cut; `None`: not recorded
    /// (interval files written before the gauge existed).
    pub connected: Option<u64>,
    /// Telemetry end-to-end latency of the samples of the point's span.
    pub e2e_latency: Option<LatencyStats>,
}

/// One point of the time charts: one interval, or several merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Run clock (s).
    pub start_s: f64,
    pub end_s: f64,
    pub profiles: BTreeMap<String, PointProfile>,
}

/// The chart data of a run (or of a window of it).
#[derive(Debug, Clone)]
pub struct Series {
    /// Intervals read.
    pub intervals: usize,
    /// Intervals merged into one point (1: none merged).
    pub per_point: usize,
    pub points: Vec<Point>,
    /// Devices per profile (every profile of the run, in name order).
    pub devices: BTreeMap<String, u32>,
    /// `reconnect_after_heal` samples per profile over all the intervals
    /// (the full histogram the report's percentiles come from).
    pub reconnect_after_heal: BTreeMap<String, Histogram<u64>>,
}

impl Series {
    /// No intervals: charts say there is nothing to plot.
    pub fn empty(devices: BTreeMap<String, u32>) -> Series {
        SeriesBuilder::new(0, devices).finish()
    }
}

/// A finished point: its latency histograms compressed.
#[derive(Debug)]
struct Closed {
    start_ns: u64,
    end_ns: u64,
    profiles: BTreeMap<String, (Option<u64>, Vec<u8>)>,
}

fn compress(h: &Histogram<u64>) -> Vec<u8> {
    use hdrhistogram::serialization::Serializer as _;
    let mut out = Vec::new();
    hdrhistogram::serialization::V2DeflateSerializer::new()
        .serialize(h, &mut out)
        .expect("a histogram serializes into memory");
    out
}

fn expand(bytes: &[u8]) -> Histogram<u64> {
    let h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .expect("a histogram compressed here expands");
    let mut out = latency_histogram();
    out.add(&h).expect("auto-resizing histograms add");
    out
}

/// The point being merged.
#[derive(Debug)]
struct Pending {
    start_ns: u64,
    end_ns: u64,
    merged: usize,
    profiles: BTreeMap<String, (Option<u64>, Histogram<u64>)>,
}

/// Builds a [`Series`] one interval at a time (the runner feeds it as it
/// cuts; a rebuild feeds it the intervals it read).
#[derive(Debug)]
pub struct SeriesBuilder {
    per_point: usize,
    intervals: usize,
    /// The index of the first interval pushed.
    first: Option<u64>,
    pending: Option<Pending>,
    points: Vec<Closed>,
    devices: BTreeMap<String, u32>,
    reconnect_after_heal: BTreeMap<String, Histogram<u64>>,
}

impl SeriesBuilder {
    /// `expected`: how many intervals will come (decides how many are
    /// merged per point); `devices`: devices per profile.
    pub fn new(expected: usize, devices: BTreeMap<String, u32>) -> SeriesBuilder {
        SeriesBuilder {
            per_point: expected.div_ceil(MAX_POINTS).max(1),
            intervals: 0,
            first: None,
            pending: None,
            points: Vec::new(),
            devices,
            reconnect_after_heal: BTreeMap::new(),
        }
    }

    /// Add the next interval of the run.
    pub fn push(&mut self, rec: &IntervalRecord) {
        self.first.get_or_insert(rec.index);
        self.intervals += 1;
        let pending = self.pending.get_or_insert_with(|| Pending {
            start_ns: rec.start_ns,
            end_ns: rec.end_ns,
            merged: 0,
            profiles: BTreeMap::new(),
        });
        pending.end_ns = rec.end_ns;
        pending.merged += 1;
        for (name, p) in &rec.profiles {
            let (connected, e2e) = pending
                .profiles
                .entry(name.clone())
                .or_insert_with(|| (None, latency_histogram()));
            *connected = p.connected;
            e2e.add(&p.histograms.e2e_latency)
                .expect("auto-resizing histograms add");
            self.reconnect_after_heal
                .entry(name.clone())
                .or_insert_with(latency_histogram)
                .add(&p.histograms.reconnect_after_heal)
                .expect("auto-resizing histograms add");
        }
        if pending.merged >= self.per_point {
            self.close();
        }
    }

    /// Add an amendment of an interval already pushed (what the cuts after
    /// it learnt of its messages): its samples join that interval's point.
    pub fn amend(&mut self, a: &Amendment) {
        let Some(point) = self
            .first
            .and_then(|f| a.amends.checked_sub(f))
            .map(|i| i as usize / self.per_point)
        else {
            return;
        };
        for (name, p) in &a.profiles {
            self.reconnect_after_heal
                .entry(name.clone())
                .or_insert_with(latency_histogram)
                .add(&p.histograms.reconnect_after_heal)
                .expect("auto-resizing histograms add");
            let e2e = &p.histograms.e2e_latency;
            if e2e.is_empty() {
                continue;
            }
            if let Some(closed) = self.points.get_mut(point) {
                let (_, bytes) = closed
                    .profiles
                    .entry(name.clone())
                    .or_insert_with(|| (None, compress(&latency_histogram())));
                let mut h = expand(bytes);
                h.add(e2e).expect("auto-resizing histograms add");
                *bytes = compress(&h);
            } else if let Some(pending) =
                self.pending.as_mut().filter(|_| point == self.points.len())
            {
                pending
                    .profiles
                    .entry(name.clone())
                    .or_insert_with(|| (None, latency_histogram()))
                    .1
                    .add(e2e)
                    .expect("auto-resizing histograms add");
            }
        }
    }

    fn close(&mut self) {
        let Some(p) = self.pending.take() else {
            return;
        };
        self.points.push(Closed {
            start_ns: p.start_ns,
            end_ns: p.end_ns,
            profiles: p
                .profiles
                .into_iter()
                .map(|(name, (connected, e2e))| (name, (connected, compress(&e2e))))
                .collect(),
        });
    }

    pub fn finish(mut self) -> Series {
        self.close();
        let points = self
            .points
            .into_iter()
            .map(|c| Point {
                start_s: c.start_ns as f64 / 1e9,
                end_s: c.end_ns as f64 / 1e9,
                profiles: c
                    .profiles
                    .into_iter()
                    .map(|(name, (connected, bytes))| {
                        let stats = LatencyStats::of(&expand(&bytes));
                        (
                            name,
                            PointProfile {
                                connected,
                                e2e_latency: stats,
                            },
                        )
                    })
                    .collect(),
            })
            .collect();
        Series {
            intervals: self.intervals,
            per_point: self.per_point,
            points,
            devices: self.devices,
            reconnect_after_heal: self.reconnect_after_heal,
        }
    }
}

impl SeriesBuilder {
    /// Add what one cut wrote: its amendments, then its interval.
    pub fn push_cut(&mut self, cut: &Cut) {
        for a in &cut.amendments {
            self.amend(a);
        }
        self.push(&cut.interval);
    }
}

/// The series of consecutive intervals (a whole run or a window).
pub fn series_of(intervals: &[IntervalRecord], devices: BTreeMap<String, u32>) -> Series {
    let mut b = SeriesBuilder::new(intervals.len(), devices);
    for r in intervals {
        b.push(r);
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::interval::ProfileInterval;

    fn record(index: u64, connected: u64, samples: &[u64]) -> IntervalRecord {
        let mut p = ProfileInterval {
            connected: Some(connected),
            ..ProfileInterval::default()
        };
        for s in samples {
            p.histograms.e2e_latency.record(*s).unwrap();
        }
        p.histograms.reconnect_after_heal.record(index + 1).unwrap();
        IntervalRecord {
            index,
            start_ns: index * 1_000_000_000,
            end_ns: (index + 1) * 1_000_000_000,
            last: false,
            unobserved_ns: 0,
            unknown_device_events: 0,
            errors: vec![],
            faults: vec![],
            profiles: [("a".to_string(), p)].into_iter().collect(),
            link_totals: Default::default(),
        }
    }

    fn devices() -> BTreeMap<String, u32> {
        [("a".to_string(), 3)].into_iter().collect()
    }

    #[test]
    fn each_interval_is_a_point_while_there_are_few() {
        let recs: Vec<_> = (0..3)
            .map(|i| record(i, i, &[100 * (i + 1), 1000]))
            .collect();
        let s = series_of(&recs, devices());
        assert_eq!((s.intervals, s.per_point, s.points.len()), (3, 1, 3));
        let p = &s.points[1];
        assert_eq!((p.start_s, p.end_s), (1.0, 2.0));
        assert_eq!(p.profiles["a"].connected, Some(1));
        let e2e = p.profiles["a"].e2e_latency.unwrap();
        assert_eq!((e2e.count, e2e.p50_us, e2e.max_us), (2, 200, 1000));
        assert_eq!(s.reconnect_after_heal["a"].len(), 3);
    }

    #[test]
    fn an_interval_without_samples_has_no_latency_point() {
        let s = series_of(&[record(0, 2, &[])], devices());
        assert_eq!(s.points[0].profiles["a"].e2e_latency, None);
        assert_eq!(s.points[0].profiles["a"].connected, Some(2));
    }

    #[test]
    fn a_long_run_is_merged_to_at_most_max_points_with_exact_percentiles() {
        let n = 2 * MAX_POINTS as u64 + 1;
        let mut b = SeriesBuilder::new(n as usize, devices());
        for i in 0..n {
            // One fast sample each; every third interval also a slow one.
            let samples: &[u64] = if i % 3 == 0 { &[10, 5_000] } else { &[10] };
            b.push(&record(i, i % 4, samples));
        }
        let s = b.finish();
        assert_eq!(s.per_point, 3);
        assert_eq!(s.points.len(), 1 + 2 * MAX_POINTS / 3);
        assert!(s.points.len() <= MAX_POINTS);
        // Point 1 merges intervals 3, 4, 5: the gauge of 5, the samples of all.
        let p = &s.points[1];
        assert_eq!((p.start_s, p.end_s), (3.0, 6.0));
        assert_eq!(p.profiles["a"].connected, Some(5 % 4));
        let e2e = p.profiles["a"].e2e_latency.unwrap();
        assert_eq!(e2e.count, 4);
        assert_eq!(e2e.p50_us, 10);
        assert!(e2e.max_us.abs_diff(5_000) <= 5, "{e2e:?}");
        // 4001 = 3 × 1333 + 2: the last point holds the two left over.
        let last = s.points.last().unwrap();
        assert_eq!((last.start_s, last.end_s), ((n - 2) as f64, n as f64));
        let samples: u64 = s
            .points
            .iter()
            .map(|p| p.profiles["a"].e2e_latency.map_or(0, |e| e.count))
            .sum();
        assert_eq!(samples, n + n.div_ceil(3));
    }

    #[test]
    fn a_late_amendment_joins_its_interval_s_point_as_a_rebuild_would_draw_it() {
        use crate::metrics::interval::{fold, Line, ProfileAmendment};
        let amend = |of: u64, samples: &[u64]| {
            let mut p = ProfileAmendment::default();
            for s in samples {
                p.histograms.e2e_latency.record(*s).unwrap();
            }
            Amendment {
                amends: of,
                start_ns: of * 1_000_000_000,
                end_ns: (of + 1) * 1_000_000_000,
                at_ns: 0,
                profiles: [("a".to_string(), p)].into_iter().collect(),
            }
        };
        for expected in [3, 2 * MAX_POINTS + 1] {
            let mut live = SeriesBuilder::new(expected, devices());
            let mut lines = Vec::new();
            for i in 0..3u64 {
                let cut = Cut {
                    amendments: (i > 0)
                        .then(|| amend(i - 1, &[50_000 * i]))
                        .into_iter()
                        .collect(),
                    interval: record(i, 1, &[100]),
                };
                live.push_cut(&cut);
                lines.extend(cut.lines());
            }
            // A last, very late one, of interval 0.
            let late = amend(0, &[9_000_000]);
            live.amend(&late);
            lines.push(Line::Amendment(late));
            lines.push(Line::Interval(Box::new(record(3, 1, &[]))));
            live.push(&record(3, 1, &[]));
            let live = live.finish();
            let mut rebuilt = SeriesBuilder::new(expected, devices());
            for r in fold(lines).unwrap() {
                rebuilt.push(&r);
            }
            let rebuilt = rebuilt.finish();
            assert_eq!(live.points, rebuilt.points, "{expected} expected");
            let first = live.points[0].profiles["a"].e2e_latency.unwrap();
            assert!(first.max_us >= 9_000_000, "{first:?}");
        }
    }

    #[test]
    fn old_intervals_without_the_gauge_give_no_connected_value() {
        let mut r = record(0, 0, &[1]);
        r.profiles.get_mut("a").unwrap().connected = None;
        let s = series_of(&[r], devices());
        assert_eq!(s.points[0].profiles["a"].connected, None);
    }
}
