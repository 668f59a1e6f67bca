//! Parsing scenario files, with every mistake located.
//!
//! Loading is pure apart from reading the file, and runs three passes:
//!
//! 1. **TOML syntax**: toml's recoverable parser reports every syntax error
//!    with a byte span.
//! 2. **Shape** (serde into the types of `mod.rs`): serde stops at the first
//!    error, so when the whole file fails, each profile, fleet and timeline
//!    entry is deserialized on its own to find the mistakes of the others too.
//!    Errors that serde reports against a whole table (the kind-specific keys
//!    of a timeline entry go through `flatten`, which loses positions) are
//!    pinned to the key that causes them.
//! 3. **Rules** (`validate.rs`): they name fields by path
//!    (`profiles.recommended.ping_timeout`, `timeline[2].duration`); the path
//!    is located in the text here.
//!
//! A position is (line, column), both 1-based, the column counted in
//! characters. Every problem is reported, sorted by position.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::de::{DeArray, DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::validate::path_key;
use super::{BrokerSection, FaultSpec, FaultsSection, Fleet, Profile, Scenario};

/// One located mistake in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Path of the field: `profiles.recommended.ping_timeout`, `timeline[2].duration`,
    /// `slo."recommended.zombie_time.p99"`; `(document)` for the file as a whole.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.field,
            self.message
        )
    }
}

/// Why a scenario file cannot be used. Displays one problem per line as
/// `FILE:LINE:COL: FIELD: MESSAGE`, in the order of the file.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{}: cannot read the scenario file: {source}", file.display())]
    Unreadable {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_problems(.problems))]
    Invalid {
        /// Never empty; sorted by position.
        problems: Vec<Problem>,
    },
}

/// Most problems an error displays; the rest are counted on a last line
/// (a mangled file can hold hundreds of thousands).
pub const MAX_PROBLEMS_SHOWN: usize = 100;

fn render_problems(problems: &[Problem]) -> String {
    let mut lines: Vec<String> = problems
        .iter()
        .take(MAX_PROBLEMS_SHOWN)
        .map(Problem::to_string)
        .collect();
    if let Some(last) = problems.get(MAX_PROBLEMS_SHOWN..).and_then(|r| r.last()) {
        lines.push(format!(
            "{}:{}:{}: (document): … and {} more problems",
            last.file.display(),
            last.line,
            last.column,
            problems.len() - MAX_PROBLEMS_SHOWN
        ));
    }
    lines.join("\n")
}

impl ScenarioError {
    /// The located problems (empty when the file could not be read).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ScenarioError::Unreadable { .. } => &[],
            ScenarioError::Invalid { problems } => problems,
        }
    }

    /// Several errors as one (e.g. the runner's broker-dependent checks).
    /// `None` when there are none; an unreadable file wins.
    pub fn join(errors: impl IntoIterator<Item = ScenarioError>) -> Option<ScenarioError> {
        let mut all = Vec::new();
        for e in errors {
            match e {
                ScenarioError::Unreadable { .. } => return Some(e),
                ScenarioError::Invalid { problems } => all.extend(problems),
            }
        }
        sort_problems(&mut all);
        (!all.is_empty()).then_some(ScenarioError::Invalid { problems: all })
    }
}

/// Read, parse and validate a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Unreadable {
        file: path.into(),
        source,
    })?;
    load_str(path, &text)
}

