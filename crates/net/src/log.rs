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
    /// `None` until the first line for a log that existed: it is opened for appending
    /// only then, so a session that logs nothing leaves the file as it was.
    file: Mutex<Option<File>>,
    /// The device and inode of the file looked at when the log opened, which the
    /// first line must go to.
    looked_at: (u64, u64),
    failures: AtomicU64,
}

pub use clp_core::network::{Decision, Record};

impl DecisionLog {
    /// Opens the log at `path`: creates it with mode 0600 for appending if missing;
    /// otherwise looks at it without write access, narrows it to 0600 if it is not, and
    /// opens it for appending at the first line. Anything but a regular file at `path`
    /// (a symlink, a FIFO) is an error.
    pub fn open(path: impl AsRef<Path>) -> Result<DecisionLog, Error> {
        use std::os::unix::fs::MetadataExt;
        let path = path.as_ref().to_owned();
        let no_follow = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
        let (file, meta) = match OpenOptions::new()
            .read(true)
            .custom_flags(no_follow.bits())
            .open(&path)
        {
            Ok(file) => {
                let meta = file
                    .metadata()
                    .map_err(|e| Error::io("look at the proxy log", path.display(), e))?;
                if !meta.is_file() {
                    let e = std::io::Error::other("not a regular file");
                    return Err(Error::io("open the proxy log", path.display(), e));
                }
                // Only when it differs: a chmod to the same mode still changes the file
                // (its ctime), and a relaunch should leave every file as it was.
                if meta.permissions().mode() & 0o7777 != 0o600 {
                    file.set_permissions(std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| {
                            Error::io("set the mode of the proxy log", path.display(), e)
                        })?;
                }
                (None, meta)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .custom_flags(no_follow.bits())
                    .open(&path)
                    .map_err(|e| Error::io("open the proxy log", path.display(), e))?;
                let meta = file
                    .metadata()
                    .map_err(|e| Error::io("look at the proxy log", path.display(), e))?;
                (Some(file), meta)
            }
            Err(e) => return Err(Error::io("open the proxy log", path.display(), e)),
        };
        Ok(DecisionLog {
            path,
            file: Mutex::new(file),
            looked_at: (meta.dev(), meta.ino()),
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
                let mut slot = self.file.lock().unwrap_or_else(|p| p.into_inner());
                let file = match slot.take() {
                    Some(file) => file,
                    None => self.reopen()?,
                };
                slot.insert(file).write_all(&line)
            });
        result.map_err(|e| {
            self.failures.fetch_add(1, Ordering::Relaxed);
            Error::io("append to the proxy log", self.path.display(), e)
        })
    }

    /// Opens the log looked at when it opened for appending, never through a link.
    fn reopen(&self) -> std::io::Result<File> {
        use std::os::unix::fs::MetadataExt;
        let no_follow = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
        let file = OpenOptions::new()
            .append(true)
            .custom_flags(no_follow.bits())
            .open(&self.path)?;
        let meta = file.metadata()?;
        if (meta.dev(), meta.ino()) != self.looked_at || !meta.is_file() {
            return Err(std::io::Error::other("replaced since the session started"));
        }
        Ok(file)
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

    /// An existing log is not opened for writing until a line is written, and then
    /// only if it is still the file looked at.
    #[test]
    fn an_existing_log_is_opened_for_writing_at_the_first_line_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.network.jsonl");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let log = DecisionLog::open(&path).unwrap();
        assert!(log.file.lock().unwrap().is_none());
        let record = Record {
            ts: now_rfc3339(),
            host: "example.com".into(),
            port: 443,
            method: "CONNECT".into(),
            decision: Decision::Deny,
            reason: "test".into(),
            addr: None,
            error: None,
        };
        log.append(&record).unwrap();
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("example.com"));

        let replaced = DecisionLog::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "").unwrap();
        assert!(replaced.append(&record).is_err());
        assert_eq!(replaced.failures(), 1);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }
}
