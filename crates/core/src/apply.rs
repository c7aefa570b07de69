//! Writing a plan's files: atomic (temp file + rename in the same dir) and minimal (an
//! unchanged file is not rewritten). The only module of clp-core that writes to disk.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};

use crate::error::{Error, Kind as ErrorKind};
use crate::fsafe::{AsUser, Dir, FsError, Kind};
use crate::level::sandbox::SECCOMP_FD;
use crate::plan::{LaunchPlan, LinkAction, Mount, MountKind, PlannedLink, Why, WritePolicy};

/// Creates the plan's dirs, files and links (atomically; unchanged files untouched).
///
/// Every path is reached from a trusted directory (clp's state root, or the parent of a
/// config dir of the profile's own) without following a symbolic link: a link planted by
/// a session in its profile's directories stops the launch instead of steering a write.
/// As root, the profile's directory is created by clp and handed to the session user,
/// and everything inside it is written with that user's file-system identity.
///
/// A boundary plan first joins its profile's running sessions (see
/// [`crate::session::Sessions`]); keep the returned value until the session has ended.
pub fn apply(plan: &LaunchPlan) -> Result<Applied, Error> {
    let sessions = crate::session::join(plan)?;
    write(plan)?;
    Ok(Applied {
        _sessions: sessions,
    })
}

/// A plan written; for a boundary plan, its membership of the profile's sessions.
#[must_use = "keep it until the session has ended"]
#[derive(Debug)]
pub struct Applied {
    _sessions: Option<crate::session::Sessions>,
}

fn write(plan: &LaunchPlan) -> Result<(), Error> {
    let fs = |e: FsError| {
        Error::host(format!("clp will not write there: {e}"))
            .hint("remove it (it may have been planted from inside the boundary)")
    };
    let top = |path: &Path| -> PathBuf {
        plan.dirs
            .iter()
            .filter(|d| path.starts_with(d))
            .min_by_key(|d| d.components().count())
            .map_or(path, |d| d.as_path())
            .to_owned()
    };
    // (the trusted directory, the path below it)
    let split = |path: &Path| -> Result<(Dir, PathBuf), Error> {
        let top = top(path);
        let anchor = top.parent().unwrap_or(Path::new("/"));
        let dir = Dir::create_trusted(anchor, 0o700).map_err(fs)?;
        let rel = path.strip_prefix(anchor).unwrap_or(path).to_owned();
        Ok((dir, rel))
    };
    let owner = plan.owner;
    let link_at = |l: &PlannedLink| -> Result<Option<(Dir, std::ffi::OsString)>, Error> {
        let (anchor, rel) = split(&l.link)?;
        Ok(anchor
            .parent_of(&rel)
            .ok()
            .map(|(dir, name)| (dir, name.to_owned())))
    };
    // Before the mount points are made: clp's own links where a boundary mounts now.
    for l in plan.links.iter().filter(|l| l.action == LinkAction::Remove) {
        if let Some((dir, name)) = link_at(l)? {
            let _as_user = AsUser::new(owner);
            if nix::fcntl::readlinkat(dir.fd(), name.as_os_str()).is_ok_and(|t| t == l.target) {
                dir.remove(&name).map_err(fs)?;
            }
        }
    }
    for d in &plan.dirs {
        let (anchor, rel) = split(d)?;
        let mut first = rel.components();
        let head = PathBuf::from(first.next().map(|c| c.as_os_str()).unwrap_or_default());
        let hand_over = |made: &Dir| match owner {
            Some((uid, gid)) => made.chown(uid, gid),
            None => Ok(()),
        };
        let top = anchor
            .mkdirs(&head, 0o700, &mut |d| hand_over(d))
            .map_err(fs)?;
        if let Some((uid, _)) = owner {
            top.check_owner(Path::new(""), uid).map_err(fs)?;
        }
        let _as_user = AsUser::new(owner);
        top.mkdirs(first.as_path(), 0o700, &mut |_| Ok(()))
            .map_err(fs)?;
    }
    for f in &plan.files {
        let (anchor, rel) = split(&f.path)?;
        // clp opens the directory (never through a link), the session user writes in it.
        let (dir, name) = anchor.parent_of(&rel).map_err(fs)?;
        let _as_user = AsUser::new(owner);
        match f.policy {
            WritePolicy::Replace => dir.write_atomic(name, f.contents.as_bytes(), f.mode),
            WritePolicy::CreateIfMissing | WritePolicy::MountPoint => {
                dir.create_new(name, f.contents.as_bytes(), f.mode)
            }
        }
        .map_err(fs)?;
    }
    for l in plan.links.iter().filter(|l| l.action == LinkAction::Create) {
        if let Some((dir, name)) = link_at(l)? {
            let _as_user = AsUser::new(owner);
            match nix::unistd::symlinkat(&l.target, dir.fd(), name.as_os_str()) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(Error::io("cannot link", &l.link, e.into())),
            }
        }
    }
    Ok(())
}

