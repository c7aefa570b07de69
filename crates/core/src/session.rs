//! A boundary session's own directory (levels B and C), made at launch in clp's runtime
//! dir (in memory) and removed when the session ends: `<runtime>/<profile>/<clp's pid>/`.
//!
//! - `ide/`: the session's view of the main install's IDE lock files, mounted read-only
//!   where Claude Code looks for them. clp copies every lock file in, with its pid
//!   replaced by 1 (alive inside the session's pid namespace, and an ancestor of every
//!   process there, so Claude Code's liveness and ancestry checks pass), and keeps the
//!   copy current while the session lives. The session can neither change the view nor
//!   reach the real directory, so it can never delete an IDE's live lock file.
//! - `lock`: held by clp while it lives; a container's watchdog stops the container once
//!   it is free (clp gone, however it went).
//! - `secrets/` (level C): each secret in a file the container reads, never in the
//!   engine's environment.
//!
//! Everything is the session user's, mode 0700 or stricter: the lock files carry the
//! IDE's auth token.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::fsafe::{AsUser, Dir, FsError};
use crate::model::Level;
use crate::plan::{IdeView, LaunchPlan, Why, WritePolicy};

/// The largest lock file clp copies (an IDE's is a few hundred bytes).
const MAX_LOCK: usize = 64 * 1024;

/// A session's dir while the session lives; dropping it releases the lock and removes
/// the dir.
#[derive(Debug)]
pub struct SessionDir {
    dir: PathBuf,
    owner: Option<(u32, u32)>,
    ide: Option<(PathBuf, Dir)>,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

/// Makes the session dir of `plan` (already [`LaunchPlan::for_session`]) if it has one:
/// its lock taken, the IDE view filled, and at level C the secrets written.
pub fn create(
    plan: &LaunchPlan,
    secrets: &BTreeMap<String, String>,
) -> Result<Option<SessionDir>, Error> {
    let Some(dir) = &plan.session_dir else {
        return Ok(None);
    };
    let owner = plan.owner;
    let profile = profile_dir(plan)?;
    let name = dir.file_name().unwrap_or_default();
    let session = profile
        .mkdirs(Path::new(name), 0o700, &mut |d| hand_over(d, owner))
        .map_err(fs)?;
    let _as_user = AsUser::new(owner);
    if plan.level == Level::Container {
        let secrets_dir = session
            .mkdirs(Path::new("secrets"), 0o700, &mut |_| Ok(()))
            .map_err(fs)?;
        for (name, value) in secrets {
            secrets_dir
                .write_atomic(OsStr::new(name), value.as_bytes(), 0o400)
                .map_err(fs)?;
        }
    }
    session
        .write_atomic(OsStr::new("lock"), b"", 0o400)
        .map_err(fs)?;
    let file = std::fs::File::open(dir.join("lock"))
        .map_err(|e| Error::io("cannot open", dir.join("lock"), e))?;
    let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| Error::io("cannot lock", dir.join("lock"), e.into()))?;
    let ide = match &plan.ide {
        Some(IdeView { real, view }) => {
            let rel = view.strip_prefix(dir).unwrap_or(Path::new("ide"));
            let view = session.mkdirs(rel, 0o700, &mut |_| Ok(())).map_err(fs)?;
            Some((real.clone(), view))
        }
        None => None,
    };
    drop(_as_user);
    let session = SessionDir {
        dir: dir.clone(),
        owner,
        ide,
        _lock: lock,
    };
    session.sync_ide();
    Ok(Some(session))
}

fn fs(e: FsError) -> Error {
    Error::host(format!("cannot prepare the session: {e}"))
}

fn hand_over(d: &Dir, owner: Option<(u32, u32)>) -> Result<(), FsError> {
    match owner {
        Some((uid, gid)) => d.chown(uid, gid),
        None => Ok(()),
    }
}

