//! Writing files: atomic (temp file + rename in the same dir) and minimal (an unchanged
//! file is not rewritten). The only module of clp-core that writes to disk.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A write that failed, naming the path.
#[derive(Debug, thiserror::Error)]
#[error("cannot write `{}`", path.display())]
pub struct WriteError {
    /// The path being written.
    pub path: PathBuf,
    /// What failed.
    #[source]
    pub source: std::io::Error,
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |source| WriteError {
        path: path.to_owned(),
        source,
    }
}

/// Replaces `path` with `contents` atomically unless it already holds exactly that
/// (contents and mode). Readers see the old file or the new one, never a torn one.
/// Returns whether anything was written.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<bool, WriteError> {
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
pub fn create_new(path: &Path, contents: &[u8], mode: u32) -> Result<bool, WriteError> {
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
pub fn create_dir(path: &Path, mode: u32) -> Result<(), WriteError> {
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

use std::os::unix::fs::DirBuilderExt;

/// Makes `link` a symlink to `target` unless something already exists at `link`.
/// Returns whether it was created.
pub fn symlink_new(target: &Path, link: &Path) -> Result<bool, WriteError> {
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
