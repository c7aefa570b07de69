//! The boundary levels B and C share: who the session runs as and which host paths it
//! sees, where, and why. [`crate::level::sandbox`] and [`crate::level::container`] turn it
//! into bubblewrap or engine arguments and add only what is particular to them.
//!
//! Every mount names the trusted directory its source is opened beneath: what the session
//! can write (its workspace, its profile's home and state) is never crossed through a
//! symbolic link at the next launch. Inside the workspace, the protected paths (git's
//! config and hooks, Claude Code's project settings, ...) are mounted read-only on top,
//! and their parent directories onto themselves, so that they can be neither written nor
//! renamed away.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::host::Host;
use crate::model::Level;
use crate::plan::{Boundary, ClaudeFiles, Mount, MountKind, SessionUser, StatePaths, Why, SESSION};
use crate::policy::MAIN_INSTALL_STATE;
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
    if uid == 0 || profile.workspace.path != host.realpath(&host.cwd) {
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

/// The paths whose existence decides the mounts (optional sources, protected paths), and
/// the directories to list (`.git/modules`, `.git/worktrees`) with the names to probe in
/// each of their entries, for the host to be probed before rendering.
pub fn probes(profile: &Profile, host: &Host) -> (Vec<PathBuf>, Vec<(PathBuf, Vec<String>)>) {
    let ws = &profile.workspace.path;
    let mut paths: Vec<PathBuf> = profile
        .workspace
        .writable
        .iter()
        .chain(&profile.workspace.read_only)
        .cloned()
        .collect();
    paths.push(host.home.join(".claude.json"));
    for item in &profile.claude.share {
        paths.push(host.main_claude_dir().join(item.name()));
        paths.push(profile.isolation.config_dir.join(item.name()));
    }
    paths.extend(protected(profile, host).into_iter().map(|p| ws.join(p)));
    let mut lists = Vec::new();
    if profile.isolation.main_config && profile.isolation.level != Level::Env {
        // Every entry of the main install, to protect what is not Claude Code's state.
        lists.push((host.main_claude_dir(), Vec::new()));
    }
    if protect_git(profile) {
        for (dir, below) in GIT_DIRS {
            lists.push((ws.join(dir), below.iter().map(|b| b.to_string()).collect()));
        }
    }
    (paths, lists)
}

/// The git directories inside `.git` besides its own, and what in each one makes git run
/// a program: a submodule's `config`, `hooks`, and, as for `.git` itself, a `commondir`
/// (git then reads the config and hooks of the directory it names) and a
/// `config.worktree` (read when `extensions.worktreeConfig` is set, as
/// `git sparse-checkout` does); a linked worktree's `commondir` and `config.worktree`
/// (its config and hooks are the main ones). The linked worktrees themselves live
/// outside the workspace, where the user runs git.
const GIT_DIRS: &[(&str, &[&str])] = &[
    (
        ".git/modules",
        &["config", "hooks", "commondir", "config.worktree"],
    ),
    (".git/worktrees", &["commondir", "config.worktree"]),
];

/// Whether the profile protects git (its `.git/config` is in `workspace.protect`).
fn protect_git(profile: &Profile) -> bool {
    profile
        .workspace
        .protect
        .iter()
        .any(|p| p == Path::new(".git/config"))
}

/// The protected paths, relative to the workspace: the profile's list, plus what makes
/// git run a program in each submodule's and linked worktree's git dir ([`GIT_DIRS`])
/// when git is protected.
fn protected(profile: &Profile, host: &Host) -> Vec<PathBuf> {
    let mut list = profile.workspace.protect.clone();
    if protect_git(profile) {
        for (dir, below) in GIT_DIRS {
            let listed = host.listings.get(&profile.workspace.path.join(dir));
            for name in listed.into_iter().flatten() {
                for sub in *below {
                    list.push(Path::new(dir).join(name).join(sub));
                }
            }
        }
    }
    list
}

/// The boundary of `profile`: its mounts in order (the profile's home, its state, the
/// workspace and extra paths, then the pinned and read-only protections), its user, and
/// the protected paths to watch. `settings` says whether the plan writes a settings file
/// (mounted read-only: it holds the rules, and Claude Code reloads it when it changes).
pub fn build(profile: &Profile, host: &Host, settings: bool) -> Result<Boundary, Error> {
    let user = session_user(profile, host)?;
    let paths = StatePaths::of(profile);
    let exists = |p: &Path| host.existing.contains(p);
    let parent = |p: &Path| p.parent().unwrap_or(Path::new("/")).to_owned();
    let mut mounts = own_mounts(profile, host, &paths);
    if profile.isolation.main_config {
        mounts.extend(main_install_read_only(host));
    }
    let ws = &profile.workspace.path;
    mounts.push(Mount::new(ws, &parent(ws), ws, true, Why::Workspace));
    for p in profile.workspace.writable.iter().filter(|p| exists(p)) {
        mounts.push(Mount::new(p, &parent(p), p, true, Why::Writable).kind(MountKind::Any));
    }
    for p in profile.workspace.read_only.iter().filter(|p| exists(p)) {
        mounts.push(Mount::new(p, &parent(p), p, false, Why::ReadOnly).kind(MountKind::Any));
    }
    let mut watch = Vec::new();
    let is_file = |p: &Path| host.files.contains(p);
    let list = protected(profile, host);
    protections(&list, ws, &exists, &is_file, &mut mounts, &mut watch);
    let session = host.runtime_dir.join(&profile.name).join(SESSION);
    mounts.extend(read_only_views(profile, host, &session));
    if settings {
        let settings = &paths.settings;
        let mount = Mount::new(settings, &host.state_dir, settings, false, Why::Settings);
        mounts.push(mount.kind(MountKind::File));
    }
    let config = &profile.isolation.config_dir;
    let claude_files = ClaudeFiles {
        settings: config.join("settings.json"),
        global: if profile.isolation.main_config {
            host.home.join(".claude.json")
        } else {
            config.join(".claude.json")
        },
        main_install: profile
            .isolation
            .main_config
            .then(|| host.main_claude_dir()),
    };
    Ok(Boundary {
        user,
        home: host.home.clone(),
        workspace: ws.clone(),
        mounts,
        watch,
        session,
        claude_files,
    })
}

/// The profile's own places: its home at the home path, its state, its config dir, and
/// for the main install inside a boundary, its login file.
fn own_mounts(profile: &Profile, host: &Host, paths: &StatePaths) -> Vec<Mount> {
    let home = &host.home;
    let state = &host.state_dir;
    let mut mounts = vec![
        Mount::new(&paths.home, state, home, true, Why::ProfileHome),
        Mount::new(&paths.root, state, &paths.root, true, Why::State),
        // Through the state dir a session sees its home as a plain directory: it could
        // rename it and leave a link to the real home in its place, and another launch of
        // the profile at level C (which mounts by path) could follow that link between
        // clp's check and the engine's mount. Pinned, it cannot be moved.
        Mount::new(&paths.home, state, &paths.home, true, Why::Pinned),
    ];
    let config = &profile.isolation.config_dir;
    if !config.starts_with(&paths.root) {
        let anchor = if config.starts_with(home) {
            home.clone()
        } else {
            config.parent().unwrap_or(Path::new("/")).to_owned()
        };
        mounts.push(Mount::new(config, &anchor, config, true, Why::ConfigDir));
    }
    let login = home.join(".claude.json");
    if profile.isolation.main_config && host.existing.contains(&login) {
        // The normal install inside a boundary: its login state stays usable and
        // refreshable.
        mounts.push(Mount::new(&login, home, &login, true, Why::MainLogin).kind(MountKind::File));
    }
    mounts
}

/// The `oauth` profile's config dir is the main install's `~/.claude`, writable: what in
/// it plain `claude` obeys or runs (every entry but Claude Code's own state,
/// [`MAIN_INSTALL_STATE`]) is mounted read-only when it exists. A link among them is not
/// mounted (clp mounts nothing through a link); `watch::config` reports it if the session
/// changes it.
fn main_install_read_only(host: &Host) -> Vec<Mount> {
    let main = host.main_claude_dir();
    host.listings
        .get(&main)
        .into_iter()
        .flatten()
        .filter(|n| !MAIN_INSTALL_STATE.contains(&n.as_str()))
        .map(|n| main.join(n))
        .filter(|p| !host.links.contains(p))
        .map(|p| Mount::new(&p, &main, &p, false, Why::Protected).kind(MountKind::Any))
        .collect()
}

/// What the session reads and must not change: the IDE lock files through the session's
/// own view (see `session`; the main install's directory itself is never mounted), and
/// the shared parts of the main install.
fn read_only_views(profile: &Profile, host: &Host, session: &Path) -> Vec<Mount> {
    let config = &profile.isolation.config_dir;
    let mut mounts = vec![Mount::new(
        &session.join("ide"),
        &host.runtime_dir,
        &config.join("ide"),
        false,
        Why::IdeLocks,
    )];
    for share in shares(profile, host) {
        if let Share::Mounted { source, dest, file } = share {
            let kind = if file {
                MountKind::File
            } else {
                MountKind::Dir
            };
            let anchor = host.main_claude_dir();
            mounts.push(Mount::new(&source, &anchor, &dest, false, Why::Shared).kind(kind));
        }
    }
    mounts
}

/// What becomes of one part of the main install a profile shares (`claude.share`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Share {
    /// Seen at `dest` in the profile's config dir (mounted read-only at B and C, linked
    /// at A).
    Mounted {
        /// In the main install.
        source: PathBuf,
        /// In the profile's config dir.
        dest: PathBuf,
        /// A file (`CLAUDE.md`), not a directory.
        file: bool,
    },
    /// Not shared, and why (a note for `show`).
    Skipped(String),
}

