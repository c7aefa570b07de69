//! The boundary levels B and C share: who the session runs as and which host paths it
//! sees, where, and why. [`crate::level::sandbox`] and [`crate::level::container`] turn it
//! into bubblewrap or engine arguments and add only what is particular to them.

use crate::error::Error;
use crate::host::Host;
use crate::plan::{Boundary, Mount, SessionUser, StatePaths, Why};
use crate::profile::Profile;

/// Who the session runs as. As root: `isolation.user`, else the workspace's owner; never
/// uid 0, since root without capabilities still reads root-owned files.
pub fn session_user(profile: &Profile, host: &Host) -> Result<SessionUser, Error> {
    if host.uid != 0 {
        return Ok(SessionUser {
            uid: host.uid,
            gid: host.gid,
            switch: false,
        });
    }
    if let Some(name) = &profile.isolation.user {
        let user = host.users.get(name).ok_or_else(|| {
            Error::host(format!(
                "`isolation.user` names `{name}`, which is not a user here"
            ))
            .hint("create it (`useradd -m NAME`) or name an existing user")
        })?;
        if user.uid == 0 {
            return Err(
                Error::profile(format!("`isolation.user` is `{name}`, which is root"))
                    .hint("name an unprivileged user: the sandbox never runs as root"),
            );
        }
        return Ok(SessionUser {
            uid: user.uid,
            gid: user.gid,
            switch: true,
        });
    }
    let (uid, gid) = host.cwd_owner;
    if uid == 0 || profile.workspace.path != host.cwd {
        return Err(
            Error::host("clp runs as root and the sandbox would run as root too").hint(
                "run clp as your normal user, or set `isolation.user = \"NAME\"` (or \
                 `--set isolation.user=NAME`) to the unprivileged user the sandbox runs as",
            ),
        );
    }
    Ok(SessionUser {
        uid,
        gid,
        switch: true,
    })
}

/// The boundary of `profile`: its mounts in order (the profile's home, its state, the
/// workspace and extra paths, then the read-only protections), and its user.
/// `settings` says whether the plan writes a settings file (mounted read-only: it holds
/// the rules, and Claude Code reloads it when it changes).
pub fn build(profile: &Profile, host: &Host, settings: bool) -> Result<Boundary, Error> {
    let user = session_user(profile, host)?;
    let paths = StatePaths::of(profile);
    let home = host.home.clone();
    let mut mounts = vec![
        Mount::at(&paths.home, &home, true, Why::ProfileHome),
        Mount::rw(&paths.root, Why::State),
    ];
    let config = &profile.isolation.config_dir;
    if !config.starts_with(&paths.root) {
        mounts.push(Mount::rw(config, Why::ConfigDir));
    }
    if profile.isolation.main_config {
        // The normal install inside a boundary: its login state stays usable and
        // refreshable.
        mounts.push(Mount::rw(&home.join(".claude.json"), Why::MainLogin).optional());
    }
    let ws = &profile.workspace.path;
    mounts.push(Mount::rw(ws, Why::Workspace));
    for p in &profile.workspace.writable {
        mounts.push(Mount::rw(p, Why::Writable).optional());
    }
    for p in &profile.workspace.read_only {
        mounts.push(Mount::ro(p, Why::ReadOnly).optional());
    }
    if profile.workspace.protect_git {
        for p in [".git/hooks", ".git/config"] {
            mounts.push(Mount::ro(&ws.join(p), Why::Protected).optional());
        }
    }
    if host.ide_dir_exists && !profile.isolation.main_config {
        let ide = host.main_claude_dir().join("ide");
        mounts.push(Mount::at(&ide, &config.join("ide"), false, Why::IdeLocks));
    }
    if settings {
        mounts.push(Mount::ro(&paths.settings, Why::Settings));
    }
    Ok(Boundary { user, home, mounts })
}

/// The optional mounts' sources, which the host must be probed for before rendering
/// (a level that cannot skip a missing source, such as a container engine, needs to
/// know which exist).
pub fn optional_sources(profile: &Profile, host: &Host) -> Vec<std::path::PathBuf> {
    match build(profile, host, false) {
        Ok(b) => b
            .mounts
            .into_iter()
            .filter(|m| m.optional)
            .map(|m| m.source)
            .collect(),
        Err(_) => Vec::new(),
    }
}
