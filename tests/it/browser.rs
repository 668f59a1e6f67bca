//! A report page as a reader sees it: `report.html` loaded in a real
//! headless Chromium (Debian's `chromium`), measured from inside the page
//! (`browser/check.html` loads it in a frame of one screen's size and
//! reports what the layout engine computed), and a screenshot of its first
//! screen.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use crate::support;

/// One screen: what a reader sees before scrolling.
pub const SCREEN: (u32, u32) = (1280, 900);

/// The Chromium binary, if installed.
pub fn chromium() -> Option<PathBuf> {
    for p in [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ] {
        let p = PathBuf::from(p);
        if p.exists() {
            return Some(p);
        }
    }
    support::skip_or_fail("chromium")?;
    None
}

/// What the check page measured.
#[derive(Debug, Deserialize)]
pub struct Layout {
    pub viewport: f64,
    /// The page's full width: more than `viewport` is a horizontal scroll.
    pub scroll_width: f64,
    /// Elements reaching past the right edge of the screen.
    pub overflowing: Vec<String>,
    /// The answer section's position and text.
    pub answer_top: Option<f64>,
    pub answer_bottom: Option<f64>,
    pub answer: Option<String>,
    pub charts: Vec<Chart>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Chart {
    pub id: String,
    /// Its SVGs: one, or one per profile (small multiples).
    pub svgs: usize,
    /// Every text the chart draws (axes, legend).
    pub texts: Vec<String>,
    /// Texts drawn outside the chart's box (cut off).
    pub cut: Vec<String>,
}

impl Chart {
    /// Whether a text of the chart is `name` or starts with it (a legend
    /// entry with its device count or a note after the name).
    pub fn names(&self, name: &str) -> bool {
        self.texts.iter().map(|t| t.trim()).any(|t| {
            t == name
                || t.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with(':'))
        })
    }
}

fn headless(chromium: &Path) -> Command {
    let mut c = Command::new(chromium);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--allow-file-access-from-files",
        "--virtual-time-budget=10000",
    ])
    .arg(format!(
        "--window-size={},{}",
        SCREEN.0 + 20,
        SCREEN.1 + 100
    ));
    c
}

/// Load `page` (a report.html) in Chromium and measure it.
pub fn measure(chromium: &Path, page: &Path) -> Layout {
    let dir = tempfile::tempdir().unwrap();
    let check = dir.path().join("check.html");
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let text = include_str!("browser/check.html")
        .replace("REPORT", &url)
        .replace("WIDTH", &SCREEN.0.to_string())
        .replace("HEIGHT", &SCREEN.1.to_string());
    std::fs::write(&check, text).unwrap();
    let out = run_bounded(
        headless(chromium)
            .arg("--dump-dom")
            .arg(format!("file://{}", check.display())),
    );
    // The result is the text of an element: the DOM dump escapes it.
    let dom = String::from_utf8_lossy(&out.stdout)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let json = dom
        .split("RESULT")
        .nth(1)
        .and_then(|r| r.split("END").next())
        .unwrap_or_else(|| panic!("no result from the check page: {dom}"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// A screenshot of the first screen of `page`; its PNG width and height.
pub fn screenshot(chromium: &Path, page: &Path, png: &Path) -> (u32, u32) {
    run_bounded(
        headless(chromium)
            .arg(format!("--window-size={},{}", SCREEN.0, SCREEN.1))
            .arg(format!("--screenshot={}", png.display()))
            .arg(format!("file://{}", page.canonicalize().unwrap().display())),
    );
    let bytes = std::fs::read(png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
    assert_eq!(&bytes[1..4], b"PNG", "{}", png.display());
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Run a Chromium command, killed after 90 s (the bound of every test step).
fn run_bounded(cmd: &mut Command) -> std::process::Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium starts");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(90)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("chromium did not finish within 90 s");
        }
    }
}
