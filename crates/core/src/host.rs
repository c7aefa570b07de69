//! Facts about the machine that rendering depends on, and the one function that reads them.
//!
//! Everything clp takes from the machine (home, cwd, ids, the parent environment, where
//! programs resolve) lives in [`Host`], so that resolving and rendering a profile are pure
//! functions of `(profile, Host)`. Tests and `clp render --portable` build a `Host` by hand.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Programs whose location rendering or `clp doctor` may need; a launch looks up only
/// those its level runs.
pub const KNOWN_PROGRAMS: &[&str] = &[
    "claude", "bwrap", "socat", "podman", "docker", "setpriv", "runc",
];

/// Everything clp knows about the machine it runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Host {
    /// The user's home directory (`$HOME`).
    pub home: PathBuf,
    /// The directory clp was started in.
    pub cwd: PathBuf,
    /// The real uid of the clp process.
    pub uid: u32,
    /// The real gid of the clp process.
    pub gid: u32,
    /// The user name of `uid`.
    pub user: String,
    /// The parent environment, as clp received it.
    pub env: BTreeMap<String, String>,
    /// clp's state dir: `$XDG_STATE_HOME/clp`, else `~/.local/state/clp`.
    pub state_dir: PathBuf,
    /// clp's dir in memory (a tmpfs) for what must not touch the disk: as root
    /// `/run/clp`, else `$XDG_RUNTIME_DIR/clp`, else `/dev/shm/clp-<uid>`.
    pub runtime_dir: PathBuf,
    /// The user's profile dir: `$CLP_PROFILES_DIR`, else `$XDG_CONFIG_HOME/clp/profiles`,
    /// else `~/.config/clp/profiles`.
    pub profiles_dir: PathBuf,
    /// Where programs resolve on `PATH` (only the ones asked for).
    pub programs: BTreeMap<String, PathBuf>,
    /// The real file behind each of `programs`, symlinks followed.
    pub program_targets: BTreeMap<String, PathBuf>,
    /// Whether the main install's IDE lock dir `~/.claude/ide` exists.
    pub ide_dir_exists: bool,
    /// The ports of the IDEs running now (their lock files, `~/.claude/ide/<port>.lock`).
    pub ide_ports: Vec<u16>,
    /// Whether standard input and output are terminals.
    pub tty: bool,
    /// Owner (uid, gid) of the current directory, used to pick the sandbox user when clp
    /// runs as root.
    pub cwd_owner: (u32, u32),
    /// Where `/etc/resolv.conf` really is, when it is a symlink (often into `/run`).
    pub resolv_conf: Option<PathBuf>,
    /// Users looked up by name or uid.
    pub users: BTreeMap<String, HostUser>,
    /// Paths that were checked and exist (e.g. the workspace's `.git/hooks`).
    pub existing: std::collections::BTreeSet<PathBuf>,
    /// Those of them that are regular files (the others are directories or worse).
    pub files: std::collections::BTreeSet<PathBuf>,
    /// Those of them that are symbolic links.
    pub links: std::collections::BTreeSet<PathBuf>,
    /// The top-level keys of Claude Code settings files that were read.
    pub settings_keys: BTreeMap<PathBuf, Vec<String>>,
    /// Those of them that are an empty file or an empty directory.
    pub empty: std::collections::BTreeSet<PathBuf>,
    /// The entries of directories that were listed (a workspace's `.git/modules`).
    pub listings: BTreeMap<PathBuf, Vec<String>>,
    /// How paths resolve on this machine (symbolic links, `..`).
    pub fs: FsView,
    /// The home directories of the other accounts (from `/etc/passwd`, and every
    /// directory under `/home`), never a workspace: see [`Host::other_homes`]. Set here
    /// (tests, portable renders), or left empty to be read from a live machine the first
    /// time a path is judged: a launch that judges none (level A in the current
    /// directory) does not read them.
    #[serde(serialize_with = "serialize_once")]
    pub other_homes: std::sync::OnceLock<Vec<PathBuf>>,
}

