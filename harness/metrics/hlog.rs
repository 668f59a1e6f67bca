//! The time-series files of a run directory, written as the run goes and
//! read back by `report::rebuild`:
//!
//! * `run.json` ([`RUN_FILE`]): [`RunInfo`], written once when the run starts.
//! * `intervals.jsonl` ([`INTERVALS_FILE`]): one line per interval
//!   ([`IntervalRecord`], every counter by profile), each preceded by the
//!   amendments its cut made to earlier intervals ([`Amendment`]; see
//!   `metrics::interval` for what they mean).
//! * `<figure>.hlog` ([`hlog_file`]): one HdrHistogram interval log per
//!   duration figure (`e2e_latency.hlog`, `ack_latency.hlog`,
//!   `commands.e2e_latency.hlog`, `commands.ack_latency.hlog`,
//!   `reconnect_after_heal.hlog`), in the standard format other HdrHistogram
//!   tools read (the `hdrhistogram` crate's writer, V2 + deflate, values in
//!   µs). Every line of `intervals.jsonl` writes one histogram per profile
//!   it names, tagged `Tag=<profile>`, empty ones included, so the n-th
//!   group of histograms belongs to the n-th line; the timestamps are
//!   seconds since the run started (`#[StartTime: …]` gives the wall
//!   clock), an amendment's those of the interval it amends, so adding
//!   every histogram of a time slot gives the samples of the subjects that
//!   started in it.
//!
//! Each line is appended histograms first, then the line itself, each file
//! flushed: a run killed at any moment loses at most the cut being written,
//! and the reader takes a cut as complete only once its interval line is in
//! `intervals.jsonl` (a torn last line, histograms without their line, and
//! amendments after the last interval line are ignored).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use super::interval::{fold, Amendment, Cut, Histograms, IntervalRecord, Line, RunInfo};

/// `run.json`.
pub const RUN_FILE: &str = "run.json";
/// `intervals.jsonl`.
pub const INTERVALS_FILE: &str = "intervals.jsonl";

/// The interval log of a duration figure (a name of [`Histograms::NAMES`]).
pub fn hlog_file(figure: &str) -> String {
    format!("{figure}.hlog")
}

/// A time-series file that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum IntervalLogError {
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

fn write_err(path: &Path) -> impl Fn(io::Error) -> IntervalLogError + '_ {
    move |source| IntervalLogError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Write `run.json` into `dir`.
pub fn write_run_info(dir: &Path, info: &RunInfo) -> Result<(), IntervalLogError> {
    let path = dir.join(RUN_FILE);
    let mut w = BufWriter::new(File::create(&path).map_err(write_err(&path))?);
    serde_json::to_writer_pretty(&mut w, info).map_err(|e| write_err(&path)(e.into()))?;
    w.write_all(b"\n").map_err(write_err(&path))?;
    w.flush().map_err(write_err(&path))
}

/// Read `run.json` from `dir`.
pub fn read_run_info(dir: &Path) -> Result<RunInfo, IntervalLogError> {
    let path = dir.join(RUN_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| IntervalLogError::Read {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| IntervalLogError::Parse {
        line: e.line(),
        path,
        message: e.to_string(),
    })
}

/// The writer of `intervals.jsonl` and the `.hlog` files of one run.
pub struct IntervalLog {
    jsonl: (PathBuf, BufWriter<File>),
    hlogs: Vec<(PathBuf, BufWriter<File>)>,
    serializer: V2DeflateSerializer,
}

impl std::fmt::Debug for IntervalLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntervalLog")
            .field("jsonl", &self.jsonl.0)
            .finish_non_exhaustive()
    }
}

impl IntervalLog {
    /// Create (truncate) the files in `dir` and write the histogram logs'
    /// headers. `started` is the run's wall-clock start.
    pub fn create(dir: &Path, started: SystemTime) -> Result<IntervalLog, IntervalLogError> {
        let open = |name: &str| -> Result<(PathBuf, BufWriter<File>), IntervalLogError> {
            let path = dir.join(name);
            let f = File::create(&path).map_err(write_err(&path))?;
            Ok((path, BufWriter::new(f)))
        };
        let jsonl = open(INTERVALS_FILE)?;
        let mut serializer = V2DeflateSerializer::new();
        let mut hlogs = Vec::new();
        for figure in Histograms::NAMES {
            let (path, mut w) = open(&hlog_file(figure))?;
            IntervalLogWriterBuilder::new()
                .add_comment(&format!(
                    "mqtt-chaos {figure} (µs), one histogram per profile (Tag=<profile>) per interval"
                ))
                .with_start_time(started)
                .begin_log_with(&mut w, &mut serializer)
                .map_err(write_err(&path))?;
            w.write_all(
                b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
            )
            .and_then(|_| w.flush())
            .map_err(write_err(&path))?;
            hlogs.push((path, w));
        }
        Ok(IntervalLog {
            jsonl,
            hlogs,
            serializer,
        })
    }

