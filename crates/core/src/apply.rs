//! Writing a plan's files: atomic (temp file + rename in the same dir) and minimal (an
//! unchanged file is not rewritten). The only module of clp-core that writes to disk.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use crate::error::Error;
use crate::plan::{LaunchPlan, WritePolicy};

/// Creates the plan's dirs, files and links (atomically; unchanged files untouched), and
/// hands them to the session's user when clp runs as root.
pub fn apply(plan: &LaunchPlan) -> Result<(), Error> {
    // As root the plan's dirs belong to the sandbox user, who may have planted a symlink
    // in them from inside the boundary: never follow one when handing a path over.
    let chown = |path: &Path| -> Result<(), Error> {
        let Some((uid, gid)) = plan.owner else {
            return Ok(());
        };
        if path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(Error::host(format!(
                "`{}` is a symbolic link; clp will not hand it to uid {uid}",
                path.display()
            ))
            .hint("remove it (it may have been planted from inside the boundary)"));
        }
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
            .map_err(|e| Error::io(format!("cannot hand to uid {uid}"), path, e))
    };
    for d in &plan.dirs {
        create_dir(d, 0o700)?;
        chown(d)?;
    }
    for f in &plan.files {
        let created = match f.policy {
            WritePolicy::Replace => {
                write_atomic(&f.path, f.contents.as_bytes(), f.mode)?;
                true
            }
            WritePolicy::CreateIfMissing => create_new(&f.path, f.contents.as_bytes(), f.mode)?,
        };
        if created {
            chown(&f.path)?;
        }
    }
    for l in &plan.links {
        symlink_new(&l.target, &l.link)?;
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