/// The parts of the main install `profile` shares, each mounted or skipped: a missing
/// one silently; one that is a symbolic link (clp mounts nothing through a link, and a
/// session of the `oauth` profile, whose `~/.claude` is writable, could have planted it);
/// one the profile's config dir has of its own (not empty: a mount point clp left is
/// empty). The `oauth` profile's config dir is the main install itself: nothing to share.
pub fn shares(profile: &Profile, host: &Host) -> Vec<Share> {
    if profile.isolation.main_config {
        return Vec::new();
    }
    let mut out = Vec::new();
    for item in &profile.claude.share {
        let source = host.main_claude_dir().join(item.name());
        let dest = profile.isolation.config_dir.join(item.name());
        if !host.existing.contains(&source) {
            continue;
        }
        if host.links.contains(&source) {
            out.push(Share::Skipped(format!(
                "`~/.claude/{}` is a symbolic link: not shared (share what it points to with \
                 `workspace.read-only`)",
                item.name()
            )));
        } else if host.existing.contains(&dest)
            && !host.empty.contains(&dest)
            && !host.links.contains(&dest)
        {
            out.push(Share::Skipped(format!(
                "the profile has its own `{}`: `~/.claude/{}` is not shared",
                dest.display(),
                item.name()
            )));
        } else {
            out.push(Share::Mounted {
                source,
                dest,
                file: item.is_file(),
            });
        }
    }
    out
}