/// A boundary plan made ready to start: its argv with the tokens filled in, and the
/// descriptors it names, kept open until the child is started.
#[derive(Debug)]
pub struct Opened {
    /// The argv with each `<fd:...>` token replaced by its descriptor's number.
    pub argv: Vec<String>,
    /// The descriptors, inheritable by the child.
    pub fds: Vec<OwnedFd>,
}

/// Readies a boundary plan (levels B and C, already [`LaunchPlan::for_session`], its
/// session dir made): nothing inherited crosses into it, and every mount source is
/// opened (B) or checked (C) without following a symbolic link.
pub fn prepare(plan: &LaunchPlan) -> Result<Opened, Error> {
    close_inherited()?;
    if plan.level == crate::model::Level::Container {
        let ids = check_mounts(plan)?;
        let argv = plan
            .argv
            .iter()
            .map(|a| {
                ids.iter()
                    .fold(a.clone(), |a, (token, id)| a.replace(token.as_str(), id))
            })
            .collect();
        Ok(Opened {
            argv,
            fds: Vec::new(),
        })
    } else {
        open_mounts(plan)
    }
}

/// Opens every mount source the plan's argv names by descriptor (level B), never
/// through a symbolic link below its anchor, checking its kind and, for clp's own
/// directories, its owner; and the seccomp filter. A source that is a link, of the wrong
/// kind or owner stops the launch with a message that names it: nothing is mounted.
pub fn open_mounts(plan: &LaunchPlan) -> Result<Opened, Error> {
    let mut argv = plan.argv.clone();
    let mut fds = Vec::new();
    if let Some(boundary) = &plan.boundary {
        for m in &boundary.mounts {
            let token = m.fd_token();
            // One descriptor per use: bubblewrap closes each one it has mounted, and a
            // source can be mounted twice (the profile's home, at the home's path and
            // pinned in the state dir).
            for a in argv.iter_mut().filter(|a| **a == token) {
                let fd = high(open_source(m, boundary.user.uid)?)?;
                *a = fd.as_raw_fd().to_string();
                fds.push(fd);
            }
        }
    }
    if argv.iter().any(|a| a == SECCOMP_FD) {
        let (reader, mut writer) = std::io::pipe()
            .map_err(|e| Error::new(ErrorKind::Os, "cannot make a pipe").caused_by(e))?;
        // The filter is a few hundred bytes, far below a pipe's buffer.
        writer.write_all(&crate::seccomp::program()).map_err(|e| {
            Error::new(ErrorKind::Os, "cannot write the seccomp filter").caused_by(e)
        })?;
        drop(writer);
        let fd = high(OwnedFd::from(reader))?;
        let n = fd.as_raw_fd().to_string();
        for a in argv.iter_mut().filter(|a| *a == SECCOMP_FD) {
            *a = n.clone();
        }
        fds.push(fd);
    }
    for fd in &fds {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))
            .map_err(|e| Error::new(ErrorKind::Os, "cannot pass a descriptor").caused_by(e))?;
    }
    Ok(Opened { argv, fds })
}

/// The first descriptor number a passed descriptor gets: the low ones are the child's
/// stdio and the namespace helper's control socket (3).
const FIRST_PASSED_FD: i32 = 10;

/// `fd` moved to a number of its own at or above [`FIRST_PASSED_FD`].
fn high(fd: OwnedFd) -> Result<OwnedFd, Error> {
    rustix::io::fcntl_dupfd_cloexec(&fd, FIRST_PASSED_FD).map_err(|e| {
        Error::new(ErrorKind::Os, "cannot move a descriptor").caused_by(std::io::Error::from(e))
    })
}

/// Checks every mount source of a container plan the way [`open_mounts`] does; the
/// engine then resolves them by path (a container engine takes no descriptors). Returns
/// each source's identity token with the `device:inode` found, which the container
/// compares with what the engine mounted before it runs anything.
pub fn check_mounts(plan: &LaunchPlan) -> Result<Vec<(String, String)>, Error> {
    let mut ids = Vec::new();
    if let Some(boundary) = &plan.boundary {
        for m in &boundary.mounts {
            let fd = open_source(m, boundary.user.uid)?;
            let st = nix::sys::stat::fstat(&fd)
                .map_err(|e| Error::io("cannot check", &m.source, e.into()))?;
            ids.push((m.id_token(), format!("{}:{}", st.st_dev, st.st_ino)));
        }
    }
    Ok(ids)
}