fn serialize_once<S: serde::Serializer>(
    cell: &std::sync::OnceLock<Vec<PathBuf>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    cell.get().serialize(s)
}

/// How [`Host::realpath`] resolves paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum FsView {
    /// Ask the file system (the real machine).
    Live,
    /// A fixed map of paths to what they resolve to; others resolve to themselves
    /// (tests and portable renders).
    Fixed(BTreeMap<PathBuf, PathBuf>),
}

/// What rendering one profile needs to know about the machine beyond the basics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Programs to look up on `PATH`.
    pub programs: Vec<String>,
    /// Users to look up by name or uid.
    pub users: Vec<String>,
    /// Paths whose existence matters.
    pub paths: Vec<PathBuf>,
    /// Directories whose entries matter, each with the names below every entry whose
    /// existence matters too (`.git/modules` and, for each submodule, its `config`).
    pub lists: Vec<(PathBuf, Vec<String>)>,
    /// Claude Code settings files whose top-level keys matter (the profile config dir's).
    pub settings: Vec<PathBuf>,
}

/// A local user account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostUser {
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
    /// Its name.
    pub name: String,
}

impl Host {
    /// Where `name` resolves, if it was looked up and found.
    pub fn program(&self, name: &str) -> Option<&Path> {
        self.programs.get(name).map(PathBuf::as_path)
    }

    /// The container engine `wanted` resolves to here: itself, or for `auto` Podman if
    /// installed, else Docker if installed, else Podman.
    pub fn engine(&self, wanted: crate::model::Engine) -> crate::model::Engine {
        use crate::model::Engine;
        match wanted {
            Engine::Auto if self.program("podman").is_some() => Engine::Podman,
            Engine::Auto if self.program("docker").is_some() => Engine::Docker,
            Engine::Auto => Engine::Podman,
            e => e,
        }
    }

    /// Looks a value up in the parent environment, treating an empty value as unset.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The home directories of the other accounts, read from the machine on first use
    /// when the host is live and they were not given.
    pub fn other_homes(&self) -> &[PathBuf] {
        self.other_homes.get_or_init(|| match self.fs {
            FsView::Live => detect::other_homes(&self.home),
            FsView::Fixed(_) => Vec::new(),
        })
    }

    /// The user's real `~/.claude`.
    pub fn main_claude_dir(&self) -> PathBuf {
        self.home.join(".claude")
    }

    /// `path` (absolute, without `.` or `..`) with every symbolic link resolved; the part
    /// that does not exist yet is kept as written below the longest part that does.
    pub fn realpath(&self, path: &Path) -> PathBuf {
        match &self.fs {
            FsView::Fixed(map) => {
                // The longest mapped prefix wins.
                for a in path.ancestors() {
                    if let Some(to) = map.get(a) {
                        return to.join(path.strip_prefix(a).unwrap_or(Path::new("")));
                    }
                }
                path.to_owned()
            }
            FsView::Live => {
                let mut rest = Vec::new();
                let mut base = path;
                // The deepest part that exists, found with one look per level (the kernel
                // walks the path), so that `canonicalize` (a `readlink` per component)
                // runs once, not once per missing level.
                while std::fs::symlink_metadata(base).is_err() {
                    match (base.parent(), base.file_name()) {
                        (Some(parent), Some(name)) => {
                            rest.push(name.to_owned());
                            base = parent;
                        }
                        _ => return path.to_owned(),
                    }
                }
                loop {
                    if let Ok(real) = std::fs::canonicalize(base) {
                        return rest.iter().rev().fold(real, |p, c| p.join(c));
                    }
                    match (base.parent(), base.file_name()) {
                        (Some(parent), Some(name)) => {
                            rest.push(name.to_owned());
                            base = parent;
                        }
                        _ => return path.to_owned(),
                    }
                }
            }
        }
    }