/// The mounts that protect `list` (relative to the workspace `ws`): every directory on
/// the way to a protected path that exists is mounted onto itself (a mount point cannot
/// be renamed away and replaced), and the path read-only, unless it is itself on the way
/// to another one (`.git`: pinned, so git still works inside). Missing ones are watched.
fn protections(
    list: &[PathBuf],
    ws: &Path,
    exists: &dyn Fn(&Path) -> bool,
    is_file: &dyn Fn(&Path) -> bool,
    mounts: &mut Vec<Mount>,
    watch: &mut Vec<PathBuf>,
) {
    let mut pins: Vec<PathBuf> = Vec::new();
    let mut ro: Vec<PathBuf> = Vec::new();
    for rel in list {
        let path = ws.join(rel);
        if !exists(&path) {
            watch.push(path);
            continue;
        }
        // A file (`.git` as a worktree's pointer) is never on the way to anything.
        let on_the_way = !is_file(&path) && list.iter().any(|o| o != rel && o.starts_with(rel));
        for a in rel
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
        {
            if !pins.iter().any(|p| p == a) {
                pins.push(a.to_owned());
            }
        }
        if on_the_way {
            if !pins.iter().any(|p| p == rel) {
                pins.push(rel.clone());
            }
        } else if !ro.contains(rel) {
            ro.push(rel.clone());
        }
    }
    // Outer directories first, so inner mounts land on top of them.
    pins.sort_by_key(|p| p.components().count());
    for p in pins {
        let path = ws.join(&p);
        mounts.push(Mount::new(&path, ws, &path, true, Why::Pinned));
    }
    for p in ro {
        let path = ws.join(&p);
        mounts.push(Mount::new(&path, ws, &path, false, Why::Protected).kind(MountKind::Any));
    }
}

