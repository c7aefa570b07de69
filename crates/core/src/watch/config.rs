//! After a session at level B or C: what it left in its own Claude Code config that would
//! run at the next launch without asking. The config dir is the session's to write (it is
//! Claude Code's state), so nothing there can be read-only; instead, what changed in a way
//! that runs code or widens trust is undone and reported:
//!
//! - `settings.json` of the config dir: a change to hooks, the status line, a credential
//!   helper, plugins, MCP servers, permissions, the environment or the sandbox puts the
//!   session's file aside (`settings.json.clp-held-<time>`) and the previous one back;
//! - `.claude.json`: MCP servers added or changed (user scope, or a project's) are taken
//!   out again, the rest of Claude Code's state kept.
//!
//! For the `oauth` profile these are the main install's own files (`~/.claude`,
//! `~/.claude.json`), which the normal `claude` reads outside any boundary.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::fsafe::{AsUser, Dir};
use crate::plan::LaunchPlan;
use crate::policy::MAIN_INSTALL_STATE;

/// The largest file read (Claude Code's `.claude.json` grows with history, but stays far
/// below this).
const MAX: usize = 16 << 20;

/// Settings keys whose change makes a later launch run something or trust more.
pub const RISKY_SETTINGS: &[&str] = &[
    "hooks",
    "statusLine",
    "apiKeyHelper",
    "awsAuthRefresh",
    "awsCredentialExport",
    "otelHeadersHelper",
    "fileSuggestion",
    "env",
    "permissions",
    "enabledPlugins",
    "extraKnownMarketplaces",
    "mcpServers",
    "enableAllProjectMcpServers",
    "enabledMcpjsonServers",
    "sandbox",
    "disableAllHooks",
    "forceLoginMethod",
];

/// What Claude Code would find at one of the two paths.
#[derive(Debug, Clone, Default, PartialEq)]
struct Seen {
    /// The link's target, when the entry itself is a symbolic link (Claude Code follows
    /// it; clp never writes through it).
    link: Option<std::path::PathBuf>,
    contents: Contents,
}

#[derive(Debug, Clone, Default, PartialEq)]
enum Contents {
    /// Nothing there (a dangling link included: Claude Code reads nothing, yet).
    #[default]
    Missing,
    /// A regular file of at most [`MAX`] bytes.
    File(Vec<u8>),
    /// Something clp cannot read as one: a FIFO, a directory, a file past the limit.
    Other,
}

impl Seen {
    fn file(&self) -> Option<&[u8]> {
        match &self.contents {
            Contents::File(b) => Some(b),
            _ => None,
        }
    }

    fn is_there(&self) -> bool {
        self.link.is_some() || self.contents != Contents::Missing
    }

    /// Whether Claude Code might take something from it that clp cannot judge: contents
    /// clp cannot read or parse the way Claude Code does, or a link the session made
    /// (its target may be filled later, by someone else).
    fn out_of_reach(&self, before: &Seen) -> bool {
        let unparsed = self
            .file()
            .is_some_and(|b| serde_json::from_slice::<Value>(b).is_err());
        let relinked = self.link.is_some() && self.link != before.link;
        unparsed || relinked || self.contents == Contents::Other
    }
}

/// The two files before the session, and the main install's entries when the session
/// writes it.
#[derive(Debug, Clone, Default)]
pub struct Before {
    settings: Seen,
    global: Seen,
    main: Entries,
}

/// The entries of a directory: each name, with its target when it is a link.
type Entries = BTreeMap<OsString, Option<PathBuf>>;

/// Reads the session's Claude Code files before it starts.
pub fn before(plan: &LaunchPlan) -> Before {
    let Some(b) = &plan.boundary else {
        return Before::default();
    };
    Before {
        settings: look(plan, &b.claude_files.settings),
        global: look(plan, &b.claude_files.global),
        main: b
            .claude_files
            .main_install
            .as_deref()
            .map(|m| entries(plan, m))
            .unwrap_or_default(),
    }
}