    /// Append what one cut writes: its amendments, then its interval.
    pub fn append_cut(&mut self, cut: &Cut) -> Result<(), IntervalLogError> {
        for a in &cut.amendments {
            self.append_amendment(a)?;
        }
        self.append(&cut.interval)
    }

    /// Append one interval line: its histograms, then its line, each file
    /// flushed.
    pub fn append(&mut self, rec: &IntervalRecord) -> Result<(), IntervalLogError> {
        let histograms: Vec<(&str, &Histograms)> = rec
            .profiles
            .iter()
            .map(|(n, p)| (n.as_str(), &p.histograms))
            .collect();
        self.append_histograms(rec.start(), rec.end(), &histograms)?;
        self.append_json(rec)
    }

    /// Append one amendment line: its histograms, then its line.
    pub fn append_amendment(&mut self, a: &Amendment) -> Result<(), IntervalLogError> {
        let histograms: Vec<(&str, &Histograms)> = a
            .profiles
            .iter()
            .map(|(n, p)| (n.as_str(), &p.histograms))
            .collect();
        self.append_histograms(a.start(), a.end(), &histograms)?;
        self.append_json(a)
    }

    fn append_histograms(
        &mut self,
        start: Duration,
        end: Duration,
        histograms: &[(&str, &Histograms)],
    ) -> Result<(), IntervalLogError> {
        let length = end.saturating_sub(start);
        for (i, (path, w)) in self.hlogs.iter_mut().enumerate() {
            let mut log = IntervalLogWriterBuilder::new()
                .begin_log_with(w, &mut self.serializer)
                .map_err(write_err(path))?;
            for (name, p) in histograms {
                let tag = Tag::new(name).ok_or_else(|| IntervalLogError::Write {
                    path: path.clone(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("profile name \"{name}\" cannot be an interval log tag"),
                    ),
                })?;
                log.write_histogram(p.get(i), start, length, Some(tag))
                    .map_err(|e| IntervalLogError::Write {
                        path: path.clone(),
                        source: io::Error::other(e.to_string()),
                    })?;
            }
            w.flush().map_err(write_err(path))?;
        }
        Ok(())
    }

    fn append_json(&mut self, line: &impl serde::Serialize) -> Result<(), IntervalLogError> {
        let (path, w) = &mut self.jsonl;
        serde_json::to_writer(&mut *w, line).map_err(|e| write_err(path)(e.into()))?;
        w.write_all(b"\n")
            .and_then(|_| w.flush())
            .map_err(write_err(path))
    }
}

/// One histogram of an interval log.
#[derive(Debug, Clone)]
pub struct LoggedHistogram {
    pub tag: Option<String>,
    /// Since the run started (millisecond precision, as written).
    pub start: Duration,
    pub length: Duration,
    pub histogram: Histogram<u64>,
}

