//! File operations that a session cannot steer: every path below a trusted directory is
//! opened without following a symbolic link (`openat2` with `RESOLVE_NO_SYMLINKS`), and
//! every write goes through the directory descriptor that was checked.
//!
//! A session can plant symlinks, FIFOs and renames in everything it may write: its
//! workspace, its profile's home and state. The next launch opens bind sources, writes
//! settings and creates directories in exactly those places; done by path, a planted
//! `home -> /` would be followed (as root, anywhere). Here a symlink in the way is an
//! error that names the path, and nothing is written through it.
//!
//! As root, [`AsUser`] makes the writes inside a session-owned directory with the session
//! user's file-system identity, so root never resolves or creates anything there with
//! its own rights.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, renameat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fstat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{fchown, unlinkat, Gid, Uid, UnlinkatFlags};

/// Why a path below a trusted directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// A component is a symbolic link.
    #[error("`{}` is (or passes through) a symbolic link", .0.display())]
    Symlink(PathBuf),
    /// Not of the expected kind (a FIFO where a file belongs, a file where a directory
    /// belongs).
    #[error("`{}` is {found}, not {expected}", path.display())]
    Kind {
        /// The path.
        path: PathBuf,
        /// What it is.
        found: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// Owned by someone else than expected.
    #[error("`{}` belongs to uid {found}, not uid {expected}", path.display())]
    Owner {
        /// The path.
        path: PathBuf,
        /// Its owner.
        found: u32,
        /// The expected owner.
        expected: u32,
    },
    /// Missing.
    #[error("`{}` does not exist", .0.display())]
    Missing(PathBuf),
    /// Any other failure.
    #[error("`{}`: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

impl FsError {
    fn from_errno(path: &Path, e: Errno) -> FsError {
        match e {
            Errno::ELOOP => FsError::Symlink(path.to_owned()),
            Errno::ENOENT => FsError::Missing(path.to_owned()),
            Errno::ENOTDIR => FsError::Kind {
                path: path.to_owned(),
                found: "not a directory somewhere along it",
                expected: "a directory",
            },
            e => FsError::Io {
                path: path.to_owned(),
                source: e.into(),
            },
        }
    }
}

/// What a path must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A directory or a regular file (never a FIFO, socket or device).
    DirOrFile,
}

impl Kind {
    fn check(self, path: &Path, st: &FileStat) -> Result<(), FsError> {
        let t = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        let found = if t == SFlag::S_IFDIR {
            "a directory"
        } else if t == SFlag::S_IFREG {
            "a file"
        } else if t == SFlag::S_IFIFO {
            "a FIFO"
        } else if t == SFlag::S_IFSOCK {
            "a socket"
        } else {
            "a device or something else"
        };
        let ok = match self {
            Kind::Dir => t == SFlag::S_IFDIR,
            Kind::File => t == SFlag::S_IFREG,
            Kind::DirOrFile => t == SFlag::S_IFDIR || t == SFlag::S_IFREG,
        };
        if ok {
            return Ok(());
        }
        Err(FsError::Kind {
            path: path.to_owned(),
            found,
            expected: match self {
                Kind::Dir => "a directory",
                Kind::File => "a regular file",
                Kind::DirOrFile => "a directory or a regular file",
            },
        })
    }
}

/// An open directory that is trusted: everything below it is reached through it, never
/// through a symbolic link.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(
        ResolveFlag::RESOLVE_NO_SYMLINKS
            | ResolveFlag::RESOLVE_NO_MAGICLINKS
            | ResolveFlag::RESOLVE_BENEATH,
    )
}

/// `rel` as a path that stays below its directory: relative, no `..`.
fn below(rel: &Path) -> Result<&Path, FsError> {
    let ok = rel.is_relative()
        && rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if ok {
        Ok(rel)
    } else {
        Err(FsError::Io {
            path: rel.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not below"),
        })
    }
}

