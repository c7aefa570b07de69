//! The decision log of the HTTP proxy and the SOCKS server: one JSON object per line, appended to a file that only
//! its owner can read.
//!
//! Each line is written with a single `write` on a file opened with `O_APPEND`, so
//! lines from concurrent writers (several proxies, several processes) never interleave.
//! The file is opened with `O_NOFOLLOW`: a symlink planted at the log's path is
//! refused rather than followed. Keep the log in a directory the session cannot write
//! all the same (clp's state dir, not the profile's home).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::Error;

/// An append-only JSON-lines log of the proxy's decisions.
#[derive(Debug)]
pub struct DecisionLog {
    path: PathBuf,
    file: Mutex<File>,
    failures: AtomicU64,
}

pub use clp_core::network::{Decision, Record};

impl DecisionLog {
    /// Opens (creating with mode 0600) the log at `path` for appending. An existing
    /// file is narrowed to 0600 too; a symlink at `path` is an error.
    pub fn open(path: impl AsRef<Path>) -> Result<DecisionLog, Error> {
        let path = path.as_ref().to_owned();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&path)
            .map_err(|e| Error::io("open the proxy log", path.display(), e))?;
        // Only when it differs: a chmod to the same mode still changes the file (its
        // ctime), and a relaunch should leave every file as it was.
        let mode = file
            .metadata()
            .map_err(|e| Error::io("look at the proxy log", path.display(), e))?
            .permissions()
            .mode();
        if mode & 0o7777 != 0o600 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io("set the mode of the proxy log", path.display(), e))?;
        }
        Ok(DecisionLog {
            path,
            file: Mutex::new(file),
            failures: AtomicU64::new(0),
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many appends have failed (a full disk, say) since the log was opened.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Appends one record as one line; a failure is also counted in
    /// [`failures`](Self::failures).
    pub fn append(&self, record: &Record) -> Result<(), Error> {
        let result = serde_json::to_vec(record)
            .map_err(std::io::Error::from)
            .and_then(|mut line| {
                line.push(b'\n');
                let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
                file.write_all(&line)
            });
        result.map_err(|e| {
            self.failures.fetch_add(1, Ordering::Relaxed);
            Error::io("append to the proxy log", self.path.display(), e)
        })
    }
}

/// The current time as RFC 3339 UTC with milliseconds (`2026-05-01T12:00:00.123Z`).
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::from(SystemTime::now());
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&format)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000Z"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// An existing log is narrowed to 0600, and one that already is stays untouched (a
    /// relaunch changes no file, not even its ctime).
    #[test]
    fn open_narrows_the_mode_only_when_needed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.network.jsonl");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        DecisionLog::open(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o600);
        let ctime = (meta.ctime(), meta.ctime_nsec());
        std::thread::sleep(std::time::Duration::from_millis(20));
        DecisionLog::open(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.ctime(), meta.ctime_nsec()), ctime);
    }
}
