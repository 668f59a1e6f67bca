//! The run directory, checked and claimed before anything starts.
//!
//! A default directory (`reports/<scenario>-<UTC time>`) is created
//! exclusively: two runs started in the same second get two directories
//! (`…-2`, `…-3`). A directory named with `--out` may exist (CI jobs reuse
//! one); it is claimed with a lock file created exclusively, holding the
//! run's pid, so a second run writing into it at the same time is refused
//! instead of interleaving two runs' interval files. The lock of a run that
//! died (its pid gone) is taken over. The lock is removed when the run ends.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The lock file in a run directory.
pub const LOCK: &str = ".mqtt-chaos.lock";
/// How many `-N` suffixes a default directory tries.
const MAX_SUFFIX: u32 = 1000;

/// Why a directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OutDirError {
    #[error("{}: cannot create the report directory: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("{}: another run (pid {pid}) is writing into this directory; choose another --out", path.display())]
    Busy { path: PathBuf, pid: u32 },
    #[error("{}: cannot lock the report directory: {source}", path.display())]
    Lock { path: PathBuf, source: io::Error },
    #[error("{}: no free directory name after {MAX_SUFFIX} tries", path.display())]
    Exhausted { path: PathBuf },
}

/// A claimed run directory; the lock goes when it is dropped.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Claim `out`, or create a fresh directory under `parent` named
    /// `stem`, `stem-2`, `stem-3`… (the first that did not exist).
    pub fn claim(out: Option<&Path>, parent: &Path, stem: &str) -> Result<RunDir, OutDirError> {
        let path = match out {
            Some(p) => {
                std::fs::create_dir_all(p).map_err(|source| OutDirError::Create {
                    path: p.to_path_buf(),
                    source,
                })?;
                p.to_path_buf()
            }
            None => fresh(parent, stem)?,
        };
        lock(&path)?;
        Ok(RunDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path.join(LOCK));
    }
}

fn fresh(parent: &Path, stem: &str) -> Result<PathBuf, OutDirError> {
    std::fs::create_dir_all(parent).map_err(|source| OutDirError::Create {
        path: parent.to_path_buf(),
        source,
    })?;
    for n in 1..=MAX_SUFFIX {
        let name = if n == 1 {
            stem.to_string()
        } else {
            format!("{stem}-{n}")
        };
        let p = parent.join(name);
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(OutDirError::Create { path: p, source }),
        }
    }
    Err(OutDirError::Exhausted {
        path: parent.join(stem),
    })
}

fn lock(dir: &Path) -> Result<(), OutDirError> {
    let path = dir.join(LOCK);
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                return writeln!(f, "{}", std::process::id()).map_err(|source| OutDirError::Lock {
                    path: dir.to_path_buf(),
                    source,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok());
                match holder {
                    Some(pid) if pid_alive(pid) => {
                        return Err(OutDirError::Busy {
                            path: dir.to_path_buf(),
                            pid,
                        })
                    }
                    // A run that died left it (or it is unreadable): take over.
                    _ => {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
            Err(source) => {
                return Err(OutDirError::Lock {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
    Err(OutDirError::Lock {
        path: dir.to_path_buf(),
        source: io::Error::other("the lock file came back while it was taken over"),
    })
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_directories_started_in_the_same_second_are_distinct() {
        let t = tempfile::tempdir().unwrap();
        let a = RunDir::claim(None, t.path(), "quickstart-20261201T220000Z").unwrap();
        let b = RunDir::claim(None, t.path(), "quickstart-20261201T220000Z").unwrap();
        assert_ne!(a.path(), b.path());
        assert!(b.path().ends_with("quickstart-20261201T220000Z-2"));
    }

    #[test]
    fn a_directory_in_use_by_a_live_run_is_refused_and_a_dead_runs_lock_taken_over() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let first = RunDir::claim(Some(&out), t.path(), "x").unwrap();
        let e = RunDir::claim(Some(&out), t.path(), "x").unwrap_err();
        assert!(
            matches!(e, OutDirError::Busy { pid, .. } if pid == std::process::id()),
            "{e}"
        );
        assert!(e.to_string().contains("another run"), "{e}");
        drop(first);
        assert!(!out.join(LOCK).exists(), "the lock goes with the run");
        // A lock left by a pid that does not exist.
        std::fs::write(out.join(LOCK), "4194304\n").unwrap();
        let again = RunDir::claim(Some(&out), t.path(), "x").unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join(LOCK)).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(again);
    }

    #[test]
    fn pids_are_told_alive_or_gone() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(4_194_304));
    }
}