impl Dir {
    /// Opens a directory the session cannot have changed (clp's state root, the parent of
    /// a workspace); symbolic links in its own path are followed.
    pub fn open_trusted(path: &Path) -> Result<Dir, FsError> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| FsError::from_errno(path, e))?;
        Ok(Dir {
            fd,
            path: path.to_owned(),
        })
    }

    /// Creates `path` and its parents the usual way if missing (for clp's own trusted
    /// roots only), then opens it trusted.
    pub fn create_trusted(path: &Path, mode: u32) -> Result<Dir, FsError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(path)
            .map_err(|e| FsError::Io {
                path: path.to_owned(),
                source: e,
            })?;
        Dir::open_trusted(path)
    }

    /// The directory's path (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The descriptor.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Opens `rel` below this directory as an `O_PATH` descriptor, refusing symbolic links
    /// anywhere along it and anything that is not `kind`. The descriptor is what clp
    /// hands to bubblewrap (`--bind-fd`), so what is mounted is what was checked.
    pub fn open_path(&self, rel: &Path, kind: Kind) -> Result<OwnedFd, FsError> {
        let full = self.path.join(rel);
        let rel = below(rel)?;
        let fd = if rel.as_os_str().is_empty() {
            openat2(&self.fd, ".", how(OFlag::O_PATH))
        } else {
            // Without O_NOFOLLOW: with RESOLVE_NO_SYMLINKS a trailing link is ELOOP too.
            openat2(&self.fd, rel, how(OFlag::O_PATH))
        }
        .map_err(|e| FsError::from_errno(&full, e))?;
        let st = fstat(&fd).map_err(|e| FsError::from_errno(&full, e))?;
        kind.check(&full, &st)?;
        Ok(fd)
    }

    /// The directory `rel` below this one, opened without following symbolic links.
    pub fn sub(&self, rel: &Path) -> Result<Dir, FsError> {
        let fd = self.open_path(rel, Kind::Dir)?;
        Ok(Dir {
            fd,
            path: self.path.join(rel),
        })
    }

    /// The owner of `rel` (this directory itself when empty), must be `uid`.
    pub fn check_owner(&self, rel: &Path, uid: u32) -> Result<(), FsError> {
        let fd = self.open_path(rel, Kind::DirOrFile)?;
        let st = fstat(&fd).map_err(|e| FsError::from_errno(&self.path.join(rel), e))?;
        if st.st_uid != uid {
            return Err(FsError::Owner {
                path: self.path.join(rel),
                found: st.st_uid,
                expected: uid,
            });
        }
        Ok(())
    }

    /// Creates the directory `rel` (and its missing parents) below this one with `mode`,
    /// never through a symbolic link, and opens it. `created` gets each new directory.
    pub fn mkdirs(
        &self,
        rel: &Path,
        mode: u32,
        created: &mut dyn FnMut(&Dir) -> Result<(), FsError>,
    ) -> Result<Dir, FsError> {
        let rel = below(rel)?;
        let mut dir = Dir {
            fd: self.fd.try_clone().map_err(|e| FsError::Io {
                path: self.path.clone(),
                source: e,
            })?,
            path: self.path.clone(),
        };
        for c in rel.components() {
            let Component::Normal(name) = c else { continue };
            let path = dir.path.join(name);
            match mkdirat(&dir.fd, name, Mode::from_bits_truncate(mode)) {
                Ok(()) => {
                    let sub = dir.sub(Path::new(name))?;
                    // The mode was masked by the umask; set it exactly.
                    let real = openat2(&sub.fd, ".", how(OFlag::O_RDONLY | OFlag::O_DIRECTORY))
                        .map_err(|e| FsError::from_errno(&path, e))?;
                    fchmod(&real, Mode::from_bits_truncate(mode))
                        .map_err(|e| FsError::from_errno(&path, e))?;
                    created(&sub)?;
                    dir = sub;
                }
                Err(Errno::EEXIST) => dir = dir.sub(Path::new(name))?,
                Err(e) => return Err(FsError::from_errno(&path, e)),
            }
        }
        Ok(dir)
    }

    /// Hands the directory itself to `uid:gid` (through its descriptor).
    pub fn chown(&self, uid: u32, gid: u32) -> Result<(), FsError> {
        let real = openat2(&self.fd, ".", how(OFlag::O_RDONLY | OFlag::O_DIRECTORY))
            .map_err(|e| FsError::from_errno(&self.path, e))?;
        fchown(&real, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .map_err(|e| FsError::from_errno(&self.path, e))
    }

    /// The contents of the regular file `name` in this directory, if it is one.
    fn read(&self, name: &OsStr) -> Option<(Vec<u8>, u32)> {
        self.read_capped(name, usize::MAX)
    }

    /// The contents of the regular file `name` in this directory, if it is one of at
    /// most `max` bytes; never through a link, never blocking on a FIFO.
    pub fn read_file(&self, name: &OsStr, max: usize) -> Option<Vec<u8>> {
        self.read_capped(name, max).map(|(contents, _)| contents)
    }

    fn read_capped(&self, name: &OsStr, max: usize) -> Option<(Vec<u8>, u32)> {
        // Non-blocking, so that a FIFO planted at `name` cannot hang clp.
        let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        let fd = openat2(&self.fd, name, how(flags)).ok()?;
        let st = fstat(&fd).ok()?;
        Kind::File.check(Path::new(name), &st).ok()?;
        if usize::try_from(st.st_size).map_or(true, |size| size > max) {
            return None;
        }
        let f = std::fs::File::from(fd);
        let mut buf = Vec::new();
        f.take((max as u64).saturating_add(1))
            .read_to_end(&mut buf)
            .ok()?;
        (buf.len() <= max).then_some((buf, st.st_mode & 0o7777))
    }

    /// The names of the entries in this directory (none when it cannot be listed).
    pub fn names(&self) -> Vec<std::ffi::OsString> {
        let Ok(fd) = openat2(&self.fd, ".", how(OFlag::O_RDONLY | OFlag::O_DIRECTORY)) else {
            return Vec::new();
        };
        let Ok(mut dir) = nix::dir::Dir::from_fd(fd) else {
            return Vec::new();
        };
        dir.iter()
            .flatten()
            .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_owned())
            .filter(|n| n != "." && n != "..")
            .collect()
    }

    /// Removes `rel` below this directory if it is an empty regular file or an empty
    /// directory (never through a link). Returns whether it did.
    pub fn remove_if_empty(&self, rel: &Path) -> Result<bool, FsError> {
        let (dir, name) = self.parent_of(rel)?;
        let full = self.path.join(rel);
        let fd = openat2(&dir.fd, name, how(OFlag::O_PATH | OFlag::O_NOFOLLOW))
            .map_err(|e| FsError::from_errno(&full, e))?;
        let st = fstat(&fd).map_err(|e| FsError::from_errno(&full, e))?;
        let flags = match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFDIR => UnlinkatFlags::RemoveDir,
            SFlag::S_IFREG if st.st_size == 0 => UnlinkatFlags::NoRemoveDir,
            _ => return Ok(false),
        };
        match unlinkat(&dir.fd, name, flags) {
            Ok(()) => Ok(true),
            Err(Errno::ENOTEMPTY | Errno::EEXIST | Errno::EBUSY) => Ok(false),
            Err(e) => Err(FsError::from_errno(&full, e)),
        }
    }

    /// Opens the regular file `name` in this directory to lock it, made with `mode` if
    /// missing, never through a link. Read-only: `flock` needs no write access, and a
    /// lock file opened for writing counts as written when it is closed.
    pub fn open_lock(&self, name: &OsStr, mode: u32) -> Result<std::fs::File, FsError> {
        let flags = OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
        let full = self.path.join(name);
        let fd = openat2(
            &self.fd,
            name,
            how(flags).mode(Mode::from_bits_truncate(mode)),
        )
        .map_err(|e| FsError::from_errno(&full, e))?;
        let st = fstat(&fd).map_err(|e| FsError::from_errno(&full, e))?;
        Kind::File.check(&full, &st)?;
        Ok(std::fs::File::from(fd))
    }

    /// Removes the file (or link) `name` in this directory.
    pub fn remove(&self, name: &OsStr) -> Result<(), FsError> {
        unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir)
            .map_err(|e| FsError::from_errno(&self.path.join(name), e))
    }

    /// Removes the temporary files of writers that died before their rename (a clp
    /// killed mid-write): `.clp-<pid>-...` whose process is gone. A live writer's file
    /// stays; so does one whose pid was reused since, until a later sweep. Every write
    /// sweeps its directory first, so a kill leaves debris only until the next launch.
    fn sweep_temps(&self) {
        for name in self.names() {
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(".clp-")) else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
                continue;
            };
            let gone = pid > 0
                && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                    == Err(Errno::ESRCH);
            if gone {
                let _ = unlinkat(&self.fd, name.as_os_str(), UnlinkatFlags::NoRemoveDir);
            }
        }
    }

    /// Writes `contents` into a new temporary file in this directory.
    fn temp(&self, contents: &[u8], mode: u32) -> Result<std::ffi::OsString, FsError> {
        for attempt in 0..100u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!(".clp-{}-{nanos}-{attempt}", std::process::id());
            let path = self.path.join(&name);
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
            let fd = match openat2(
                &self.fd,
                name.as_str(),
                how(flags).mode(Mode::from_bits_truncate(0o600)),
            ) {
                Ok(fd) => fd,
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(FsError::from_errno(&path, e)),
            };
            let io = |e: std::io::Error| FsError::Io {
                path: path.clone(),
                source: e,
            };
            fchmod(&fd, Mode::from_bits_truncate(mode)).map_err(|e| io(e.into()))?;
            let mut f = std::fs::File::from(fd);
            f.write_all(contents).map_err(io)?;
            f.sync_all().map_err(io)?;
            return Ok(name.into());
        }
        Err(FsError::Io {
            path: self.path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "no temporary name"),
        })
    }

    /// Replaces the file `name` in this directory with `contents` atomically (temporary
    /// file + rename), unless it already holds exactly that with `mode`. A symbolic link
    /// or anything else at `name` is replaced, never followed. Returns whether it wrote.
    ///
    /// A missing file is created without replacing one a concurrent writer made
    /// meanwhile, if that one holds the same: concurrent launches of one profile write
    /// the same settings, and a rename over the first one's file would pull it from
    /// under that launch's mount (bubblewrap cannot mount a deleted file's descriptor).
    pub fn write_atomic(&self, name: &OsStr, contents: &[u8], mode: u32) -> Result<bool, FsError> {
        self.sweep_temps();
        let wanted = Some((contents.to_vec(), mode));
        let found = self.read(name);
        if found == wanted {
            return Ok(false);
        }
        let tmp = self.temp(contents, mode)?;
        let unlink_tmp = || {
            let _ = unlinkat(&self.fd, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        };
        if found.is_none() {
            let created = nix::fcntl::renameat2(
                &self.fd,
                tmp.as_os_str(),
                &self.fd,
                name,
                nix::fcntl::RenameFlags::RENAME_NOREPLACE,
            );
            match created {
                Ok(()) => return Ok(true),
                Err(Errno::EEXIST) if self.read(name) == wanted => {
                    unlink_tmp();
                    return Ok(false);
                }
                Err(Errno::EEXIST) => {}
                Err(e) => {
                    unlink_tmp();
                    return Err(FsError::from_errno(&self.path.join(name), e));
                }
            }
        }
        renameat(&self.fd, tmp.as_os_str(), &self.fd, name).map_err(|e| {
            unlink_tmp();
            FsError::from_errno(&self.path.join(name), e)
        })?;
        Ok(true)
    }

    /// Creates the file `name` with `contents` only if nothing exists at `name` (not even
    /// a dangling symbolic link). Returns whether it was created.
    pub fn create_new(&self, name: &OsStr, contents: &[u8], mode: u32) -> Result<bool, FsError> {
        self.sweep_temps();
        // The usual case on a relaunch: there already. Looking first spares a temporary
        // file (written, synced, then removed) on every launch; the exclusive rename
        // below still decides when two launches race to create it.
        if self.exists(Path::new(name)) {
            return Ok(false);
        }
        let tmp = self.temp(contents, mode)?;
        let result = nix::fcntl::renameat2(
            &self.fd,
            tmp.as_os_str(),
            &self.fd,
            name,
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        );
        match result {
            Ok(()) => Ok(true),
            Err(e) => {
                let _ = unlinkat(&self.fd, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
                match e {
                    Errno::EEXIST => Ok(false),
                    e => Err(FsError::from_errno(&self.path.join(name), e)),
                }
            }
        }
    }

    /// Whether something is at `rel` below this directory, or a symbolic link stands
    /// anywhere along it (which a tool following it would read through).
    pub fn exists(&self, rel: &Path) -> bool {
        if below(rel).is_err() {
            return false;
        }
        match openat2(&self.fd, rel, how(OFlag::O_PATH | OFlag::O_NOFOLLOW)) {
            Ok(_) => true,
            Err(Errno::ELOOP) => true,
            Err(_) => false,
        }
    }

    /// Renames `from` to `to`, both below this directory, `to` only if free.
    pub fn rename_aside(&self, from: &Path, to: &Path) -> Result<(), FsError> {
        let (from_dir, from_name) = self.parent_of(from)?;
        let (to_dir, to_name) = self.parent_of(to)?;
        nix::fcntl::renameat2(
            from_dir.fd.as_fd(),
            from_name,
            to_dir.fd.as_fd(),
            to_name,
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        )
        .map_err(|e| FsError::from_errno(&self.path.join(from), e))
    }

    /// The directory holding `rel` (opened below this one) and `rel`'s last component.
    pub fn parent_of<'a>(&self, rel: &'a Path) -> Result<(Dir, &'a OsStr), FsError> {
        let rel = below(rel)?;
        let name = rel
            .file_name()
            .ok_or_else(|| FsError::Missing(rel.to_owned()))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        Ok((self.sub(parent)?, name))
    }
}

