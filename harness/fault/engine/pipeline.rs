//! One direction of one relayed connection, as a state machine without I/O:
//! chunks go in with the time they were read, pass the toxics of their
//! stream in creation order, and come out as data to write or as the close
//! of the destination.
//!
//! Toxiproxy runs one goroutine per toxic joined by channels; here one
//! queue is worked head first, each piece remembering the last toxic it
//! passed (`passed`, a toxic id; ids grow in creation order). That makes a
//! live change one [`Pipeline::sync`]: a new toxic joins the chain of every
//! piece that has not yet reached the end, a removed one is skipped, and a
//! piece waiting in a removed or updated toxic is let through at once (the
//! flush Toxiproxy's interrupt gives). Latency waits for `read time +
//! delay`, so a stream of chunks keeps its rate.
//!
//! A close is Toxiproxy's `stub.Close()`: an end-of-stream piece that leaves
//! the toxic that closed and still passes the toxics after it (a later
//! `slow_close` delays it).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;

use super::toxics;
use super::{ToxicEntry, Toxics};
use crate::fault::{Stream, ToxicKind};

/// How many read chunks one direction holds before it stops reading (the
/// buffer Toxiproxy gives a latency toxic); with 32 KiB reads this bounds a
/// direction at 32 MiB.
pub(crate) const QUEUE_CHUNKS: usize = 1024;

/// What leaves the pipeline.
#[derive(Debug, PartialEq)]
pub(crate) enum Output {
    Data(Bytes),
    /// Close the destination. `unread`: data from the source was left
    /// unread when a `reset_peer` fired, so the kernel would answer the
    /// source with RST.
    Close {
        unread: bool,
    },
}

#[derive(Debug)]
enum Body {
    Data(Bytes),
    Eof { unread: bool },
}

#[derive(Debug)]
struct Piece {
    body: Body,
    /// When it was read, moved on by every latency it passed.
    ts: Instant,
    /// The id of the last toxic it passed (0: none).
    passed: u64,
    /// Set on the slices a slicer cut, so that slicer only delays them.
    sliced_by: Option<u64>,
}

/// The state one toxic keeps on one direction of one connection.
#[derive(Debug)]
struct Stage {
    version: u64,
    /// The toxicity roll of this (connection, toxic) pair.
    applies: bool,
    /// `timeout`: when data last reached it (or it joined).
    last_data: Instant,
    /// `bandwidth`: when the link is free to send again.
    free_at: Instant,
    /// `limit_data`: bytes passed since it joined.
    sent: u64,
}

/// The head piece waiting in toxic `id` until `until`.
#[derive(Debug, Clone, Copy)]
struct Wait {
    id: u64,
    until: Instant,
}

/// One direction's toxic pipeline.
#[derive(Debug)]
pub(crate) struct Pipeline {
    stream: Stream,
    /// This stream's toxics, in creation order.
    chain: Vec<ToxicEntry>,
    stages: HashMap<u64, Stage>,
    queue: VecDeque<Piece>,
    wait: Option<Wait>,
    /// A `reset_peer` has been triggered: close at this time, after this toxic.
    reset_at: Option<(Instant, u64)>,
    /// An end of stream is in the queue: no more input.
    closing: bool,
    /// The close has left the pipeline.
    done: bool,
    /// Toxics with an id from here on were added after this connection
    /// started.
    born: u64,
}