/// Every histogram of one interval log, in file order. A torn last line
/// (a run killed while writing it) ends the list without an error.
pub fn read_hlog(path: &Path) -> Result<Vec<LoggedHistogram>, IntervalLogError> {
    let bytes = std::fs::read(path).map_err(|source| IntervalLogError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let line_of = |offset: usize| {
        bytes[..offset.min(bytes.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    };
    let mut out = Vec::new();
    let mut deserializer = Deserializer::new();
    let mut offset_seen = 0usize;
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = match entry {
            Ok(e) => e,
            Err(hdrhistogram::serialization::interval_log::LogIteratorError::ParseError {
                offset,
            }) => {
                let rest = &bytes[offset.min(bytes.len())..];
                if !rest.contains(&b'\n') {
                    break; // torn last line
                }
                return Err(IntervalLogError::Parse {
                    path: path.to_path_buf(),
                    line: line_of(offset),
                    message: "not an interval log line".into(),
                });
            }
        };
        let LogEntry::Interval(h) = entry else {
            continue;
        };
        let encoded = h.encoded_histogram();
        // The entry borrows `bytes`: its offset gives the line for errors.
        let at = encoded.as_ptr() as usize - bytes.as_ptr() as usize;
        offset_seen = offset_seen.max(at);
        let parse = |message: String| IntervalLogError::Parse {
            path: path.to_path_buf(),
            line: line_of(at),
            message,
        };
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| parse(format!("bad base64: {e}")))?;
        let histogram: Histogram<u64> = deserializer
            .deserialize(&mut io::Cursor::new(raw))
            .map_err(|e| parse(format!("bad histogram: {e:?}")))?;
        out.push(LoggedHistogram {
            tag: h.tag().map(|t| t.as_str().to_string()),
            start: h.start_timestamp(),
            length: h.duration(),
            histogram,
        });
    }
    Ok(out)
}

/// Every complete interval of a run directory, histograms filled in from
/// the `.hlog` files and amendments folded in, in order.
pub fn read_intervals(dir: &Path) -> Result<Vec<IntervalRecord>, IntervalLogError> {
    let lines = read_lines(dir)?;
    // `read_lines` checked that every amendment follows its interval.
    fold(lines).map_err(|message| IntervalLogError::Parse {
        path: dir.join(INTERVALS_FILE),
        line: 1,
        message,
    })
}

/// The lines of a run directory's `intervals.jsonl` as written, up to its
/// last complete interval line (a torn last line, and the amendments of a
/// cut that never wrote its interval, left out), histograms filled in from
/// the `.hlog` files. An amendment of an interval that has no line before
/// it is an error.
pub fn read_lines(dir: &Path) -> Result<Vec<Line>, IntervalLogError> {
    let path = dir.join(INTERVALS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| IntervalLogError::Read {
        path: path.clone(),
        source,
    })?;
    let mut records: Vec<Line> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match Line::parse(line) {
            Ok(Line::Amendment(a)) if !seen.contains(&a.amends) => {
                return Err(IntervalLogError::Parse {
                    path,
                    line: i + 1,
                    message: format!(
                        "an amendment of interval {}, which has no line before it",
                        a.amends
                    ),
                })
            }
            Ok(r) => {
                seen.insert(r.interval());
                records.push(r)
            }
            // Killed while writing the last line: that interval is lost.
            Err(_) if i + 1 == lines.len() && !complete => break,
            Err(e) => {
                return Err(IntervalLogError::Parse {
                    path,
                    line: i + 1,
                    message: e.to_string(),
                })
            }
        }
    }
    let complete = records
        .iter()
        .rposition(|r| matches!(r, Line::Interval(_)))
        .map_or(0, |i| i + 1);
    records.truncate(complete);
    for (i, figure) in Histograms::NAMES.iter().enumerate() {
        let path = dir.join(hlog_file(figure));
        let logged = read_hlog(&path)?;
        let mut next = logged.into_iter().enumerate();
        for r in &mut records {
            let (start, _) = r.span();
            let what_line = match r {
                Line::Interval(rec) => format!("interval {}", rec.index),
                Line::Amendment(a) => format!("the amendment of interval {}", a.amends),
            };
            for (name, p) in r.histograms_mut() {
                let mismatch = |n: usize, what: String| IntervalLogError::Parse {
                    path: path.clone(),
                    line: n + 1,
                    message: format!(
                        "histogram {} should be {what_line} of profile {name}, but {what}",
                        n + 1,
                    ),
                };
                let Some((n, h)) = next.next() else {
                    return Err(mismatch(0, "the log ends before it".into()));
                };
                if h.tag.as_deref() != Some(name) {
                    return Err(mismatch(n, format!("its tag is {:?}", h.tag)));
                }
                // Written with millisecond precision.
                if h.start.abs_diff(start) > Duration::from_millis(1) {
                    return Err(mismatch(
                        n,
                        format!("it starts at {:?}, not {:?}", h.start, start),
                    ));
                }
                p.get_mut(i)
                    .add(&h.histogram)
                    .map_err(|e| mismatch(n, format!("it cannot be added: {e:?}")))?;
            }
        }
    }
    Ok(records)
}

/// Serde of a histogram as one string: base64 of HdrHistogram's V2 +
/// deflate encoding (as on the `.hlog` lines), for a histogram inside a
/// JSON line (`#[serde(with = "hlog::base64_histogram")]`). Read back into
/// an auto-resizing [`latency_histogram`](crate::ledger::latency_histogram),
/// so it adds to any other.
pub mod base64_histogram {
    use base64::Engine as _;
    use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
    use hdrhistogram::Histogram;
    use serde::de::Error as _;
    use serde::ser::Error as _;
    use serde::{Deserialize, Serializer};