/// The session user's file-system identity for this thread while it lives (as root,
/// writes inside session-owned directories); a no-op for anyone else. The previous
/// identity comes back on drop.
pub struct AsUser {
    active: bool,
}

impl AsUser {
    /// Switches to `uid:gid` when the process runs as root and `owner` is set.
    pub fn new(owner: Option<(u32, u32)>) -> AsUser {
        let Some((uid, gid)) = owner.filter(|_| Uid::effective().is_root()) else {
            return AsUser { active: false };
        };
        nix::unistd::setfsgid(Gid::from_raw(gid));
        nix::unistd::setfsuid(Uid::from_raw(uid));
        AsUser { active: true }
    }
}

impl Drop for AsUser {
    fn drop(&mut self) {
        if self.active {
            nix::unistd::setfsuid(Uid::from_raw(0));
            nix::unistd::setfsgid(Gid::from_raw(0));
        }
    }
}

/// The first `limit` bytes of the regular file at `path`, or `None` when it is anything
/// else: a symbolic link at its last component is not followed, and a FIFO or device is
/// neither opened for long nor read (a FIFO planted where clp reads would block it
/// forever, `/dev/zero` would never end). For files a session may have left behind.
pub fn read_regular(path: &Path, limit: u64) -> Option<Vec<u8>> {
    let flags = OFlag::O_RDONLY
        | OFlag::O_NONBLOCK
        | OFlag::O_NOFOLLOW
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::open(path, flags, Mode::empty()).ok()?;
    let st = fstat(&fd).ok()?;
    Kind::File.check(path, &st).ok()?;
    let mut buf = Vec::new();
    std::fs::File::from(fd)
        .take(limit)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

/// A path as bytes, for comparisons that must not depend on UTF-8.
pub fn bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relaunch writes nothing: neither an unchanged file nor one that only has to
    /// exist leaves a trace in its directory (not even a temporary file, which would
    /// change the directory's modification time).
    #[test]
    fn unchanged_and_existing_files_touch_nothing() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_trusted(tmp.path()).unwrap();
        assert!(dir.create_new(OsStr::new("a.json"), b"one", 0o600).unwrap());
        assert!(dir
            .write_atomic(OsStr::new("b.json"), b"{}", 0o600)
            .unwrap());
        let stamp = |p: &Path| {
            let m = std::fs::metadata(p).unwrap();
            (m.mtime(), m.mtime_nsec(), m.ino())
        };
        let before = (stamp(tmp.path()), stamp(&tmp.path().join("b.json")));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!dir.create_new(OsStr::new("a.json"), b"two", 0o600).unwrap());
        assert!(!dir
            .write_atomic(OsStr::new("b.json"), b"{}", 0o600)
            .unwrap());
        assert_eq!(
            before,
            (stamp(tmp.path()), stamp(&tmp.path().join("b.json")))
        );
        assert_eq!(std::fs::read(tmp.path().join("a.json")).unwrap(), b"one");
    }

    #[test]
    fn symlinks_are_refused_and_never_written_through() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("state");
        std::fs::create_dir_all(root.join("p")).unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("p/home")).unwrap();
        let dir = Dir::open_trusted(&root).unwrap();
        assert!(matches!(
            dir.open_path(Path::new("p/home"), Kind::Dir),
            Err(FsError::Symlink(_))
        ));
        assert!(matches!(
            dir.mkdirs(Path::new("p/home/x"), 0o700, &mut |_| Ok(())),
            Err(FsError::Symlink(_))
        ));
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());

        // A link at a file's name is replaced, not followed.
        let target = outside.join("victim");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, root.join("p/settings.json")).unwrap();
        let p = dir.sub(Path::new("p")).unwrap();
        assert!(p
            .write_atomic(OsStr::new("settings.json"), b"{}", 0o600)
            .unwrap());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert!(!root.join("p/settings.json").is_symlink());
        assert!(!p
            .write_atomic(OsStr::new("settings.json"), b"{}", 0o600)
            .unwrap());

        // create_new never replaces, not even a dangling link.
        std::os::unix::fs::symlink("/nonexistent", root.join("p/seed")).unwrap();
        assert!(!p.create_new(OsStr::new("seed"), b"x", 0o600).unwrap());

        // A FIFO is not a file.
        nix::unistd::mkfifo(&root.join("p/fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            dir.open_path(Path::new("p/fifo"), Kind::DirOrFile),
            Err(FsError::Kind { .. })
        ));
        // `..` never leaves the directory.
        assert!(dir.open_path(Path::new("../outside"), Kind::Dir).is_err());
    }

    #[test]
    fn read_regular_never_blocks_or_follows() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("config");
        std::fs::write(&file, "0123456789").unwrap();
        assert_eq!(read_regular(&file, 4).unwrap(), b"0123");
        let fifo = tmp.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        assert!(read_regular(&fifo, 4).is_none());
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(read_regular(&link, 4).is_none());
        assert!(read_regular(Path::new("/dev/zero"), 4).is_none());
    }

    #[test]
    fn modes_are_exact_whatever_the_umask() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_trusted(tmp.path()).unwrap();
        let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o000));
        let sub = dir
            .mkdirs(Path::new("a/b"), 0o700, &mut |_| Ok(()))
            .unwrap();
        sub.write_atomic(OsStr::new("f"), b"x", 0o600).unwrap();
        nix::sys::stat::umask(old);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        assert_eq!(mode(&tmp.path().join("a/b")), 0o700);
        assert_eq!(mode(&tmp.path().join("a/b/f")), 0o600);
    }
}