/// The profile's dir in clp's runtime dir (`<runtime>/<profile>`, the parent of its
/// sessions' dirs), made if missing and the session user's.
fn profile_dir(plan: &LaunchPlan) -> Result<Dir, Error> {
    let profile = plan
        .session_dir
        .as_deref()
        .and_then(Path::parent)
        .ok_or_else(|| Error::usage("no session dir"))?;
    let runtime = profile
        .parent()
        .ok_or_else(|| Error::usage("no runtime dir"))?;
    // 0711: a session user may pass through root's runtime dir to its own, no further.
    let root = Dir::create_trusted(runtime, 0o711).map_err(fs)?;
    check_private(&root, runtime)?;
    let rel = profile.strip_prefix(runtime).unwrap_or(profile);
    root.mkdirs(rel, 0o700, &mut |d| hand_over(d, plan.owner))
        .map_err(fs)
}

/// Refuses a runtime dir that someone else could have made or can change: where there is
/// no `$XDG_RUNTIME_DIR` it is `/dev/shm/clp-<uid>`, in a directory every account may
/// write, and another account that made it first (a directory of its own, or a link to
/// one) could swap the IDE view, or a container's secrets dir, from under the session.
/// It must be a directory, not a link, owned by clp's user and writable by no one else.
fn check_private(dir: &Dir, path: &Path) -> Result<(), Error> {
    let not_private = |why: String| {
        Error::host(format!("clp's runtime dir `{}` {why}", path.display())).hint(
            "another account may have made it: remove it, or set XDG_RUNTIME_DIR to a \
             directory of your own",
        )
    };
    if path
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        return Err(not_private("is a symbolic link".into()));
    }
    let st =
        nix::sys::stat::fstat(dir.fd()).map_err(|e| Error::io("cannot look at", path, e.into()))?;
    let me = nix::unistd::geteuid().as_raw();
    if st.st_uid != me {
        return Err(not_private(format!(
            "belongs to uid {}, not {me}",
            st.st_uid
        )));
    }
    if st.st_mode & 0o022 != 0 {
        return Err(not_private(format!(
            "is writable by others (mode {:o})",
            st.st_mode & 0o7777
        )));
    }
    Ok(())
}

/// Membership of the running sessions of a profile (levels B and C), held from before
/// its mount points are made until the session has ended: a shared lock on
/// `<state>/<profile>.sessions.lock`, beside the profile's state dir (which sessions can
/// write) in clp's state root (which they cannot see). When the last session leaves, it
/// removes the plan's [`WritePolicy::MountPoint`] files and the mount points of shared
/// parts that are still empty; while another session runs they stay (removing what
/// another session has mounted over would undo that mount).
#[derive(Debug)]
pub struct Sessions {
    lock: nix::fcntl::Flock<std::fs::File>,
    /// Each mount point as (its anchor, the rest): opened beneath the anchor, never
    /// through a link the session left.
    points: Vec<(PathBuf, PathBuf)>,
    owner: Option<(u32, u32)>,
}

/// Joins the running sessions of `plan`'s profile (waiting while the last one to leave
/// cleans up); `None` for a plan without a boundary.
pub fn join(plan: &LaunchPlan) -> Result<Option<Sessions>, Error> {
    let Some(boundary) = &plan.boundary else {
        return Ok(None);
    };
    let Some(state) = boundary.mounts.iter().find(|m| m.why == Why::State) else {
        return Ok(None);
    };
    let (Some(root), Some(name)) = (state.source.parent(), state.source.file_name()) else {
        return Ok(None);
    };
    let mut lock_name = name.to_owned();
    lock_name.push(".sessions.lock");
    let dir = Dir::create_trusted(root, 0o700).map_err(fs)?;
    let file = dir.open_lock(&lock_name, 0o600).map_err(fs)?;
    let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockShared)
        .map_err(|(_, e)| Error::io("cannot lock", root.join(&lock_name), e.into()))?;
    // The mount points a later level would otherwise find: the empty files, and where
    // the shared parts of the main install were mounted (level A links them there).
    let points = plan
        .files
        .iter()
        .filter(|f| f.policy == WritePolicy::MountPoint)
        .map(|f| f.path.clone())
        .chain(
            boundary
                .mounts
                .iter()
                .filter(|m| m.why == Why::Shared)
                .map(|m| m.dest.clone()),
        )
        .map(|p| boundary.anchored(&p))
        .collect();
    Ok(Some(Sessions {
        lock,
        points,
        owner: plan.owner,
    }))
}