/// Opens one mount's source below its anchor.
fn open_source(m: &Mount, session_uid: u32) -> Result<OwnedFd, Error> {
    let refuse = |e: FsError| {
        Error::host(format!("clp will not mount it: {e}")).hint(
            "a symbolic link or an unexpected file where clp mounts something may have been \
             planted from inside the boundary: look at it, remove it, and launch again",
        )
    };
    let anchor = Dir::open_trusted(&m.anchor).map_err(refuse)?;
    let kind = match m.kind {
        MountKind::Dir => Kind::Dir,
        MountKind::File => Kind::File,
        MountKind::Any => Kind::DirOrFile,
    };
    let fd = anchor.open_path(m.rel(), kind).map_err(refuse)?;
    if matches!(m.why, Why::ProfileHome | Why::State | Why::Settings) {
        anchor.check_owner(m.rel(), session_uid).map_err(refuse)?;
    }
    Ok(fd)
}

/// Makes every descriptor clp inherited (beyond 0, 1 and 2) close on exec, so that
/// nothing of the caller crosses into a boundary: a file or directory the caller had
/// open would be reachable through `/proc/self/fd`. Call it before clp opens anything it
/// means to pass on.
#[allow(unsafe_code)]
pub fn close_inherited() -> Result<(), Error> {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| Error::io("cannot list", "/proc/self/fd", e))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: `fd` was listed as open just above and clp is single-threaded here,
        // so nothing closes it while it is borrowed for this one call. (The listing's
        // own descriptor is closed by now: EBADF is fine.)
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    }
    Ok(())
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::io("cannot write", path, source)
}

/// Replaces `path` with `contents` atomically unless it already holds exactly that
/// (contents and mode). Readers see the old file or the new one, never a torn one.
/// Returns whether anything was written.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<bool, Error> {
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o7777 == mode
            && std::fs::read(path).is_ok_and(|old| old == contents)
        {
            return Ok(false);
        }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir).map_err(err(dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".clp-")
        .tempfile_in(dir)
        .map_err(err(dir))?;
    tmp.write_all(contents).map_err(err(path))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(err(path))?;
    tmp.as_file().sync_all().map_err(err(path))?;
    tmp.persist(path).map_err(|e| err(path)(e.error))?;
    Ok(true)
}

/// Creates `path` with `contents` only if it does not exist; never replaces a file.
/// Returns whether it was created.
pub fn create_new(path: &Path, contents: &[u8], mode: u32) -> Result<bool, Error> {
    if path.symlink_metadata().is_ok() {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir).map_err(err(dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".clp-")
        .tempfile_in(dir)
        .map_err(err(dir))?;
    tmp.write_all(contents).map_err(err(path))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(err(path))?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(err(path)(e.error)),
    }
}

/// Creates a directory and its parents with `mode` for the ones it creates.
pub fn create_dir(path: &Path, mode: u32) -> Result<(), Error> {
    match path.symlink_metadata() {
        Ok(m) if m.is_dir() => return Ok(()),
        // A symlink (or file) where a directory belongs is never followed.
        Ok(_) => {
            return Err(err(path)(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists and is not a directory (a symbolic link?)",
            )))
        }
        Err(_) => {}
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(err(path))
}

/// Makes `link` a symlink to `target` unless something already exists at `link`.
/// Returns whether it was created.
pub fn symlink_new(target: &Path, link: &Path) -> Result<bool, Error> {
    if link.symlink_metadata().is_ok() {
        return Ok(false);
    }
    if let Some(dir) = link.parent() {
        fs_err::create_dir_all(dir).map_err(err(dir))?;
    }
    match std::os::unix::fs::symlink(target, link) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(err(link)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_file_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        assert!(write_atomic(&path, b"{}", 0o600).unwrap());
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!write_atomic(&path, b"{}", 0o600).unwrap());
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
        assert!(write_atomic(&path, b"{ }", 0o600).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"{ }");
    }

    #[test]
    fn create_new_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/.claude.json");
        assert!(create_new(&path, b"one", 0o600).unwrap());
        assert!(!create_new(&path, b"two", 0o600).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
    }

    #[test]
    fn concurrent_writers_never_tear_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let big_a = vec![b'a'; 256 * 1024];
        let big_b = vec![b'b'; 256 * 1024];
        write_atomic(&path, &big_a, 0o600).unwrap();
        std::thread::scope(|s| {
            for i in 0..4 {
                let (path, a, b) = (&path, &big_a, &big_b);
                s.spawn(move || {
                    for j in 0..50 {
                        let data = if (i + j) % 2 == 0 { a } else { b };
                        write_atomic(path, data, 0o600).unwrap();
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..200 {
                    let seen = std::fs::read(&path).unwrap();
                    assert!(seen == big_a || seen == big_b, "torn read");
                }
            });
        });
    }
}