/// Parse and validate scenario text; `path` only names the file in errors.
pub fn load_str(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    let doc = Doc::new(text);
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let mut nodes = Vec::new();
        collect_nodes(Cur::Table(root.get_ref()), &mut Vec::new(), &mut nodes);
        // Locating one costs a look at every key before it: enough of them.
        let problems = syntax
            .iter()
            .take(MAX_SYNTAX_LOCATED)
            .map(|e| {
                let at = e.span().map_or(0, |s| s.start);
                let field = doc.field_near(&nodes, at);
                doc.problem(path, at, field, e.message().to_string())
            })
            .collect();
        return Err(finish(problems));
    }

    let scenario = match Scenario::deserialize(toml::de::Deserializer::from(root.clone())) {
        Ok(s) => s,
        Err(first) => {
            let found = shape_problems(&root, first);
            let problems = found
                .into_iter()
                .map(|(at, field, message)| doc.problem(path, at, field, message))
                .collect();
            return Err(finish(problems));
        }
    };

    // Past the bound, `check` refuses the timeline's length alone.
    let keys = if scenario.timeline.len() <= crate::limits::MAX_TIMELINE {
        unconsumed_timeline_keys(&root, &scenario)
    } else {
        Vec::new()
    };
    let mut problems: Vec<Problem> = keys
        .into_iter()
        .map(|(at, field, message)| doc.problem(path, at, field, message))
        .collect();
    for issue in super::validate::check(&scenario) {
        let at = doc.offset_of(&root, &issue.path);
        problems.push(doc.problem(path, at, issue.path, issue.message));
    }
    if problems.is_empty() {
        Ok(scenario)
    } else {
        Err(finish(problems))
    }
}

/// Line and column (1-based) of a field's value, given its path
/// (`profiles.recommended.keepalive`, `fleets[1].count`,
/// `slo."recommended.zombie_time.p99"`). A table written as `[header]` is
/// located at its header. `None` when the text does not hold that field
/// (e.g. it was left to its default) or does not parse.
pub fn locate(text: &str, field_path: &str) -> Option<(usize, usize)> {
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return None;
    }
    let path = parse_path(field_path)?;
    let (matched, span) = find(&root, &path);
    (matched == path.len()).then(|| Doc::new(text).position(span.start))
}

/// A problem the loader cannot see (e.g. one that depends on the chosen
/// broker), located like the loader's own: at the field, or at the nearest
/// enclosing table the text holds when the field was left to its default.
pub fn error_at(
    path: &Path,
    text: &str,
    field_path: &str,
    message: impl Into<String>,
) -> ScenarioError {
    let doc = Doc::new(text);
    let (root, _) = DeTable::parse_recoverable(text);
    let at = doc.offset_of(&root, field_path);
    finish(vec![doc.problem(
        path,
        at,
        field_path.to_string(),
        message.into(),
    )])
}

fn finish(mut problems: Vec<Problem>) -> ScenarioError {
    sort_problems(&mut problems);
    ScenarioError::Invalid { problems }
}

fn sort_problems(problems: &mut Vec<Problem>) {
    problems.sort_by_key(|p| (p.line, p.column));
    problems.dedup();
}

/// The text of a file, for turning byte offsets into positions.
struct Doc<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Doc<'a> {
    fn new(text: &'a str) -> Doc<'a> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Doc { text, line_starts }
    }

    /// (line, column), 1-based, the column in characters.
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, column + 1)
    }

    /// A located problem, its field and message as they may be shown: no
    /// password of a URL, no value quoted in full.
    fn problem(&self, file: &Path, at: usize, field: String, message: String) -> Problem {
        use crate::limits::redact_urls_in;
        let (line, column) = self.position(at);
        Problem {
            file: file.into(),
            line,
            column,
            field: clip(&redact_urls_in(&field), MAX_FIELD_CHARS),
            message: clip(&redact_urls_in(&message), MAX_MESSAGE_CHARS),
        }
    }

    /// Offset of a field's value, or of its nearest enclosing table present in
    /// the text, or 0.
    fn offset_of(&self, root: &Spanned<DeTable<'_>>, field_path: &str) -> usize {
        match parse_path(field_path) {
            Some(path) => find(root, &path).1.start,
            None => 0,
        }
    }

    /// The field a syntax error at `at` belongs to, read from its line: a
    /// header names itself, `key = …` names the key under the table before
    /// it; else the last key the parser recovered before the error.
    fn field_near(&self, nodes: &[Node], at: usize) -> String {
        let line_start = self.line_starts[self.position(at).0 - 1];
        let line = self.text[line_start..].lines().next().unwrap_or("").trim();
        if let Some(header) = line.strip_prefix('[') {
            let name = header.trim_start_matches('[');
            let name = name.split(']').next().unwrap_or(name).trim();
            if !name.is_empty() {
                return name.to_string();
            }
        }
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            if !key.is_empty() && !key.contains(char::is_whitespace) {
                let table = nodes
                    .iter()
                    .filter(|n| n.start < line_start && self.text[n.start..].starts_with('['))
                    .max_by_key(|n| (n.start, n.path.len()));
                return match table {
                    Some(t) => format!("{}.{key}", render_path(&t.path)),
                    None => key.to_string(),
                };
            }
        }
        nodes
            .iter()
            .filter(|n| n.start <= at)
            .max_by_key(|n| (n.start, n.path.len()))
            .map_or_else(|| DOCUMENT.to_string(), |n| render_path(&n.path))
    }
}