    pub fn encode(h: &Histogram<u64>) -> Result<String, String> {
        let mut raw = Vec::new();
        V2DeflateSerializer::new()
            .serialize(h, &mut raw)
            .map_err(|e| format!("{e:?}"))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(raw))
    }

    pub fn decode(text: &str) -> Result<Histogram<u64>, String> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("bad base64: {e}"))?;
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut std::io::Cursor::new(raw))
            .map_err(|e| format!("bad histogram: {e:?}"))?;
        let mut out = crate::ledger::latency_histogram();
        out.add(&h).map_err(|e| format!("bad histogram: {e:?}"))?;
        Ok(out)
    }

    pub fn serialize<S: Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(h).map_err(S::Error::custom)?)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        decode(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ledger::latency_histogram;
    use crate::metrics::interval::ProfileInterval;

    fn record(index: u64, samples: &[u64]) -> IntervalRecord {
        let mut profiles = BTreeMap::new();
        for (name, scale) in [("a", 1), ("b", 1000)] {
            let mut p = ProfileInterval::default();
            p.telemetry.sent = samples.len() as i64;
            let mut h = latency_histogram();
            for s in samples {
                h.record(s * scale).unwrap();
            }
            p.histograms.e2e_latency = h;
            profiles.insert(name.to_string(), p);
        }
        IntervalRecord {
            index,
            start_ns: index * 1_000_000_000,
            end_ns: (index + 1) * 1_000_000_000,
            last: false,
            unobserved_ns: 0,
            unknown_device_events: 0,
            errors: vec![],
            faults: vec![],
            profiles,
            link_totals: Default::default(),
        }
    }

    fn written(records: &[IntervalRecord]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut log = IntervalLog::create(dir.path(), SystemTime::UNIX_EPOCH).unwrap();
        for r in records {
            log.append(r).unwrap();
        }
        dir
    }

    #[test]
    fn intervals_read_back_with_their_histograms_bucket_for_bucket() {
        let recs = [
            record(0, &[10, 20, 30]),
            record(1, &[]),
            record(2, &[5_000_000]),
        ];
        let dir = written(&recs);
        let back = read_intervals(dir.path()).unwrap();
        assert_eq!(back.len(), 3);
        for (r, b) in recs.iter().zip(&back) {
            assert_eq!(b.index, r.index);
            for name in ["a", "b"] {
                let (x, y) = (&r.profiles[name], &b.profiles[name]);
                assert_eq!(y.telemetry, x.telemetry);
                for i in 0..Histograms::NAMES.len() {
                    assert_eq!(y.histograms.get(i), x.histograms.get(i), "{name} {i}");
                }
            }
        }
        // One histogram per profile per interval, tagged, in the standard log.
        let logged = read_hlog(&dir.path().join("e2e_latency.hlog")).unwrap();
        let tags: Vec<_> = logged.iter().map(|h| h.tag.clone().unwrap()).collect();
        assert_eq!(tags, ["a", "b", "a", "b", "a", "b"]);
        assert_eq!(logged[4].start, Duration::from_secs(2));
        assert_eq!(logged[4].length, Duration::from_secs(1));
        let text = std::fs::read_to_string(dir.path().join("e2e_latency.hlog")).unwrap();
        assert!(text.starts_with("#mqtt-chaos e2e_latency"), "{text}");
        assert!(text.contains("#[StartTime: 0.000 (seconds since epoch)]"));
    }

    #[test]
    fn a_torn_last_line_and_histograms_without_their_line_are_ignored() {
        // Killed after the histograms of interval 2, halfway through its line.
        let dir = written(&[record(0, &[1]), record(1, &[2]), record(2, &[3])]);
        let jsonl = dir.path().join(INTERVALS_FILE);
        let text = std::fs::read_to_string(&jsonl).unwrap();
        let third = text.lines().nth(2).unwrap();
        let torn = &text[..text.len() - third.len() / 2 - 1];
        assert!(!torn.ends_with('\n'));
        std::fs::write(&jsonl, torn).unwrap();
        let hlog = dir.path().join("e2e_latency.hlog");
        let mut h = std::fs::read_to_string(&hlog).unwrap();
        h.push_str("Tag=a,2.000,1.000,3.000,HISTFAAAAC"); // torn too
        std::fs::write(&hlog, h).unwrap();
        let back = read_intervals(dir.path()).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].profiles["a"].histograms.e2e_latency.len(), 1);
    }

    #[test]
    fn a_broken_line_before_the_end_is_an_error_naming_file_and_line() {
        let dir = written(&[record(0, &[1]), record(1, &[2])]);
        let jsonl = dir.path().join(INTERVALS_FILE);
        let text = std::fs::read_to_string(&jsonl).unwrap();
        std::fs::write(&jsonl, format!("{{\"index\": oops}}\n{text}")).unwrap();
        let e = read_intervals(dir.path()).unwrap_err().to_string();
        assert!(e.contains("intervals.jsonl:1:"), "{e}");
    }

    #[test]
    fn a_histogram_log_out_of_step_with_the_intervals_is_an_error() {
        let dir = written(&[record(0, &[1]), record(1, &[2])]);
        let hlog = dir.path().join("ack_latency.hlog");
        let text = std::fs::read_to_string(&hlog).unwrap();
        // Drop the first histogram line: every later one is off by one.
        let first = text.find("Tag=a").unwrap();
        let end = first + text[first..].find('\n').unwrap() + 1;
        std::fs::write(&hlog, format!("{}{}", &text[..first], &text[end..])).unwrap();
        let e = read_intervals(dir.path()).unwrap_err().to_string();
        assert!(e.contains("ack_latency.hlog"), "{e}");
        assert!(e.contains("profile a"), "{e}");
    }
}