    /// A fixed host for tests and portable renders: user `user` (uid 1000) with home
    /// `/home/user`, working in `/home/user/project`, every known program under
    /// `/usr/bin`.
    pub fn fixture() -> Host {
        let home = PathBuf::from("/home/user");
        let env = [
            ("HOME", "/home/user"),
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("TERM", "xterm-256color"),
            ("LANG", "C.UTF-8"),
            ("USER", "user"),
            ("SHELL", "/bin/bash"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Host {
            cwd: home.join("project"),
            uid: 1000,
            gid: 1000,
            user: "user".into(),
            env,
            state_dir: home.join(".local/state/clp"),
            runtime_dir: PathBuf::from("/run/user/1000/clp"),
            profiles_dir: home.join(".config/clp/profiles"),
            programs: KNOWN_PROGRAMS
                .iter()
                .map(|p| (p.to_string(), PathBuf::from("/usr/bin").join(p)))
                .collect(),
            program_targets: KNOWN_PROGRAMS
                .iter()
                .map(|p| (p.to_string(), PathBuf::from("/usr/bin").join(p)))
                .collect(),
            ide_dir_exists: true,
            ide_ports: Vec::new(),
            tty: true,
            cwd_owner: (1000, 1000),
            resolv_conf: None,
            users: [(
                "user".to_owned(),
                HostUser {
                    uid: 1000,
                    gid: 1000,
                    name: "user".into(),
                },
            )]
            .into_iter()
            .collect(),
            // A git repository as the workspace, so that renders show its protections.
            existing: [".git", ".git/hooks", ".git/config"]
                .iter()
                .map(|p| home.join("project").join(p))
                .chain([home.join(".claude/ide")])
                .collect(),
            files: [home.join("project/.git/config")].into_iter().collect(),
            links: Default::default(),
            settings_keys: BTreeMap::new(),
            empty: Default::default(),
            listings: BTreeMap::new(),
            fs: FsView::Fixed(BTreeMap::new()),
            other_homes: std::sync::OnceLock::from(vec![PathBuf::from("/home/other")]),
            home,
        }
    }
}

/// Reading the machine. The only place in clp-core that looks at the process environment.
pub mod detect {
    use super::*;
    use std::io::IsTerminal;
    use std::os::unix::fs::MetadataExt;

    /// Why the host could not be read.
    #[derive(Debug, thiserror::Error)]
    pub enum HostError {
        /// `$HOME` is unset and the passwd entry has none either.
        #[error("cannot tell your home directory: `HOME` is unset")]
        NoHome,
        /// The current directory is gone or unreadable.
        #[error("cannot read the current directory")]
        Cwd(#[source] std::io::Error),
    }

    /// Reads the host: environment, ids, directories, and where `programs` resolve.
    pub fn detect(programs: &[&str]) -> Result<Host, HostError> {
        let env: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let passwd = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten();
        let home = env
            .get("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(|| passwd.as_ref().map(|p| p.dir.clone()))
            .ok_or(HostError::NoHome)?;
        let user = passwd
            .as_ref()
            .map(|p| p.name.clone())
            .or_else(|| env.get("USER").cloned())
            .unwrap_or_else(|| uid.to_string());
        let cwd = std::env::current_dir().map_err(HostError::Cwd)?;
        let cwd_owner = std::fs::metadata(&cwd)
            .map(|m| (m.uid(), m.gid()))
            .unwrap_or((uid, gid));
        let xdg = |var: &str, fallback: &str| {
            env.get(var)
                .filter(|v| Path::new(v).is_absolute())
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(fallback))
        };
        let state_dir = xdg("XDG_STATE_HOME", ".local/state").join("clp");
        let runtime_dir = if uid == 0 {
            PathBuf::from("/run/clp")
        } else {
            env.get("XDG_RUNTIME_DIR")
                .map(PathBuf::from)
                .filter(|d| d.is_absolute() && d.is_dir())
                .map(|d| d.join("clp"))
                .unwrap_or_else(|| PathBuf::from(format!("/dev/shm/clp-{uid}")))
        };
        let profiles_dir = env
            .get("CLP_PROFILES_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| xdg("XDG_CONFIG_HOME", ".config").join("clp/profiles"));
        let path_var = env.get("PATH").cloned().unwrap_or_default();
        let programs: BTreeMap<String, PathBuf> = programs
            .iter()
            .filter_map(|name| Some((name.to_string(), which(name, &path_var, &cwd)?)))
            .collect();
        let program_targets = programs
            .iter()
            .filter_map(|(n, p)| Some((n.clone(), std::fs::canonicalize(p).ok()?)))
            .collect();
        Ok(Host {
            ide_dir_exists: home.join(".claude/ide").is_dir(),
            ide_ports: ide_ports(&home.join(".claude/ide")),
            tty: std::io::stdin().is_terminal() && std::io::stdout().is_terminal(),
            home,
            cwd,
            uid,
            gid,
            user,
            env,
            state_dir,
            runtime_dir,
            profiles_dir,
            programs,
            program_targets,
            cwd_owner,
            resolv_conf: std::fs::read_link("/etc/resolv.conf")
                .ok()
                .and_then(|_| std::fs::canonicalize("/etc/resolv.conf").ok()),
            users: BTreeMap::new(),
            existing: Default::default(),
            files: Default::default(),
            links: Default::default(),
            settings_keys: BTreeMap::new(),
            empty: Default::default(),
            listings: BTreeMap::new(),
            fs: FsView::Live,
            other_homes: std::sync::OnceLock::new(),
        })
    }

    /// The home directories of every other account: root's and the human accounts' in
    /// `/etc/passwd` (uid 1000 and up; service accounts such as `www-data` keep their
    /// `/var/www`, which the system-tree rules judge), and the directories under `/home`,
    /// resolved.
    pub(super) fn other_homes(mine: &Path) -> Vec<PathBuf> {
        let mine = std::fs::canonicalize(mine).unwrap_or_else(|_| mine.to_owned());
        let mut homes: Vec<PathBuf> = std::fs::read_to_string("/etc/passwd")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let fields: Vec<&str> = l.split(':').collect();
                let uid: u32 = fields.get(2)?.parse().ok()?;
                let human = uid == 0 || (uid >= 1000 && uid != 65534);
                let home = PathBuf::from(fields.get(5)?);
                human.then_some(home)
            })
            .chain(
                std::fs::read_dir("/home")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            )
            .filter(|h| h.is_absolute() && h.components().count() > 1 && h.is_dir())
            .map(|h| std::fs::canonicalize(&h).unwrap_or(h))
            .filter(|h| *h != mine)
            .collect();
        homes.sort();
        homes.dedup();
        homes
    }

    /// The ports named by the lock files in an IDE lock dir (`<port>.lock`).
    pub fn ide_ports(dir: &Path) -> Vec<u16> {
        let mut ports: Vec<u16> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".lock")?.parse().ok())
            .collect();
        ports.sort_unstable();
        ports
    }