/// Syntax errors located and reported; toml recovers from many more in a
/// mangled file, and the first ones say what is wrong.
const MAX_SYNTAX_LOCATED: usize = 1_000;
/// Longest field path a problem shows, in characters.
const MAX_FIELD_CHARS: usize = 256;
/// Longest message a problem shows, in characters.
const MAX_MESSAGE_CHARS: usize = 1024;

/// `text` as a problem shows it: every quoted part (`"…"` or `` `…` ``)
/// longer than [`QUOTE_CHARS`](crate::limits::QUOTE_CHARS) characters cut
/// to that, then the whole to `max` characters, each cut marked `…`. Serde
/// and toml quote offending values in full; a 10 MB name must not come back
/// 10 MB long.
pub(super) fn clip(text: &str, max: usize) -> String {
    use crate::limits::QUOTE_CHARS;
    let mut out = String::with_capacity(text.len().min(max * 4));
    let mut rest = text;
    while let Some(open) = rest.find(['"', '`']) {
        let q = rest[open..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        match after.find(q) {
            Some(close) => {
                let inner = &after[..close];
                match inner.char_indices().nth(QUOTE_CHARS) {
                    Some((cut, _)) => {
                        out.push_str(&inner[..cut]);
                        out.push('…');
                    }
                    None => out.push_str(inner),
                }
                out.push(q);
                rest = &after[close + 1..];
            }
            None => {
                rest = after;
                break;
            }
        }
        if out.len() > max * 4 {
            break;
        }
    }
    out.push_str(rest);
    match out.char_indices().nth(max) {
        Some((cut, _)) => {
            out.truncate(cut);
            out.push('…');
            out
        }
        None => out,
    }
}

/// The field name used for problems of the file as a whole.
const DOCUMENT: &str = "(document)";

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn render_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&path_key(k));
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() {
        out.push_str(DOCUMENT);
    }
    out
}

/// Parse `a.b[2]."c.d"` into segments; `None` when malformed.
fn parse_path(s: &str) -> Option<Vec<Seg>> {
    let mut segs = Vec::new();
    let mut chars = s.chars().peekable();
    let mut expect_key = true;
    while let Some(&c) = chars.peek() {
        match c {
            '.' if !expect_key => {
                chars.next();
                expect_key = true;
            }
            '[' => {
                chars.next();
                let mut n = String::new();
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    n.push(c);
                }
                segs.push(Seg::Index(n.trim().parse().ok()?));
                expect_key = false;
            }
            '"' if expect_key => {
                chars.next();
                let mut k = String::new();
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => k.push(chars.next()?),
                        c => k.push(c),
                    }
                }
                segs.push(Seg::Key(k));
                expect_key = false;
            }
            _ if expect_key => {
                let mut k = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '.' || c == '[' {
                        break;
                    }
                    k.push(c);
                    chars.next();
                }
                if k.is_empty() {
                    return None;
                }
                segs.push(Seg::Key(k));
                expect_key = false;
            }
            _ => return None,
        }
    }
    if expect_key && !segs.is_empty() {
        return None;
    }
    Some(segs)
}

/// Where a walk through the parsed document stands.
#[derive(Clone, Copy)]
enum Cur<'a, 'i> {
    Table(&'a DeTable<'i>),
    Array(&'a DeArray<'i>),
    Leaf,
}