/// The mount points that lie in what the session can write: a mount whose destination is
/// inside another, writable mount (the workspace and the state dir inside the profile's
/// home, mounted at the home's path; the IDE lock dir inside the config dir) needs a
/// directory or file there. Left to the level, a rootful container engine (Podman as
/// root, Docker's daemon) makes the missing ones with root's rights, leaving root-owned
/// directories in the session's home, and through whatever link the session left on the
/// way (bubblewrap fails on such a link with its own message). The plan makes them first,
/// as the session user and never through a link (`apply`), so a planted link stops the
/// launch with clp's message instead. Returns the directories and the files, on the host.
pub fn mount_points(mounts: &[Mount], host: &Host) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let outer = mounts
            .iter()
            .enumerate()
            .filter(|(j, w)| {
                *j != i && w.writable && m.dest.starts_with(&w.dest) && m.dest != w.dest
            })
            .max_by_key(|(_, w)| w.dest.components().count());
        let Some((_, w)) = outer else { continue };
        let at = w
            .source
            .join(m.dest.strip_prefix(&w.dest).unwrap_or(Path::new("")));
        if at == m.source {
            // The source itself, at its own path: it exists.
            continue;
        }
        let is_file = match m.kind {
            MountKind::File => true,
            MountKind::Any => host.files.contains(&m.source),
            MountKind::Dir => false,
        };
        if is_file {
            dirs.extend(at.parent().map(Path::to_path_buf));
            files.push(at);
        } else {
            dirs.push(at);
        }
    }
    (dirs, files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{resolve, Catalog, Override, SearchPath};

    /// `claude.share`: what exists is mounted read-only at the config dir; a link is not
    /// followed; the profile's own (not empty) wins; a mount point left empty does not.
    #[test]
    fn shared_parts_of_the_main_install() {
        let mut host = Host::fixture();
        let main = host.main_claude_dir();
        let catalog = Catalog::new(SearchPath::default());
        let set = [
            Override::parse("workspace.path=~/project").unwrap(),
            Override::parse(
                r#"claude.share=["CLAUDE.md","agents","skills","commands","output-styles"]"#,
            )
            .unwrap(),
        ];
        let profile = resolve(&catalog.load("local-glm", &set).unwrap(), &host).unwrap();
        let config = profile.isolation.config_dir.clone();
        for name in ["CLAUDE.md", "agents", "skills", "commands"] {
            host.existing.insert(main.join(name));
        }
        host.files.insert(main.join("CLAUDE.md"));
        host.links.insert(main.join("skills"));
        host.existing.insert(config.join("commands"));
        host.existing.insert(config.join("agents"));
        host.empty.insert(config.join("agents"));
        let b = build(&profile, &host, true).unwrap();
        let shared: Vec<(&Path, &Path, bool)> = b
            .mounts
            .iter()
            .filter(|m| m.why == Why::Shared)
            .map(|m| (m.source.as_path(), m.dest.as_path(), m.writable))
            .collect();
        assert_eq!(
            shared,
            [
                (
                    main.join("CLAUDE.md").as_path(),
                    config.join("CLAUDE.md").as_path(),
                    false
                ),
                (
                    main.join("agents").as_path(),
                    config.join("agents").as_path(),
                    false
                ),
            ]
        );
        let skipped: Vec<Share> = shares(&profile, &host)
            .into_iter()
            .filter(|s| matches!(s, Share::Skipped(_)))
            .collect();
        assert_eq!(skipped.len(), 2, "{skipped:?}");
    }

    /// A submodule's and a linked worktree's git dirs: what exists is mounted read-only,
    /// what is missing is watched.
    #[test]
    fn submodules_and_linked_worktrees_are_protected() {
        let mut host = Host::fixture();
        let ws = host.cwd.clone();
        host.listings
            .insert(ws.join(".git/modules"), vec!["sub".into()]);
        host.listings
            .insert(ws.join(".git/worktrees"), vec!["linked".into()]);
        for p in [".git/modules/sub/config", ".git/worktrees/linked/commondir"] {
            host.existing.insert(ws.join(p));
            host.files.insert(ws.join(p));
        }
        host.existing.insert(ws.join(".git/modules/sub/hooks"));
        let catalog = Catalog::new(SearchPath::default());
        let set = [Override::parse("workspace.path=~/project").unwrap()];
        let profile = resolve(&catalog.load("local-glm", &set).unwrap(), &host).unwrap();
        let b = build(&profile, &host, true).unwrap();
        let read_only = |rel: &str| {
            b.mounts
                .iter()
                .any(|m| m.source == ws.join(rel) && !m.writable && m.why == Why::Protected)
        };
        for rel in [
            ".git/modules/sub/config",
            ".git/modules/sub/hooks",
            ".git/worktrees/linked/commondir",
        ] {
            assert!(read_only(rel), "{rel}: {:#?}", b.mounts);
        }
        for rel in [
            ".git/modules/sub/commondir",
            ".git/modules/sub/config.worktree",
            ".git/worktrees/linked/config.worktree",
            ".git/commondir",
            ".git/config.worktree",
            "HEAD",
        ] {
            assert!(b.watch.contains(&ws.join(rel)), "{rel}: {:?}", b.watch);
        }
    }
}