/// Undoes and reports what the session left in its Claude Code files that would run at
/// the next launch. Returns the report's lines.
pub fn after(plan: &LaunchPlan, before: &Before) -> Vec<String> {
    let Some(b) = &plan.boundary else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    lines.extend(settings_after(plan, &b.claude_files.settings, before));
    lines.extend(global_after(plan, &b.claude_files.global, before));
    if let Some(main) = &b.claude_files.main_install {
        lines.extend(main_install_after(plan, main, &before.main));
    }
    lines
}

/// The entries of `dir`, reached without following a link.
fn entries(plan: &LaunchPlan, dir: &Path) -> Entries {
    let Some((parent, name)) = open_parent(plan, dir) else {
        return Entries::new();
    };
    let Ok(dir) = parent.sub(Path::new(&name)) else {
        return Entries::new();
    };
    dir.names()
        .into_iter()
        .map(|n| {
            let link = nix::fcntl::readlinkat(dir.fd(), n.as_os_str())
                .ok()
                .map(PathBuf::from);
            (n, link)
        })
        .collect()
}

/// The main install after an `oauth` session at level B or C: what the session created
/// there that plain `claude` would obey or run (anything but Claude Code's own state) is
/// held aside; a link it changed (clp cannot mount a link read-only) is reported.
fn main_install_after(plan: &LaunchPlan, main: &Path, before: &Entries) -> Vec<String> {
    let now = entries(plan, main);
    // Claude Code's state, the temporaries of its atomic writes (`.credentials.json.tmp.…`)
    // and what clp itself held aside.
    let state = |n: &OsStr| {
        let n = n.to_string_lossy();
        MAIN_INSTALL_STATE
            .iter()
            .any(|s| n == *s || n.strip_prefix(s).is_some_and(|r| r.starts_with('.')))
            || n.contains(".clp-held-")
    };
    let mut lines = Vec::new();
    let created: Vec<&OsString> = now
        .keys()
        .filter(|n| !before.contains_key(*n) && !state(n))
        .collect();
    let relinked = now.iter().filter(|(n, link)| {
        before
            .get(*n)
            .is_some_and(|was| was != *link && was.is_some())
    });
    for (name, _) in relinked {
        lines.push(format!(
            "the session changed the link `{}` in the main install, which plain `claude` \
             reads: look at it before you run `claude`",
            main.join(name).display()
        ));
    }
    if created.is_empty() {
        return lines;
    }
    let Some((parent, dir_name)) = open_parent(plan, main) else {
        return lines;
    };
    let Ok(dir) = parent.sub(Path::new(&dir_name)) else {
        return lines;
    };
    let _as_user = AsUser::new(plan.owner);
    let stamp = stamp();
    for name in created {
        let aside = format!("{}.clp-held-{stamp}", name.to_string_lossy());
        let path = main.join(name);
        lines.push(match dir.rename_aside(Path::new(name), Path::new(&aside)) {
            Ok(()) => format!(
                "the session created `{}` in the main install, which plain `claude` obeys \
                 or runs: clp moved it to `{}`",
                path.display(),
                main.join(&aside).display()
            ),
            Err(e) => format!(
                "the session created `{}` in the main install, which plain `claude` obeys \
                 or runs, and clp could not move it aside ({e}): look at it before you run \
                 `claude`",
                path.display()
            ),
        });
    }
    lines
}