fn cur<'a, 'i>(v: &'a DeValue<'i>) -> Cur<'a, 'i> {
    match v {
        DeValue::Table(t) => Cur::Table(t),
        DeValue::Array(a) => Cur::Array(a),
        _ => Cur::Leaf,
    }
}

/// Follow `path` as far as the document holds it: how many segments matched
/// and the span of the last matched value (the whole document for none).
fn find(root: &Spanned<DeTable<'_>>, path: &[Seg]) -> (usize, Range<usize>) {
    let mut here = Cur::Table(root.get_ref());
    let mut span = root.span();
    for (i, seg) in path.iter().enumerate() {
        let next = match (here, seg) {
            (Cur::Table(t), Seg::Key(k)) => t.get(k.as_str()),
            (Cur::Array(a), Seg::Index(n)) => a.get(*n),
            _ => None,
        };
        match next {
            Some(v) => {
                span = v.span();
                here = cur(v.get_ref());
            }
            None => return (i, span),
        }
    }
    (path.len(), span)
}

/// A key or value of the document, for finding the field at an offset.
struct Node {
    path: Vec<Seg>,
    start: usize,
}

fn collect_nodes(here: Cur<'_, '_>, path: &mut Vec<Seg>, out: &mut Vec<Node>) {
    match here {
        Cur::Table(t) => {
            for (k, v) in t.iter() {
                path.push(Seg::Key(k.get_ref().to_string()));
                out.push(Node {
                    path: path.clone(),
                    start: k.span().start.min(v.span().start),
                });
                collect_nodes(cur(v.get_ref()), path, out);
                path.pop();
            }
        }
        Cur::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                out.push(Node {
                    path: path.clone(),
                    start: v.span().start,
                });
                collect_nodes(cur(v.get_ref()), path, out);
                path.pop();
            }
        }
        Cur::Leaf => {}
    }
}

/// A problem before it is located: byte offset, field path, message.
type Found = (usize, String, String);

/// Every shape (serde) problem of a document that failed to deserialize as a
/// whole with `first`.
fn shape_problems(root: &Spanned<DeTable<'_>>, first: toml::de::Error) -> Vec<Found> {
    let top = root.get_ref();
    let mut found = Vec::new();
    // The collections, element by element; emptied in `rest` when their shape
    // is right, so the whole-file pass below only sees the other keys.
    let mut rest = top.clone();

    if let Some(v) = top.get("profiles") {
        if let DeValue::Table(t) = v.get_ref() {
            for (name, p) in t.iter() {
                let at = vec![
                    Seg::Key("profiles".into()),
                    Seg::Key(name.get_ref().to_string()),
                ];
                element::<Profile>(p, at, &mut found);
            }
            empty(&mut rest, "profiles", DeValue::Table(DeTable::new()));
        }
    }
    for key in ["fleets", "timeline"] {
        if let Some(v) = top.get(key) {
            if let DeValue::Array(a) = v.get_ref() {
                for (i, item) in a.iter().enumerate() {
                    let at = vec![Seg::Key(key.into()), Seg::Index(i)];
                    if key == "fleets" {
                        element::<Fleet>(item, at, &mut found);
                    } else if let Some(spec) = element::<FaultSpec>(item, at, &mut found) {
                        found.extend(unconsumed_keys(item, &spec, i));
                    }
                }
                empty(&mut rest, key, DeValue::Array(DeArray::new()));
            }
        }
    }
    for key in ["broker", "faults"] {
        if let Some(v) = top.get(key) {
            if matches!(v.get_ref(), DeValue::Table(_)) {
                let at = vec![Seg::Key(key.into())];
                if key == "broker" {
                    element::<BrokerSection>(v, at, &mut found);
                } else {
                    element::<FaultsSection>(v, at, &mut found);
                }
                rest.remove(key);
            }
        }
    }

    let rest = Spanned::new(root.span(), rest);
    if let Err(e) = Scenario::deserialize(toml::de::Deserializer::from(rest.clone())) {
        found.push(locate_error(&rest, &[], None, &e));
    }
    if found.is_empty() {
        // Cannot happen unless an element passes alone and fails in context;
        // report serde's own word rather than nothing.
        found.push(locate_error(root, &[], None, &first));
    }
    found
}