    /// Resolves `name` like the shell would: a path if it has a slash, else the first
    /// executable file of that name on `path_var`.
    pub fn which(name: &str, path_var: &str, cwd: &Path) -> Option<PathBuf> {
        let is_exec = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.mode() & 0o111 != 0)
                .unwrap_or(false)
        };
        if name.contains('/') {
            let p = cwd.join(name);
            return is_exec(&p).then_some(p);
        }
        std::env::split_paths(path_var)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(name))
            .find(|p| is_exec(p))
    }

    /// Looks up a user by name or numeric uid and records it in the host under `key`.
    pub fn locate_user(host: &mut Host, key: &str) {
        let found = match key.parse::<u32>() {
            Ok(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)),
            Err(_) => nix::unistd::User::from_name(key),
        };
        if let Ok(Some(u)) = found {
            host.users.insert(
                key.to_owned(),
                HostUser {
                    uid: u.uid.as_raw(),
                    gid: u.gid.as_raw(),
                    name: u.name,
                },
            );
        }
    }

    /// Records which of `paths` exist.
    pub fn probe_paths(host: &mut Host, paths: &[PathBuf]) {
        for p in paths {
            if let Ok(m) = p.symlink_metadata() {
                host.existing.insert(p.clone());
                if m.is_file() {
                    host.files.insert(p.clone());
                }
                if m.is_symlink() {
                    host.links.insert(p.clone());
                }
                let empty = (m.is_file() && m.len() == 0)
                    || (m.is_dir() && std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none()));
                if empty {
                    host.empty.insert(p.clone());
                }
            }
        }
    }

    /// Looks up what a render needs (see `render::needs`) and nothing more.
    pub fn gather(host: &mut Host, needs: &Needs) {
        for name in &needs.programs {
            locate(host, name);
        }
        for user in &needs.users {
            locate_user(host, user);
        }
        probe_paths(host, &needs.paths);
        for file in &needs.settings {
            let keys = settings_keys(file);
            host.settings_keys.insert(file.clone(), keys);
        }
        for (dir, below) in &needs.lists {
            // Not through a symbolic link: a planted one would name entries elsewhere.
            let real = dir.symlink_metadata().is_ok_and(|m| m.is_dir());
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|_| real)
                .filter_map(|e| e.file_name().into_string().ok())
                .collect();
            names.sort();
            // Only known once the entries are: probed here, not with `paths`; with
            // nothing named below them, the entries themselves.
            let paths: Vec<PathBuf> = if below.is_empty() {
                names.iter().map(|n| dir.join(n)).collect()
            } else {
                names
                    .iter()
                    .flat_map(|n| below.iter().map(move |b| dir.join(n).join(b)))
                    .collect()
            };
            probe_paths(host, &paths);
            host.listings.insert(dir.clone(), names);
        }
    }

    /// The top-level keys of a Claude Code settings file (none when it is missing, a
    /// link, too large or not a JSON object).
    fn settings_keys(file: &Path) -> Vec<String> {
        let read = || -> Option<Vec<String>> {
            let dir = crate::fsafe::Dir::open_trusted(file.parent()?).ok()?;
            let bytes = dir.read_file(file.file_name()?, 1 << 20)?;
            let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
            Some(v.as_object()?.keys().cloned().collect())
        };
        read().unwrap_or_default()
    }

    /// Looks up one more program and records it in the host.
    pub fn locate(host: &mut Host, name: &str) {
        let path_var = host.env.get("PATH").cloned().unwrap_or_default();
        if host.programs.contains_key(name) {
            return;
        }
        if let Some(p) = which(name, &path_var, &host.cwd) {
            if let Ok(target) = std::fs::canonicalize(&p) {
                host.program_targets.insert(name.to_string(), target);
            }
            host.programs.insert(name.to_string(), p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What lies below a listed directory's entries is only known once they are: `gather`
    /// probes it then (a submodule's config was once probed before the listing, so never).
    #[test]
    fn gather_probes_below_listed_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let modules = tmp.path().join(".git/modules");
        std::fs::create_dir_all(modules.join("a/hooks")).unwrap();
        std::fs::write(modules.join("a/config"), "").unwrap();
        let mut host = Host::fixture();
        host.existing.clear();
        host.files.clear();
        let needs = Needs {
            lists: vec![(
                modules.clone(),
                vec!["config".into(), "hooks".into(), "commondir".into()],
            )],
            ..Needs::default()
        };
        detect::gather(&mut host, &needs);
        assert_eq!(host.listings[&modules], ["a"]);
        assert!(host.files.contains(&modules.join("a/config")));
        assert!(host.existing.contains(&modules.join("a/hooks")));
        assert!(!host.existing.contains(&modules.join("a/commondir")));
    }
}