fn parse(seen: &Seen) -> Map<String, Value> {
    seen.file()
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

const UNREADABLE: &str = "left what clp cannot read as Claude Code would (a link, a FIFO, \
                          a directory, a file past 16 MiB or JSON serde does not take)";

fn settings_after(plan: &LaunchPlan, path: &Path, before: &Before) -> Option<String> {
    let now = look(plan, path);
    if now == before.settings {
        return None;
    }
    let (old, new) = (parse(&before.settings), parse(&now));
    let changed: Vec<&str> = RISKY_SETTINGS
        .iter()
        .copied()
        .filter(|k| old.get(*k) != new.get(*k))
        .collect();
    let unreadable = now.out_of_reach(&before.settings);
    if changed.is_empty() && !unreadable {
        return None;
    }
    let (dir, name) = open_parent(plan, path)?;
    let name = name.as_os_str();
    let _as_user = AsUser::new(plan.owner);
    let stamp = stamp();
    let aside = format!("{}.clp-held-{stamp}", name.to_string_lossy());
    let moved = if now.is_there() {
        dir.rename_aside(Path::new(name), Path::new(&aside))
    } else {
        Ok(())
    }
    .and_then(|()| match before.settings.file() {
        Some(old) => dir.write_atomic(name, old, 0o600).map(|_| ()),
        None => Ok(()),
    });
    let what = if unreadable {
        UNREADABLE.to_owned()
    } else {
        format!("changed {}", changed.join(", "))
    };
    Some(match moved {
        Ok(()) => format!(
            "the session {what} in `{}`, which the next launch would run without asking: \
             clp put the previous file back and the session's aside as `{}`",
            path.display(),
            path.with_file_name(&aside).display()
        ),
        Err(e) => format!(
            "the session {what} in `{}`, which the next launch would run without asking, \
             and clp could not undo it ({e}): look at it before the next launch",
            path.display()
        ),
    })
}

fn global_after(plan: &LaunchPlan, path: &Path, before: &Before) -> Option<String> {
    let now = look(plan, path);
    if now == before.global || !now.is_there() {
        return None;
    }
    if now.out_of_reach(&before.global) {
        // Claude Code may find MCP servers in it that clp cannot see: the whole file goes
        // aside (Claude Code starts afresh, the onboarding seeded again at the next launch).
        let (dir, name) = open_parent(plan, path)?;
        let name = name.as_os_str();
        let _as_user = AsUser::new(plan.owner);
        let aside = format!("{}.clp-held-{}", name.to_string_lossy(), stamp());
        return Some(match dir.rename_aside(Path::new(name), Path::new(&aside)) {
            Ok(()) => format!(
                "the session {UNREADABLE} in `{}`, whose MCP servers the next launch would \
                 start without asking: clp put it aside as `{}`",
                path.display(),
                path.with_file_name(&aside).display()
            ),
            Err(e) => format!(
                "the session {UNREADABLE} in `{}`, whose MCP servers the next launch would \
                 start without asking, and clp could not put it aside ({e}): look at it \
                 before the next launch",
                path.display()
            ),
        });
    }
    let mut now: Value = serde_json::from_slice(now.file()?).ok()?;
    let servers_before = before
        .global
        .file()
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .map(|v| servers(&v))
        .unwrap_or_default();
    let servers_now = servers(&now);
    let added: Vec<String> = servers_now
        .iter()
        .filter(|(k, v)| servers_before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    if added.is_empty() {
        return None;
    }
    for key in &added {
        restore(&mut now, key, servers_before.get(key));
    }
    let (dir, name) = open_parent(plan, path)?;
    let name = name.as_os_str();
    let _as_user = AsUser::new(plan.owner);
    let text = serde_json::to_vec_pretty(&now).ok()?;
    let done = dir.write_atomic(name, &text, 0o600);
    Some(match done {
        Ok(_) => format!(
            "the session added MCP servers to `{}` ({}), which the next launch would start \
             without asking: clp took them out (to keep one, give it to the profile: \
             `claude.args = [\"--mcp-config\", FILE]`)",
            path.display(),
            added.join(", ")
        ),
        Err(e) => format!(
            "the session added MCP servers to `{}` ({}), which the next launch would start \
             without asking, and clp could not take them out ({e})",
            path.display(),
            added.join(", ")
        ),
    })
}

/// The MCP-related values of a `.claude.json`, by a path of their own:
/// `mcpServers.NAME` (user scope) and `projects.DIR.mcpServers.NAME`, plus each
/// project's choices that start the workspace's servers.
fn servers(v: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let add = |out: &mut Map<String, Value>, prefix: &str, servers: Option<&Value>| {
        for (name, server) in servers.and_then(Value::as_object).into_iter().flatten() {
            out.insert(format!("{prefix}mcpServers\u{0}{name}"), server.clone());
        }
    };
    add(&mut out, "", v.get("mcpServers"));
    for (dir, project) in v
        .get("projects")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        add(
            &mut out,
            &format!("projects\u{0}{dir}\u{0}"),
            project.get("mcpServers"),
        );
        for key in ["enabledMcpjsonServers", "enableAllProjectMcpServers"] {
            if let Some(value) = project.get(key) {
                out.insert(format!("projects\u{0}{dir}\u{0}{key}"), value.clone());
            }
        }
    }
    out
}

/// Sets the value at `key` (a path from [`servers`]) in `v` back to `old`, or removes it.
fn restore(v: &mut Value, key: &str, old: Option<&Value>) {
    let parts: Vec<&str> = key.split('\u{0}').collect();
    let Some((last, path)) = parts.split_last() else {
        return;
    };
    let mut node = v;
    for p in path {
        let Some(next) = node.get_mut(*p) else {
            return;
        };
        node = next;
    }
    let Some(map) = node.as_object_mut() else {
        return;
    };
    match old {
        Some(old) => {
            map.insert((*last).to_owned(), old.clone());
        }
        None => {
            map.remove(*last);
        }
    }
}

/// What Claude Code would find at `path`. A link is followed (Claude Code follows it) as
/// the session user, through an `O_PATH` descriptor first, so that nothing but a regular
/// file is ever opened for reading (no FIFO to block on, no device to open).
fn look(plan: &LaunchPlan, path: &Path) -> Seen {
    let Some((dir, name)) = open_parent(plan, path) else {
        return Seen::default();
    };
    let name = name.as_os_str();
    let link = nix::fcntl::readlinkat(dir.fd(), name)
        .ok()
        .map(std::path::PathBuf::from);
    let contents = if link.is_none() {
        match dir.read_file(name, MAX) {
            Some(b) => Contents::File(b),
            None if dir.exists(Path::new(name)) => Contents::Other,
            None => Contents::Missing,
        }
    } else {
        let _as_user = AsUser::new(plan.owner);
        follow(&dir, name)
    };
    Seen { link, contents }
}

fn follow(dir: &Dir, name: &OsStr) -> Contents {
    use nix::fcntl::OFlag;
    use std::io::Read;
    let fd = match nix::fcntl::openat(
        dir.fd(),
        name,
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Contents::Missing,
        Err(_) => return Contents::Other,
    };
    let Ok(st) = nix::sys::stat::fstat(&fd) else {
        return Contents::Other;
    };
    let regular = st.st_mode & libc::S_IFMT == libc::S_IFREG;
    if !regular || usize::try_from(st.st_size).map_or(true, |size| size > MAX) {
        return Contents::Other;
    }
    let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let Ok(file) = nix::fcntl::open(proc.as_str(), flags, nix::sys::stat::Mode::empty()) else {
        return Contents::Other;
    };
    let mut buf = Vec::new();
    match std::fs::File::from(file)
        .take(MAX as u64 + 1)
        .read_to_end(&mut buf)
    {
        Ok(_) if buf.len() <= MAX => Contents::File(buf),
        _ => Contents::Other,
    }
}

/// The directory holding `path`, opened beneath clp's state root (or the home, for the
/// main install) without following a link: a session may have renamed its config dir and
/// left a link to another (the real `~/.claude`) in its place.
fn open_parent(plan: &LaunchPlan, path: &Path) -> Option<(Dir, OsString)> {
    plan.boundary.as_ref()?.open_parent(path).ok()
}

fn stamp() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_servers_are_taken_out_and_the_rest_kept() {
        let before: Value = serde_json::json!({
            "numStartups": 3,
            "mcpServers": {"mine": {"command": "a"}},
            "projects": {"/w": {"allowedTools": [], "mcpServers": {}}},
        });
        let mut after: Value = serde_json::json!({
            "numStartups": 4,
            "mcpServers": {"mine": {"command": "a"}, "x": {"command": "sh"}},
            "projects": {"/w": {"allowedTools": [], "mcpServers": {"y": {"command": "sh"}},
                                "enableAllProjectMcpServers": true}},
        });
        let old = servers(&before);
        let now = servers(&after);
        let added: Vec<String> = now
            .iter()
            .filter(|(k, v)| old.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(added.len(), 3, "{added:?}");
        for key in &added {
            restore(&mut after, key, old.get(key));
        }
        assert_eq!(after["numStartups"], 4);
        assert_eq!(
            after["mcpServers"],
            serde_json::json!({"mine": {"command": "a"}})
        );
        assert_eq!(after["projects"]["/w"]["mcpServers"], serde_json::json!({}));
        assert!(after["projects"]["/w"]
            .get("enableAllProjectMcpServers")
            .is_none());
    }
}