fn empty(table: &mut DeTable<'_>, key: &str, with: DeValue<'static>) {
    if let Some(v) = table.get_mut(key) {
        let span = v.span();
        *v = Spanned::new(span, with);
    }
}

/// Deserialize one element on its own; on failure record its problem.
fn element<'i, T: DeserializeOwned>(
    v: &Spanned<DeValue<'i>>,
    at: Vec<Seg>,
    found: &mut Vec<Found>,
) -> Option<T> {
    match T::deserialize(ValueDeserializer::from(v.clone())) {
        Ok(t) => Some(t),
        Err(e) => {
            found.push(locate_error(v, &at, Some(try_without::<T>), &e));
            None
        }
    }
}

/// Deserialize `v` with `key` removed from it (a table): `Ok` or the message.
type Probe = for<'i> fn(&Spanned<DeValue<'i>>, &str) -> Result<(), String>;

fn try_without<T: DeserializeOwned>(v: &Spanned<DeValue<'_>>, key: &str) -> Result<(), String> {
    let DeValue::Table(t) = v.get_ref() else {
        return Err(String::new());
    };
    let mut t = t.clone();
    t.remove(key);
    T::deserialize(ValueDeserializer::from(Spanned::new(
        v.span(),
        DeValue::Table(t),
    )))
    .map(|_| ())
    .map_err(|e| e.message().to_string())
}

/// Turn a serde error found while deserializing `v` (whose path is `at`)
/// into a located problem.
fn locate_error<'i, V>(
    v: &Spanned<V>,
    at: &[Seg],
    probe: Option<Probe>,
    e: &toml::de::Error,
) -> Found
where
    V: AsDeValue<'i>,
{
    let message = e.message().to_string();
    let span = e.span().unwrap_or_else(|| v.span());
    let mut nodes = Vec::new();
    let mut path = at.to_vec();
    let here = v.get_ref().cur();
    // Nodes inside `v` (paths relative to the document, since `at` is its path).
    nodes.push((path.clone(), v.span(), None));
    collect_spans(here, &mut path, &mut nodes);

    // The node the error points at: an exact value or key span, else the
    // deepest node containing it.
    let exact = nodes
        .iter()
        .filter(|(_, vs, ks)| *vs == span || ks.as_ref() == Some(&span))
        .max_by_key(|(p, _, _)| p.len());
    let best = exact.or_else(|| {
        nodes
            .iter()
            .filter(|(_, vs, ks)| {
                vs.contains(&span.start) || ks.as_ref().is_some_and(|k| k.contains(&span.start))
            })
            .max_by_key(|(p, _, _)| p.len())
    });
    let (mut field, mut offset) = match best {
        Some((p, _, _)) => (p.clone(), span.start),
        None => (at.to_vec(), span.start),
    };

    if let Some(missing) = quoted_after(&message, "missing field ") {
        field.push(Seg::Key(missing.to_string()));
        return (offset, render_path(&field), message);
    }

    // serde reported against the whole element: pin it to the key at fault.
    if span == v.span() && field.len() == at.len() {
        if let (Some(t), Some(probe)) = (v.get_ref().table(), probe) {
            if let Some((key, key_span, value_span)) = culprit(t, v, probe, &message) {
                field.push(Seg::Key(key));
                offset = if message.starts_with("unknown field") {
                    key_span.start
                } else {
                    value_span.start
                };
            }
        }
    }
    (offset, render_path(&field), message)
}