impl Drop for Sessions {
    fn drop(&mut self) {
        if self
            .lock
            .relock(nix::fcntl::FlockArg::LockExclusiveNonblock)
            .is_err()
        {
            return;
        }
        // Deepest first; each opened by clp beneath its anchor (as root, the state root
        // is not the session user's) without following a link the session left, the
        // removal done as the session user.
        let mut points = self.points.clone();
        points.sort_by_key(|(_, rel)| std::cmp::Reverse(rel.components().count()));
        for (anchor, rel) in &points {
            let Ok(dir) = Dir::open_trusted(anchor) else {
                continue;
            };
            if let Ok((parent, name)) = dir.parent_of(rel) {
                let _as_user = AsUser::new(self.owner);
                let _ = parent.remove_if_empty(Path::new(name));
            }
        }
    }
}

impl SessionDir {
    /// The session dir's path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Brings the IDE view up to date with the real lock dir: each IDE's lock file
    /// copied (pid rewritten), the ones gone removed. Returns the ports of the IDEs the
    /// session can see now. A missing or unreadable real dir is an empty one.
    pub fn sync_ide(&self) -> Vec<u16> {
        let Some((real, view)) = &self.ide else {
            return Vec::new();
        };
        let locks = read_locks(real);
        let _as_user = AsUser::new(self.owner);
        for (name, contents) in &locks {
            // A failed copy is retried at the next sync; the session just does not see
            // that IDE yet.
            let _ = view.write_atomic(name, &for_session(contents), 0o600);
        }
        for name in view.names() {
            if lock_port(&name).is_some() && !locks.contains_key(&name) {
                let _ = view.remove(&name);
            }
        }
        locks.keys().filter_map(|n| lock_port(n)).collect()
    }
}

impl Drop for SessionDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The port an IDE lock file's name gives (`<port>.lock`), if it is one.
pub fn lock_port(name: &OsStr) -> Option<u16> {
    let port: u16 = name.to_str()?.strip_suffix(".lock")?.parse().ok()?;
    (port != 0).then_some(port)
}

/// The IDE lock files in `real` (by name), each read without following a link.
fn read_locks(real: &Path) -> BTreeMap<OsString, Vec<u8>> {
    let Ok(dir) = Dir::open_trusted(real) else {
        return BTreeMap::new();
    };
    dir.names()
        .into_iter()
        .filter(|n| lock_port(n).is_some())
        .filter_map(|n| {
            let contents = dir.read_file(&n, MAX_LOCK)?;
            Some((n, contents))
        })
        .collect()
}

/// A lock file as the session sees it: its pid 1 (alive in the session's pid namespace
/// and the ancestor of every process there). A lock file that is not a JSON object (the
/// legacy list of folders) is copied as it is.
pub fn for_session(contents: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(contents) {
        Ok(serde_json::Value::Object(mut lock)) => {
            if lock.contains_key("pid") {
                lock.insert("pid".into(), 1.into());
            }
            serde_json::to_vec(&lock).unwrap_or_else(|_| contents.to_vec())
        }
        _ => contents.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_becomes_one_and_the_rest_stays() {
        let lock = br#"{"pid":4242,"workspaceFolders":["/w"],"ideName":"VS Code","transport":"ws","authToken":"t"}"#;
        let out: serde_json::Value = serde_json::from_slice(&for_session(lock)).unwrap();
        assert_eq!(out["pid"], 1);
        assert_eq!(out["authToken"], "t");
        assert_eq!(out["workspaceFolders"][0], "/w");
        assert_eq!(for_session(b"/w\n/x\n"), b"/w\n/x\n");
        assert_eq!(for_session(br#"{"a":1}"#), br#"{"a":1}"#);
    }

    #[test]
    fn only_port_lock_files_count() {
        assert_eq!(lock_port(OsStr::new("8123.lock")), Some(8123));
        for bad in [
            "0.lock",
            "70000.lock",
            "x.lock",
            "8123",
            ".lock",
            "8123.lock.tmp",
        ] {
            assert_eq!(lock_port(OsStr::new(bad)), None, "{bad}");
        }
    }
}