impl Pipeline {
    /// A pipeline for a connection accepted at `now`, with the toxics that
    /// exist then.
    pub(crate) fn new(
        stream: Stream,
        toxics: &Toxics,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Pipeline {
        let mut p = Pipeline {
            stream,
            chain: Vec::new(),
            stages: HashMap::new(),
            queue: VecDeque::new(),
            wait: None,
            reset_at: None,
            closing: false,
            done: false,
            born: toxics.seq,
        };
        p.sync(toxics, now, rng);
        p
    }

    /// True while the source should be read: always until the close (data
    /// read while closing is dropped, as a closed stub discards it), except
    /// when the queue is full.
    pub(crate) fn wants_input(&self) -> bool {
        !self.done && (self.closing || self.queue.len() < QUEUE_CHUNKS)
    }

    /// True while a chunk read now would leave at once, untouched: no toxic
    /// on this stream, nothing queued, no close under way. The link then
    /// writes it straight on ([`super::link`]'s fast path), as this
    /// pipeline would on its next poll.
    pub(crate) fn is_passthrough(&self) -> bool {
        self.chain.is_empty() && self.queue.is_empty() && !self.closing && !self.done
    }

    /// True once the close has left the pipeline.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// A chunk read from the source at `now`.
    pub(crate) fn push(&mut self, data: Bytes, now: Instant) {
        if self.closing || self.done || data.is_empty() {
            return;
        }
        self.queue.push_back(Piece {
            body: Body::Data(data),
            ts: now,
            passed: 0,
            sliced_by: None,
        });
    }

    /// The source ended (EOF, error, or closed by the other direction).
    pub(crate) fn push_eof(&mut self, now: Instant) {
        if self.closing || self.done {
            return;
        }
        self.closing = true;
        self.queue.push_back(Piece {
            body: Body::Eof { unread: false },
            ts: now,
            passed: 0,
            sliced_by: None,
        });
    }

    /// Bring the toxics up to date with the proxy's list: new ones join
    /// (with a fresh toxicity roll), updated ones re-roll and let their
    /// waiting piece through, removed ones are skipped and a removed
    /// `timeout` closes the connection (Toxiproxy's `Cleanup`).
    pub(crate) fn sync(&mut self, toxics: &Toxics, now: Instant, rng: &mut impl Rng) {
        // A timeout added after this connection last looked and removed
        // before it looked again: it joined and left in between, and its
        // removal closes (the watch keeps only the latest list).
        let missed = toxics
            .cleaned
            .iter()
            .find(|&&(id, stream)| {
                stream == self.stream && id >= self.born && !self.stages.contains_key(&id)
            })
            .map(|c| c.0);
        let mine: Vec<ToxicEntry> = toxics
            .entries
            .iter()
            .filter(|e| e.toxic.stream == self.stream)
            .cloned()
            .collect();
        let removed: Vec<ToxicEntry> = self
            .chain
            .iter()
            .filter(|old| !mine.iter().any(|e| e.id == old.id))
            .cloned()
            .collect();
        for e in &mine {
            match self.stages.get_mut(&e.id) {
                None => {
                    self.stages.insert(
                        e.id,
                        Stage {
                            version: e.version,
                            applies: toxics::rolls(rng, e.toxic.toxicity),
                            last_data: now,
                            free_at: now,
                            sent: 0,
                        },
                    );
                }
                Some(st) if st.version != e.version => {
                    st.version = e.version;
                    st.applies = toxics::rolls(rng, e.toxic.toxicity);
                    st.last_data = now;
                    if let Some(w) = self.wait.filter(|w| w.id == e.id) {
                        self.wait = None;
                        if let Some(head) = self.queue.front_mut() {
                            head.passed = w.id;
                        }
                    }
                }
                Some(_) => {}
            }
        }
        self.chain = mine;
        for old in removed {
            self.stages.remove(&old.id);
            if self.wait.is_some_and(|w| w.id == old.id) {
                self.wait = None;
            }
            if matches!(old.toxic.kind, ToxicKind::Timeout { .. }) && !self.done {
                self.close_after(old.id, false);
            }
        }
        if let Some(id) = missed {
            if !self.done {
                self.close_after(id, false);
            }
        }
        self.born = self.born.max(toxics.seq);
    }

    /// Replace everything queued by a close that leaves toxic `id`.
    fn close_after(&mut self, id: u64, unread: bool) {
        self.queue.clear();
        self.wait = None;
        self.reset_at = None;
        self.closing = true;
        self.queue.push_back(Piece {
            body: Body::Eof { unread },
            ts: Instant::now(),
            passed: id,
            sliced_by: None,
        });
    }

    /// The earliest `timeout` deadline, and the id of a toxic already past
    /// it.
    fn timeouts(&self, now: Instant) -> (Option<Instant>, Option<u64>) {
        if self.closing {
            return (None, None);
        }
        let mut next: Option<Instant> = None;
        for e in &self.chain {
            let ToxicKind::Timeout { timeout } = e.toxic.kind else {
                continue;
            };
            let Some(st) = self.stages.get(&e.id) else {
                continue;
            };
            if timeout == 0 || !st.applies {
                continue;
            }
            let at = st.last_data + Duration::from_millis(timeout);
            if now >= at {
                return (None, Some(e.id));
            }
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        (next, None)
    }

    /// Move pieces along as far as they can go at `now`, appending what
    /// leaves to `out`. Returns when to call again if nothing else happens
    /// (`None`: only new input or a toxic change can move it).
    pub(crate) fn poll(
        &mut self,
        now: Instant,
        rng: &mut impl Rng,
        out: &mut Vec<Output>,
    ) -> Option<Instant> {
        loop {
            if self.done {
                return None;
            }
            let (timer, fired) = self.timeouts(now);
            if let Some(id) = fired {
                self.close_after(id, false);
                continue;
            }
            if let Some((at, id)) = self.reset_at {
                if now >= at {
                    let unread = self.queue.iter().any(|p| matches!(p.body, Body::Data(_)));
                    self.close_after(id, unread);
                    continue;
                }
                return Some(earliest(Some(at), timer));
            }
            let Some(head) = self.queue.front_mut() else {
                return timer;
            };
            let Some(entry) = self.chain.iter().find(|e| e.id > head.passed) else {
                let piece = self.queue.pop_front().expect("the head exists");
                self.wait = None;
                match piece.body {
                    Body::Data(b) => out.push(Output::Data(b)),
                    Body::Eof { unread } => {
                        out.push(Output::Close { unread });
                        self.done = true;
                    }
                }
                continue;
            };
            let id = entry.id;
            let stage = self.stages.get_mut(&id).expect("every toxic has a stage");
            if !stage.applies {
                head.passed = id;
                continue;
            }
            let is_eof = matches!(head.body, Body::Eof { .. });
            // How long the head waits in this toxic, decided on arrival.
            let arrival: Option<Duration>;
            match entry.toxic.kind {
                ToxicKind::Latency { latency, jitter } => {
                    if is_eof {
                        head.passed = id;
                        continue;
                    }
                    arrival = None;
                    if self.wait.is_none_or(|w| w.id != id) {
                        let until = head.ts + toxics::latency_delay(rng, latency, jitter);
                        self.wait = Some(Wait { id, until });
                    }
                }
                ToxicKind::Bandwidth { rate } => {
                    if is_eof || rate == 0 {
                        head.passed = id;
                        continue;
                    }
                    arrival = None;
                    if self.wait.is_none_or(|w| w.id != id) {
                        let Body::Data(data) = &mut head.body else {
                            unreachable!("checked above")
                        };
                        let max = toxics::bandwidth_slice(rate);
                        if data.len() > max {
                            let rest = data.split_off(max);
                            let rest = Piece {
                                body: Body::Data(rest),
                                ts: head.ts,
                                passed: head.passed,
                                sliced_by: head.sliced_by,
                            };
                            let len = data.len();
                            let until = stage.free_at.max(now) + toxics::bandwidth_time(len, rate);
                            stage.free_at = until;
                            self.wait = Some(Wait { id, until });
                            self.queue.insert(1, rest);
                        } else {
                            let until =
                                stage.free_at.max(now) + toxics::bandwidth_time(data.len(), rate);
                            stage.free_at = until;
                            self.wait = Some(Wait { id, until });
                        }
                    }
                }
                ToxicKind::SlowClose { delay } => {
                    if !is_eof {
                        head.passed = id;
                        continue;
                    }
                    arrival = Some(Duration::from_millis(delay));
                }
                ToxicKind::Timeout { .. } => {
                    if is_eof {
                        head.passed = id;
                        continue;
                    }
                    stage.last_data = now;
                    self.queue.pop_front();
                    continue;
                }
                ToxicKind::ResetPeer { timeout } => {
                    // The trigger (data or the end) is swallowed; whatever
                    // follows stays unread until the reset.
                    self.queue.pop_front();
                    self.reset_at = Some((now + Duration::from_millis(timeout), id));
                    continue;
                }
                ToxicKind::Slicer {
                    average_size,
                    size_variation,
                    delay,
                } => {
                    if is_eof {
                        head.passed = id;
                        continue;
                    }
                    if head.sliced_by != Some(id) {
                        let Some(piece) = self.queue.pop_front() else {
                            unreachable!("the head exists")
                        };
                        let Body::Data(mut data) = piece.body else {
                            unreachable!("checked above")
                        };
                        let plan =
                            toxics::slice_plan(rng, data.len(), average_size, size_variation);
                        for size in plan.into_iter().rev() {
                            let slice = data.split_off(data.len() - size);
                            self.queue.push_front(Piece {
                                body: Body::Data(slice),
                                ts: piece.ts,
                                passed: piece.passed,
                                sliced_by: Some(id),
                            });
                        }
                        continue;
                    }
                    arrival = Some(Duration::from_micros(delay));
                }
                ToxicKind::LimitData { bytes } => {
                    let Body::Data(data) = &mut head.body else {
                        head.passed = id;
                        continue;
                    };
                    let (take, close) = toxics::limit_take(data.len(), bytes, stage.sent);
                    stage.sent += take as u64;
                    if take == 0 {
                        self.queue.pop_front();
                        self.close_after(id, false);
                        continue;
                    }
                    data.truncate(take);
                    head.passed = id;
                    if close {
                        self.queue.truncate(1);
                        self.queue.push_back(Piece {
                            body: Body::Eof { unread: false },
                            ts: now,
                            passed: id,
                            sliced_by: None,
                        });
                        self.closing = true;
                    }
                    continue;
                }
            }
            if let Some(d) = arrival {
                if self.wait.is_none_or(|w| w.id != id) {
                    self.wait = Some(Wait { id, until: now + d });
                }
            }
            let w = self.wait.expect("a wait was just set");
            if now >= w.until {
                let head = self.queue.front_mut().expect("the head exists");
                if matches!(entry.toxic.kind, ToxicKind::Latency { .. }) {
                    head.ts = w.until;
                }
                head.passed = id;
                self.wait = None;
                continue;
            }
            return Some(earliest(Some(w.until), timer));
        }
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Instant {
    match (a, b) {
        (Some(a), Some(b)) => a.min(b),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => unreachable!("called with at least one time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::Toxic;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const MS: Duration = Duration::from_millis(1);

    fn entry(id: u64, kind: ToxicKind, stream: Stream) -> ToxicEntry {
        ToxicEntry {
            id,
            version: id,
            toxic: Toxic::new(kind, stream),
        }
    }

    fn data(out: &[Output]) -> Vec<u8> {
        out.iter()
            .flat_map(|o| match o {
                Output::Data(b) => b.to_vec(),
                Output::Close { .. } => Vec::new(),
            })
            .collect()
    }

    fn toxics(entries: &[ToxicEntry]) -> Toxics {
        Toxics {
            entries: entries.to_vec(),
            cleaned: Default::default(),
            seq: entries.iter().map(|e| e.id + 1).max().unwrap_or(1),
        }
    }

    struct Bench {
        p: Pipeline,
        rng: ChaCha8Rng,
        t0: Instant,
        out: Vec<Output>,
    }

    impl Bench {
        fn new(chain: &[ToxicEntry]) -> Bench {
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let t0 = Instant::now();
            let p = Pipeline::new(Stream::Downstream, &toxics(chain), t0, &mut rng);
            Bench {
                p,
                rng,
                t0,
                out: Vec::new(),
            }
        }
        fn at(&self, ms: u64) -> Instant {
            self.t0 + MS * u32::try_from(ms).unwrap()
        }
        fn push(&mut self, ms: u64, bytes: &[u8]) {
            let t = self.at(ms);
            self.p.push(Bytes::copy_from_slice(bytes), t);
        }
        fn poll(&mut self, ms: u64) -> Option<Instant> {
            let t = self.at(ms);
            self.p.poll(t, &mut self.rng, &mut self.out)
        }
        fn sync(&mut self, ms: u64, chain: &[ToxicEntry]) {
            let t = self.at(ms);
            self.p.sync(&toxics(chain), t, &mut self.rng);
        }
    }

    #[test]
    fn without_toxics_data_passes_at_once() {
        let mut b = Bench::new(&[]);
        b.push(0, b"abc");
        assert_eq!(b.poll(0), None);
        assert_eq!(data(&b.out), b"abc");
    }

    #[test]
    fn latency_delays_each_chunk_from_its_read_time_so_a_stream_keeps_its_rate() {
        let lat = entry(
            1,
            ToxicKind::Latency {
                latency: 100,
                jitter: 0,
            },
            Stream::Downstream,
        );
        let mut b = Bench::new(&[lat]);
        b.push(0, b"a");
        b.push(10, b"b");
        assert_eq!(b.poll(10), Some(b.at(100)));
        assert!(b.out.is_empty());
        assert_eq!(b.poll(100), Some(b.at(110)));
        assert_eq!(data(&b.out), b"a");
        assert_eq!(b.poll(110), None);
        assert_eq!(data(&b.out), b"ab");
    }

    #[test]
    fn a_toxic_of_the_other_stream_does_nothing_here() {
        let lat = entry(
            1,
            ToxicKind::Latency {
                latency: 100,
                jitter: 0,
            },
            Stream::Upstream,
        );
        let mut b = Bench::new(&[lat]);
        b.push(0, b"a");
        assert_eq!(b.poll(0), None);
        assert_eq!(data(&b.out), b"a");
    }

    #[test]
    fn removing_latency_flushes_everything_queued() {
        let lat = entry(
            1,
            ToxicKind::Latency {
                latency: 1000,
                jitter: 0,
            },
            Stream::Downstream,
        );
        let mut b = Bench::new(&[lat]);
        for i in 0..5u8 {
            b.push(u64::from(i) * 20, &[i]);
        }
        b.poll(100);
        assert!(b.out.is_empty());
        b.sync(100, &[]);
        assert_eq!(b.poll(100), None);
        assert_eq!(data(&b.out), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_toxic_added_later_applies_to_data_not_yet_out() {
        let mut b = Bench::new(&[]);
        let lat = entry(
            1,
            ToxicKind::Latency {
                latency: 50,
                jitter: 0,
            },
            Stream::Downstream,
        );
        b.sync(0, &[lat]);
        b.push(5, b"x");
        assert_eq!(b.poll(5), Some(b.at(55)));
        assert!(b.out.is_empty());
    }

    #[test]
    fn toxics_chain_in_creation_order() {
        // limit_data first, then latency: the truncated data is delayed and
        // the close follows it through the latency toxic at once.
        let limit = entry(1, ToxicKind::LimitData { bytes: 3 }, Stream::Downstream);
        let lat = entry(
            2,
            ToxicKind::Latency {
                latency: 10,
                jitter: 0,
            },
            Stream::Downstream,
        );
        let mut b = Bench::new(&[limit, lat]);
        b.push(0, b"abcdef");
        assert_eq!(b.poll(0), Some(b.at(10)));
        assert!(b.out.is_empty());
        assert_eq!(b.poll(10), None);
        assert_eq!(
            b.out,
            vec![
                Output::Data(Bytes::from_static(b"abc")),
                Output::Close { unread: false }
            ]
        );
    }

    #[test]
    fn timeout_drops_data_and_closes_after_silence_restarting_on_each_chunk() {
        let t = entry(1, ToxicKind::Timeout { timeout: 100 }, Stream::Downstream);
        let mut b = Bench::new(&[t]);
        assert_eq!(b.poll(0), Some(b.at(100)));
        b.push(60, b"dropped");
        assert_eq!(b.poll(60), Some(b.at(160)));
        assert!(b.out.is_empty());
        assert_eq!(b.poll(159), Some(b.at(160)));
        assert_eq!(b.poll(160), None);
        assert_eq!(b.out, vec![Output::Close { unread: false }]);
        assert!(b.p.is_done());
    }

    #[test]
    fn timeout_zero_drops_forever_but_passes_the_end_of_stream() {
        let t = entry(1, ToxicKind::Timeout { timeout: 0 }, Stream::Downstream);
        let mut b = Bench::new(&[t]);
        b.push(0, b"x");
        assert_eq!(b.poll(100_000), None);
        assert!(b.out.is_empty());
        b.p.push_eof(b.at(100_001));
        b.poll(100_001);
        assert_eq!(b.out, vec![Output::Close { unread: false }]);
    }

    #[test]
    fn removing_a_timeout_closes_even_while_it_only_drops() {
        let t = entry(1, ToxicKind::Timeout { timeout: 0 }, Stream::Downstream);
        let mut b = Bench::new(&[t]);
        b.sync(5, &[]);
        b.poll(5);
        assert_eq!(b.out, vec![Output::Close { unread: false }]);
    }

    #[test]
    fn reset_peer_waits_for_data_then_its_timeout_and_drops_the_trigger() {
        let r = entry(1, ToxicKind::ResetPeer { timeout: 50 }, Stream::Downstream);
        let mut b = Bench::new(&[r]);
        assert_eq!(b.poll(10_000), None, "idle: nothing happens");
        b.push(10_000, b"trigger");
        assert_eq!(b.poll(10_000), Some(b.at(10_050)));
        assert_eq!(b.poll(10_050), None);
        assert_eq!(b.out, vec![Output::Close { unread: false }]);
    }

    #[test]
    fn reset_peer_reports_data_left_unread() {
        let r = entry(1, ToxicKind::ResetPeer { timeout: 50 }, Stream::Downstream);
        let mut b = Bench::new(&[r]);
        b.push(0, b"trigger");
        b.poll(0);
        b.push(20, b"more");
        b.poll(20);
        b.poll(50);
        assert_eq!(b.out, vec![Output::Close { unread: true }]);
    }

    #[test]
    fn a_timeout_added_and_removed_between_two_looks_still_closes() {
        let mut b = Bench::new(&[]);
        let mut later = toxics(&[]);
        later.cleaned.push_back((5, Stream::Downstream));
        later.seq = 6;
        b.p.sync(&later, b.at(1), &mut b.rng);
        b.poll(1);
        assert_eq!(b.out, vec![Output::Close { unread: false }]);
    }

    #[test]
    fn a_timeout_removed_before_the_connection_started_does_not_close_it() {
        let mut old = toxics(&[]);
        old.cleaned.push_back((1, Stream::Downstream));
        old.seq = 2;
        let mut b = Bench::new(&[]);
        b.p = Pipeline::new(Stream::Downstream, &old, b.t0, &mut b.rng);
        b.p.sync(&old, b.at(1), &mut b.rng);
        b.push(2, b"a");
        b.poll(2);
        assert_eq!(data(&b.out), b"a");
    }

    #[test]
    fn slow_close_delays_only_the_close() {
        let s = entry(1, ToxicKind::SlowClose { delay: 30 }, Stream::Downstream);
        let mut b = Bench::new(&[s]);
        b.push(0, b"a");
        b.p.push_eof(b.at(0));
        assert_eq!(b.poll(0), Some(b.at(30)));
        assert_eq!(b.out, vec![Output::Data(Bytes::from_static(b"a"))]);
        b.poll(30);
        assert_eq!(b.out.last(), Some(&Output::Close { unread: false }));
    }

    #[test]
    fn slicer_cuts_into_slices_each_after_its_delay() {
        let s = entry(
            1,
            ToxicKind::Slicer {
                average_size: 10,
                size_variation: 5,
                delay: 20_000,
            },
            Stream::Downstream,
        );
        let mut b = Bench::new(&[s]);
        let payload: Vec<u8> = (0..218u32).map(|i| i as u8).collect();
        b.push(0, &payload);
        let mut now = 0;
        let mut polls = 0;
        while let Some(next) = b.poll(now) {
            now = (next - b.t0).as_millis() as u64;
            polls += 1;
            assert!(polls < 100);
        }
        assert_eq!(data(&b.out), payload);
        let slices = b.out.len() as u64;
        assert!(slices > 10, "{slices} slices");
        assert_eq!(now, 20 * slices, "each slice waits 20 ms");
    }

    #[test]
    fn bandwidth_paces_and_removal_releases_the_rest() {
        let bw = entry(1, ToxicKind::Bandwidth { rate: 10 }, Stream::Downstream);
        let mut b = Bench::new(&[bw]);
        b.push(0, &[7u8; 5000]);
        // 10 KB/s: 1000-byte slices, 100 ms each.
        assert_eq!(b.poll(0), Some(b.at(100)));
        b.poll(100);
        assert_eq!(data(&b.out).len(), 1000);
        b.sync(150, &[]);
        b.poll(150);
        assert_eq!(data(&b.out).len(), 5000);
    }

    #[test]
    fn limit_data_counts_from_when_it_joined() {
        let mut b = Bench::new(&[]);
        b.push(0, &[1u8; 50]);
        b.poll(0);
        let l = entry(1, ToxicKind::LimitData { bytes: 20 }, Stream::Downstream);
        b.sync(1, &[l]);
        b.push(2, &[2u8; 15]);
        b.push(3, &[3u8; 15]);
        b.poll(3);
        let bytes = data(&b.out);
        assert_eq!(bytes.len(), 50 + 20);
        assert_eq!(b.out.last(), Some(&Output::Close { unread: false }));
    }

    #[test]
    fn a_toxic_with_toxicity_zero_does_nothing() {
        let mut lat = entry(
            1,
            ToxicKind::Latency {
                latency: 100,
                jitter: 0,
            },
            Stream::Downstream,
        );
        lat.toxic.toxicity = 0.0;
        let mut b = Bench::new(&[lat]);
        b.push(0, b"a");
        b.poll(0);
        assert_eq!(data(&b.out), b"a");
    }

    #[test]
    fn updating_latency_lets_the_waiting_chunk_through() {
        let lat = entry(
            1,
            ToxicKind::Latency {
                latency: 1000,
                jitter: 0,
            },
            Stream::Downstream,
        );
        let mut b = Bench::new(std::slice::from_ref(&lat));
        b.push(0, b"a");
        b.push(0, b"b");
        b.poll(0);
        let mut upd = lat;
        upd.version = 2;
        upd.toxic.kind = ToxicKind::Latency {
            latency: 100,
            jitter: 0,
        };
        b.sync(10, &[upd]);
        assert_eq!(b.poll(10), Some(b.at(100)));
        assert_eq!(data(&b.out), b"a");
        b.poll(100);
        assert_eq!(data(&b.out), b"ab");
    }
}