/// The key of table `t` that causes `message`: the unknown field it names;
/// else the one key whose removal changes the error (other than into its own
/// "missing field"); else the one key whose value the message quotes.
fn culprit<'i, V: AsDeValue<'i>>(
    t: &DeTable<'i>,
    v: &Spanned<V>,
    probe: Probe,
    message: &str,
) -> Option<(String, Range<usize>, Range<usize>)> {
    let entry = |k: &Spanned<Cow<'i, str>>, val: &Spanned<DeValue<'i>>| {
        (k.get_ref().to_string(), k.span(), val.span())
    };
    if let Some(name) = quoted_after(message, "unknown field ") {
        return t
            .iter()
            .find(|(k, _)| k.get_ref() == name)
            .map(|(k, val)| entry(k, val));
    }
    let whole = Spanned::new(v.span(), DeValue::Table(t.clone()));
    let changed: Vec<_> = t
        .iter()
        .filter(|(k, _)| k.get_ref() != "kind")
        .filter(|(k, _)| match probe(&whole, k.get_ref()) {
            Ok(()) => true,
            Err(m) => m != message && m != format!("missing field `{}`", k.get_ref()),
        })
        .collect();
    if let [(k, val)] = changed.as_slice() {
        return Some(entry(k, val));
    }
    let quoted: Vec<_> = t
        .iter()
        .filter(|(_, val)| {
            renderings(val.get_ref())
                .iter()
                .any(|r| message.contains(r.as_str()))
        })
        .collect();
    match quoted.as_slice() {
        [(k, val)] => Some(entry(k, val)),
        _ => None,
    }
}

/// How serde messages quote a value.
fn renderings(v: &DeValue<'_>) -> Vec<String> {
    match v {
        DeValue::String(s) => vec![format!("\"{s}\""), format!("`{s}`")],
        DeValue::Integer(i) => vec![format!("`{}`", i.as_str())],
        DeValue::Float(x) => vec![format!("`{}`", x.as_str())],
        DeValue::Boolean(b) => vec![format!("`{b}`")],
        _ => Vec::new(),
    }
}

/// `name` in "…prefix`name`…".
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    let rest = rest.strip_prefix('`')?;
    Some(&rest[..rest.find('`')?])
}

/// A field with the span of its value and, for table entries, of its key.
type SpanNode = (Vec<Seg>, Range<usize>, Option<Range<usize>>);

/// Spans of every key and value under `here`.
fn collect_spans(here: Cur<'_, '_>, path: &mut Vec<Seg>, out: &mut Vec<SpanNode>) {
    match here {
        Cur::Table(t) => {
            for (k, v) in t.iter() {
                path.push(Seg::Key(k.get_ref().to_string()));
                out.push((path.clone(), v.span(), Some(k.span())));
                collect_spans(cur(v.get_ref()), path, out);
                path.pop();
            }
        }
        Cur::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                out.push((path.clone(), v.span(), None));
                collect_spans(cur(v.get_ref()), path, out);
                path.pop();
            }
        }
        Cur::Leaf => {}
    }
}

/// The document root is a `DeTable`, every element a `DeValue`.
trait AsDeValue<'i> {
    fn cur(&self) -> Cur<'_, 'i>;
    fn table(&self) -> Option<&DeTable<'i>>;
}

impl<'i> AsDeValue<'i> for DeValue<'i> {
    fn cur(&self) -> Cur<'_, 'i> {
        cur(self)
    }
    fn table(&self) -> Option<&DeTable<'i>> {
        match self {
            DeValue::Table(t) => Some(t),
            _ => None,
        }
    }
}

impl<'i> AsDeValue<'i> for DeTable<'i> {
    fn cur(&self) -> Cur<'_, 'i> {
        Cur::Table(self)
    }
    fn table(&self) -> Option<&DeTable<'i>> {
        Some(self)
    }
}

/// Keys of timeline entries that no field of the entry's kind took (serde
/// ignores extra keys of kinds without fields, such as `half_open`).
fn unconsumed_timeline_keys(root: &Spanned<DeTable<'_>>, s: &Scenario) -> Vec<Found> {
    let Some(DeValue::Array(items)) = root.get_ref().get("timeline").map(|v| v.get_ref()) else {
        return Vec::new();
    };
    items
        .iter()
        .zip(&s.timeline)
        .enumerate()
        .flat_map(|(i, (item, spec))| unconsumed_keys(item, spec, i))
        .collect()
}

