//! Fetching a plan's secrets at launch: from the parent environment or by running the
//! profile's credential command. Their values never reach a rendered file or argv.

use std::collections::BTreeMap;

use crate::error::{Error, Kind};
use crate::host::Host;
use std::path::Path;

use crate::plan::LaunchPlan;
use crate::profile::Secret;

/// The value of each of the plan's secret variables.
pub fn fetch(plan: &LaunchPlan, host: &Host) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for (var, secret) in &plan.env.secrets {
        let value = match secret {
            Secret::Literal(v) => v.clone(),
            Secret::Env(name) => host.var(name).map(str::to_owned).ok_or_else(|| {
                Error::host(format!(
                    "`{name}` is not set (profile `{}` reads its credential from it)",
                    plan.profile
                ))
                .hint(format!("export {name}=... before launching"))
            })?,
            Secret::Command(cmd) => run(cmd)?,
        };
        out.insert(var.clone(), value);
    }
    Ok(out)
}

/// Runs a credential command; its output, trimmed, is the secret.
fn run(cmd: &str) -> Result<String, Error> {
    let output = std::process::Command::new("sh")
        .args(["-c", cmd])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| Error::new(Kind::Os, format!("cannot run `{cmd}`")).caused_by(e))?;
    if !output.status.success() {
        return Err(Error::host(format!(
            "the credential command `{cmd}` failed ({})",
            output.status
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Level C: makes the session dir in clp's runtime dir (in memory), the session user's,
/// with each secret in its own file (0400) under `secrets/`, and takes the session lock
/// that the container's watchdog waits on. Dropping the returned lock (clp gone, however)
/// stops the container.
pub fn session_dir(
    plan: &LaunchPlan,
    dir: &Path,
    secrets: &BTreeMap<String, String>,
) -> Result<SessionLock, Error> {
    let fs = |e: crate::fsafe::FsError| Error::host(format!("cannot prepare the session: {e}"));
    let runtime = dir
        .ancestors()
        .nth(2)
        .ok_or_else(|| Error::usage("no runtime dir"))?;
    // 0711: a session user may pass through root's runtime dir to its own, no further.
    let root = crate::fsafe::Dir::create_trusted(runtime, 0o711).map_err(fs)?;
    let rel = dir.strip_prefix(runtime).unwrap_or(dir);
    let owner = plan.owner;
    let hand_over = |d: &crate::fsafe::Dir| match owner {
        Some((uid, gid)) => d.chown(uid, gid),
        None => Ok(()),
    };
    let session = root.mkdirs(rel, 0o700, &mut |d| hand_over(d)).map_err(fs)?;
    let _as_user = crate::fsafe::AsUser::new(owner);
    let secrets_dir = session
        .mkdirs(Path::new("secrets"), 0o700, &mut |_| Ok(()))
        .map_err(fs)?;
    for (name, value) in secrets {
        secrets_dir
            .write_atomic(std::ffi::OsStr::new(name), value.as_bytes(), 0o400)
            .map_err(fs)?;
    }
    session
        .write_atomic(std::ffi::OsStr::new("lock"), b"", 0o400)
        .map_err(fs)?;
    let file = std::fs::File::open(dir.join("lock"))
        .map_err(|e| Error::io("cannot open", dir.join("lock"), e))?;
    let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| Error::io("cannot lock", dir.join("lock"), e.into()))?;
    Ok(SessionLock {
        _lock: lock,
        dir: dir.to_owned(),
    })
}

/// The session lock of a level C session; its drop removes the session dir.
#[derive(Debug)]
pub struct SessionLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
    dir: std::path::PathBuf,
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