fn unconsumed_keys(item: &Spanned<DeValue<'_>>, spec: &FaultSpec, index: usize) -> Vec<Found> {
    let DeValue::Table(t) = item.get_ref() else {
        return Vec::new();
    };
    let known = fault_keys(spec);
    t.iter()
        .filter(|(k, _)| !known.iter().any(|n| n == k.get_ref().as_ref()))
        .map(|(k, _)| {
            let path = vec![
                Seg::Key("timeline".into()),
                Seg::Index(index),
                Seg::Key(k.get_ref().to_string()),
            ];
            (
                k.span().start,
                render_path(&path),
                format!(
                    "unknown field `{}` for kind `{}`, expected one of {}",
                    k.get_ref(),
                    spec.kind.name(),
                    known
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
        .collect()
}

/// Every key a timeline entry of this kind may have (serialized with all
/// optional fields present, so the list cannot drift from `FaultKind`).
pub(super) fn fault_keys(spec: &FaultSpec) -> Vec<String> {
    let mut full = spec.clone();
    full.target = Some(String::new());
    full.duration = Some(std::time::Duration::ZERO);
    full.kind = with_optional_fields(full.kind);
    match toml::Value::try_from(&full) {
        Ok(toml::Value::Table(t)) => t.keys().cloned().collect(),
        _ => vec![
            "at".into(),
            "duration".into(),
            "target".into(),
            "kind".into(),
        ],
    }
}

fn with_optional_fields(kind: super::FaultKind) -> super::FaultKind {
    use super::FaultKind::*;
    let some = Some(0.0);
    match kind {
        Latency {
            latency,
            jitter,
            stream,
            ..
        } => Latency {
            latency,
            jitter,
            stream,
            toxicity: some,
        },
        Bandwidth { rate, stream, .. } => Bandwidth {
            rate,
            stream,
            toxicity: some,
        },
        Blackhole { stream, .. } => Blackhole {
            stream,
            toxicity: some,
        },
        ResetPeer {
            timeout, stream, ..
        } => ResetPeer {
            timeout,
            stream,
            toxicity: some,
        },
        SlowClose { delay, stream, .. } => SlowClose {
            delay,
            stream,
            toxicity: some,
        },
        Slicer {
            average_size,
            size_variation,
            delay,
            stream,
            ..
        } => Slicer {
            average_size,
            size_variation,
            delay,
            stream,
            toxicity: some,
        },
        LimitData { bytes, stream, .. } => LimitData {
            bytes,
            stream,
            toxicity: some,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_through_text() {
        for p in [
            "profiles.recommended.ping_timeout",
            "timeline[2].duration",
            "fleets[0].streams[1].topic",
            "slo.\"recommended.zombie_time.p99\"",
        ] {
            assert_eq!(render_path(&parse_path(p).unwrap()), p);
        }
        assert_eq!(parse_path("a..b"), None);
        assert_eq!(parse_path("a[x]"), None);
        assert_eq!(parse_path("a."), None);
    }

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let doc = Doc::new("a = 1\nµ = \"x\"\n");
        assert_eq!(doc.position(0), (1, 1));
        assert_eq!(doc.position(6), (2, 1));
        // "µ" is two bytes, one character.
        assert_eq!(doc.position(9), (2, 3));
    }

    #[test]
    fn long_quoted_values_are_clipped_and_short_ones_kept() {
        let short =
            "unknown field `keepalive_timeout`, expected one of `keepalive`, `ping_timeout`";
        assert_eq!(clip(short, 1024), short);
        let long = format!(
            "invalid type: string \"{}\", expected u32",
            "x".repeat(10_000_000)
        );
        let c = clip(&long, 1024);
        assert_eq!(
            c,
            format!("invalid type: string \"{}…\", expected u32", "x".repeat(64))
        );
        // An unpaired quote: the whole is still cut.
        let c = clip(&format!("a \"{}", "é".repeat(5000)), 100);
        assert_eq!(c.chars().count(), 101);
        assert!(c.ends_with('…'));
        assert_eq!(clip("", 10), "");
    }

    #[test]
    fn quoted_names_are_found_in_serde_messages() {
        assert_eq!(
            quoted_after("missing field `latency`", "missing field "),
            Some("latency")
        );
        assert_eq!(quoted_after("unknown variant `x`", "missing field "), None);
    }
}
