//! After a session at level B or C: what it left in the workspace that would run outside
//! the boundary, where read-only mounts could not prevent it.
//!
//! A protected path that did not exist at launch cannot be mounted read-only; if the
//! session created it (a `.claude/settings.json` with hooks, an `.envrc`, a `.git`
//! replaced by a planted one), it is held aside (renamed, nothing lost) and reported.
//! Nested repositories and other tool files deeper in the workspace are compared with
//! their state before the session, and what changed in a way that runs code is reported.
//! Reads the workspace (bounded) and renames; never follows a symbolic link.

pub mod config;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nix::dir::Type;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

use crate::fsafe::{AsUser, Dir};
use crate::plan::LaunchPlan;

/// Files deeper in a workspace that tools run or obey: compared before and after.
const TOOL_FILES: &[&str] = &[
    ".envrc",
    ".mcp.json",
    ".claude/settings.json",
    ".claude/settings.local.json",
    ".vscode/tasks.json",
    ".vscode/settings.json",
];

/// Directories never descended into (large, and not where tools look).
const SKIP_DIRS: &[&str] = &[
    "node_modules",
    "target",
    ".venv",
    "venv",
    "__pycache__",
    "dist",
    "build",
    "vendor",
    ".cache",
];

/// How many entries the scan reads at most, and how deep it goes.
const MAX_ENTRIES: usize = 20_000;
const MAX_DEPTH: usize = 8;

/// How much of a git config the report reads: a session could leave a huge one.
const MAX_CONFIG: u64 = 1 << 20;

/// The workspace before the session.
#[derive(Debug, Clone, Default)]
pub struct Before {
    files: BTreeMap<PathBuf, Stamp>,
    complete: bool,
}

/// What identifies a file's version without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime: i128,
    ino: u64,
}

/// What the session left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Protected paths the session created, and where each was moved.
    pub held: Vec<(PathBuf, PathBuf)>,
    /// Other changes that would run code outside the boundary, one line each.
    pub findings: Vec<String>,
    /// Why the comparison is partial, if it is.
    pub partial: Option<String>,
}

impl Report {
    /// Whether there is nothing to say.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty() && self.findings.is_empty() && self.partial.is_none()
    }

    /// The report as lines for the terminal, control characters escaped.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (from, to) in &self.held {
            out.push(format!(
                "the session created `{}`, which tools outside the boundary run or obey; \
                 clp moved it to `{}` (to keep it: mv {} {})",
                from.display(),
                to.display(),
                shlex::try_quote(&to.display().to_string()).unwrap_or_default(),
                shlex::try_quote(&from.display().to_string()).unwrap_or_default(),
            ));
        }
        out.extend(self.findings.iter().cloned());
        if let Some(p) = &self.partial {
            out.push(p.clone());
        }
        // Names the session chose: escape sequences in them must not reach the terminal.
        out.iter().map(|l| crate::diag::printable(l)).collect()
    }
}

/// Records the workspace's tool files and nested repositories before the session. As
/// root, with the session user's file-system identity: the workspace is theirs, and a
/// concurrent session of the same workspace could swap a directory for a link mid-scan.
pub fn before(plan: &LaunchPlan) -> Before {
    let Some(b) = &plan.boundary else {
        return Before::default();
    };
    let _as_user = AsUser::new(plan.owner);
    let mut files = BTreeMap::new();
    let complete = scan(&b.workspace, &mut files);
    Before { files, complete }
}

/// After the session: holds the protected paths it created and reports what changed.
pub fn after(plan: &LaunchPlan, before: &Before) -> Report {
    let mut report = Report::default();
    let Some(b) = &plan.boundary else {
        return report;
    };
    let Ok(ws) = Dir::open_trusted(&b.workspace) else {
        return report;
    };
    let _as_user = AsUser::new(plan.owner);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for path in &b.watch {
        let Ok(rel) = path.strip_prefix(&b.workspace) else {
            continue;
        };
        let Some(made) = planted(&b.workspace, rel) else {
            continue;
        };
        match hold_aside(&ws, &made, stamp) {
            Ok(aside) => report
                .held
                .push((b.workspace.join(&made), b.workspace.join(&aside))),
            Err(e) => report.findings.push(format!(
                "the session created `{}`, which tools outside the boundary run or obey, \
                 and clp could not move it aside ({e}): remove it before using the \
                 workspace outside clp",
                path.display()
            )),
        }
    }
    let mut now = BTreeMap::new();
    let complete = scan(&b.workspace, &mut now);
    for (path, stamp) in &now {
        if before.files.get(path) == Some(stamp) {
            continue;
        }
        let what = if before.files.contains_key(path) {
            "changed"
        } else {
            "created"
        };
        if let Some(line) = finding(path, what) {
            report.findings.push(line);
        }
    }
    if !(before.complete && complete) {
        report.partial = Some(format!(
            "the workspace is too large to check completely (more than {MAX_ENTRIES} \
             entries): nested repositories beyond that were not compared"
        ));
    }
    report
}

/// Renames `made` to `<made>.clp-held-<stamp>`, or, when the session already took that
/// name (it knows the clock and when it ends), to a name it cannot guess. Returns the new
/// name.
fn hold_aside(ws: &Dir, made: &Path, stamp: u64) -> Result<PathBuf, crate::fsafe::FsError> {
    let mut last = None;
    for attempt in 0..16u32 {
        let aside = if attempt == 0 {
            PathBuf::from(format!("{}.clp-held-{stamp}", made.display()))
        } else {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            PathBuf::from(format!(
                "{}.clp-held-{stamp}-{}{nanos:09}{attempt}",
                made.display(),
                std::process::id()
            ))
        };
        match ws.rename_aside(made, &aside) {
            Ok(()) => return Ok(aside),
            Err(crate::fsafe::FsError::Io { source, .. })
                if source.raw_os_error() == Some(libc::EEXIST) =>
            {
                last = Some(source);
            }
            Err(e) => return Err(e),
        }
    }
    Err(crate::fsafe::FsError::Io {
        path: made.to_owned(),
        source: last.unwrap_or_else(|| std::io::ErrorKind::AlreadyExists.into()),
    })
}

/// What to hold aside for the watched `rel`: the first symbolic link on the way to it (a
/// tool would read through it), else `rel` itself when it exists.
fn planted(ws: &Path, rel: &Path) -> Option<PathBuf> {
    let mut prefix = PathBuf::new();
    for c in rel.components() {
        prefix.push(c);
        match ws.join(&prefix).symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() => return Some(prefix),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    Some(prefix)
}

/// One line about a changed tool file, when it can run code outside the boundary.
fn finding(path: &Path, what: &str) -> Option<String> {
    let name = path.file_name()?.to_string_lossy();
    let in_hooks = path
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "hooks");
    if in_hooks {
        // `git init` writes the samples; git never runs them.
        return (!name.ends_with(".sample")).then(|| {
            format!(
                "git hook `{}` {what} by the session: git runs it outside the boundary",
                path.display()
            )
        });
    }
    if name == "commondir" {
        return Some(format!(
            "`{}` {what} by the session points git at another directory, whose config and \
             hooks git runs outside the boundary; review it",
            path.display()
        ));
    }
    if name == ".git" {
        let target = gitdir_of(path).map_or_else(|| "?".into(), |g| g.display().to_string());
        return Some(format!(
            "`{}` {what} by the session points git at `{target}`, whose config and hooks git \
             runs outside the boundary; review it",
            path.display()
        ));
    }
    if name == "config" {
        // Never blocks on a FIFO nor reads an endless device: the session chose what is
        // there, and clp must still finish to report and hold aside.
        let text = crate::fsafe::read_regular(path, MAX_CONFIG).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let keys = risky_git_keys(&text);
        if keys.is_empty() {
            return None;
        }
        return Some(format!(
            "`{}` {what} by the session sets {}: git runs that outside the boundary",
            path.display(),
            keys.join(", ")
        ));
    }
    Some(format!(
        "`{}` {what} by the session: tools outside the boundary read it; review it",
        path.display()
    ))
}

/// The keys of a git config text that make git run a program (lowercase, subsection
/// included: `filter.lfs.smudge`). A text git would not read as a config (git stops on it,
/// but clp may read it differently) is reported as `(unreadable config)`.
pub fn risky_git_keys(text: &str) -> Vec<String> {
    let Some(entries) = git_config_entries(text) else {
        return vec!["(unreadable config)".into()];
    };
    let mut out = Vec::new();
    for (key, value) in entries {
        let key = key.to_ascii_lowercase();
        let parts: Vec<&str> = key.split('.').collect();
        let (first, last) = (parts[0], parts[parts.len() - 1]);
        let sub = parts.len() > 2;
        let risky = matches!(
            key.as_str(),
            "core.fsmonitor"
                | "core.hookspath"
                | "core.sshcommand"
                | "core.pager"
                | "core.editor"
                | "core.askpass"
                | "core.gitproxy"
                | "core.alternaterefscommand"
                | "sequence.editor"
                | "diff.external"
                | "credential.helper"
                | "gpg.program"
                | "gpg.ssh.defaultkeycommand"
                | "include.path"
                | "interactive.difffilter"
                | "uploadpack.packobjectshook"
                | "sendemail.sendmailcmd"
                | "sendemail.tocmd"
                | "sendemail.cccmd"
        ) || first == "includeif"
            || (first == "credential" && last == "helper")
            || (first == "filter" && matches!(last, "clean" | "smudge" | "process"))
            || (first == "diff" && matches!(last, "textconv" | "command"))
            || (first == "merge" && last == "driver")
            || (first == "gpg" && last == "program")
            || (first == "tar" && sub && last == "command")
            || (matches!(first, "difftool" | "mergetool" | "man" | "browser")
                && sub
                && matches!(last, "cmd" | "path"))
            || (first == "remote" && matches!(last, "uploadpack" | "receivepack"))
            || (first == "pager" && !is_git_bool(&value))
            || (matches!(first, "alias") && value.trim_start().starts_with('!'))
            || (first == "submodule" && last == "update" && value.trim_start().starts_with('!'));
        if risky && !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

fn is_git_bool(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "" | "true" | "false" | "yes" | "no" | "on" | "off" | "1" | "0"
    )
}

/// The `(section[.subsection].key, value)` entries of a git config text, read the way
/// git's `config.c` reads them: a key may follow its section header on the same line, a
/// backslash before a newline continues a value (so a following `[section]` line can be
/// part of it), `;` and `#` start a comment outside quotes. `None` where git would stop
/// with a bad config line.
fn git_config_entries(text: &str) -> Option<Vec<(String, String)>> {
    let mut chars = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .chars()
        .peekable();
    let mut section = String::new();
    let mut out = Vec::new();
    let mut comment = false;
    while let Some(c) = chars.next() {
        if c == '\n' {
            comment = false;
            continue;
        }
        if comment || c.is_whitespace() {
            continue;
        }
        if c == '#' || c == ';' {
            comment = true;
            continue;
        }
        if c == '[' {
            section.clear();
            loop {
                match chars.next()? {
                    ']' => break,
                    c if c.is_ascii_alphanumeric() || c == '-' || c == '.' => {
                        section.push(c.to_ascii_lowercase());
                    }
                    c if c == ' ' || c == '\t' => {
                        while matches!(chars.peek(), Some(' ' | '\t')) {
                            chars.next();
                        }
                        if chars.next()? != '"' {
                            return None;
                        }
                        section.push('.');
                        loop {
                            match chars.next()? {
                                '"' => break,
                                '\n' => return None,
                                '\\' => section.push(chars.next().filter(|c| *c != '\n')?),
                                c => section.push(c),
                            }
                        }
                        if chars.next()? != ']' {
                            return None;
                        }
                        break;
                    }
                    _ => return None,
                }
            }
            continue;
        }
        if !c.is_ascii_alphabetic() || section.is_empty() {
            return None;
        }
        let mut key = String::from(c);
        while let Some(&c) = chars.peek() {
            if c.is_ascii_alphanumeric() || c == '-' {
                key.push(c);
                chars.next();
            } else {
                break;
            }
        }
        while matches!(chars.peek(), Some(' ' | '\t')) {
            chars.next();
        }
        let mut value = String::new();
        match chars.peek() {
            None | Some('\n') => {}
            Some('=') => {
                chars.next();
                let mut quoted = false;
                loop {
                    match chars.peek().copied() {
                        None | Some('\n') if !quoted => break,
                        None | Some('\n') => return None,
                        Some(';' | '#') if !quoted => break,
                        Some('\\') => {
                            chars.next();
                            match chars.next()? {
                                '\n' => {}
                                'n' => value.push('\n'),
                                't' => value.push('\t'),
                                'b' => {
                                    value.pop();
                                }
                                c @ ('"' | '\\') => value.push(c),
                                _ => return None,
                            }
                        }
                        Some('"') => {
                            chars.next();
                            quoted = !quoted;
                        }
                        Some(c) => {
                            chars.next();
                            value.push(c);
                        }
                    }
                }
            }
            Some(_) => return None,
        }
        out.push((format!("{section}.{}", key.to_ascii_lowercase()), value));
    }
    Some(out)
}

/// The names of [`TOOL_FILES`], to compare an entry with before its path.
const TOOL_NAMES: &[&[u8]] = &[
    b".envrc",
    b".mcp.json",
    b"settings.json",
    b"settings.local.json",
    b"tasks.json",
];

/// A directory the scan is still to read: its name in the open `parent` (the workspace
/// itself has none), its path, its depth.
struct Pending {
    parent: Option<std::rc::Rc<nix::dir::Dir>>,
    name: std::ffi::OsString,
    path: PathBuf,
    depth: usize,
}

/// Records nested repositories' config and hooks and the tool files below the workspace
/// (not its own top-level ones, which are protected), without following links. Returns
/// whether the scan was complete.
///
/// Each directory is opened in its parent (`O_NOFOLLOW`: a directory swapped for a
/// link is not read) and its entries are judged by name and type as read, without a
/// path or a look at each: the path is made only for a directory to read and for the
/// few entries named like a tool file. A parent stays open while a child of it is still
/// to read: at most one per level.
fn scan(ws: &Path, out: &mut BTreeMap<PathBuf, Stamp>) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut seen = 0usize;
    let mut stack = vec![Pending {
        parent: None,
        name: std::ffi::OsString::new(),
        path: ws.to_path_buf(),
        depth: 0,
    }];
    while let Some(Pending {
        parent,
        name,
        path: dir_path,
        depth,
    }) = stack.pop()
    {
        let opened = match &parent {
            None => nix::dir::Dir::open(ws, flags, Mode::empty()),
            Some(p) => openat(
                &**p,
                name.as_os_str(),
                flags | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
            .and_then(nix::dir::Dir::from_fd),
        };
        drop(parent);
        let Ok(mut dir) = opened else { continue };
        let nested = depth > 0;
        let mut subdirs = Vec::new();
        for entry in dir.iter().flatten() {
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            seen += 1;
            if seen > MAX_ENTRIES {
                return false;
            }
            let name = std::ffi::OsStr::from_bytes(name);
            let (is_dir, is_file) = match entry.file_type() {
                Some(t) => (t == Type::Directory, t == Type::File),
                // A file system that does not say: a look, not through a link.
                None => dir_path
                    .join(name)
                    .symlink_metadata()
                    .map_or((false, false), |m| (m.is_dir(), m.is_file())),
            };
            if name == ".git" {
                let path = dir_path.join(name);
                if is_dir && nested {
                    record_repo(&path, out);
                } else if is_dir {
                    // The workspace's own config and hooks are protected; submodules the
                    // session adds are not (`git status` runs inside each one).
                    record_modules(&path.join("modules"), out, 0);
                } else if is_file {
                    // A pointer (`gitdir: ...`, as in submodules and worktrees): git runs
                    // the config and hooks of the directory it names.
                    record(&path, out);
                    if let Some(gitdir) = gitdir_of(&path).filter(|g| g.starts_with(ws)) {
                        record_repo(&gitdir, out);
                    }
                }
                continue;
            }
            // Most entries are named like no tool file: one comparison of names each,
            // then the whole path only for the few that are.
            if nested && TOOL_NAMES.contains(&name.as_bytes()) {
                let path = dir_path.join(name);
                for tool in TOOL_FILES {
                    if path.ends_with(tool) {
                        record(&path, out);
                    }
                }
            }
            if nested && (name == ".claude" || name == ".vscode") {
                let path = dir_path.join(name);
                for tool in TOOL_FILES {
                    let p = dir_path.join(tool);
                    if p.starts_with(&path) {
                        record(&p, out);
                    }
                }
            }
            let skip = SKIP_DIRS.iter().any(|s| name == *s);
            if is_dir && !skip && depth < MAX_DEPTH {
                subdirs.push(name.to_owned());
            }
        }
        let dir = std::rc::Rc::new(dir);
        for name in subdirs {
            stack.push(Pending {
                parent: Some(dir.clone()),
                path: dir_path.join(&name),
                name,
                depth: depth + 1,
            });
        }
    }
    true
}

/// The git directory a `.git` file names, made absolute without touching the disk.
fn gitdir_of(file: &Path) -> Option<PathBuf> {
    let text = crate::fsafe::read_regular(file, 4096)?;
    let text = String::from_utf8(text).ok()?;
    let target = Path::new(text.trim().strip_prefix("gitdir:")?.trim());
    let joined = file.parent()?.join(target);
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    Some(out)
}

/// Records every repository under a `.git/modules` (submodule names may hold `/`, and
/// submodules nest), without following links.
fn record_modules(dir: &Path, out: &mut BTreeMap<PathBuf, Stamp>, depth: usize) {
    if depth > MAX_DEPTH || !dir.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        return;
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if path.join("config").symlink_metadata().is_ok() || path.join("HEAD").exists() {
            record_repo(&path, out);
        }
        record_modules(&path, out, depth + 1);
    }
}

fn record_repo(git: &Path, out: &mut BTreeMap<PathBuf, Stamp>) {
    record(&git.join("config"), out);
    record(&git.join("commondir"), out);
    let hooks = git.join("hooks");
    if !hooks.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        // Not through a link: it would list some other directory.
        return;
    }
    for hook in std::fs::read_dir(hooks).into_iter().flatten().flatten() {
        record(&hook.path(), out);
    }
}

fn record(path: &Path, out: &mut BTreeMap<PathBuf, Stamp>) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = path.symlink_metadata() {
        out.insert(
            path.to_owned(),
            Stamp {
                len: m.len(),
                mtime: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
                ino: m.ino(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repos_behind_git_files_and_submodules_are_recorded() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path();
        let write = |rel: &str, text: &str| {
            let p = ws.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("sub/.git", "gitdir: ../.gd\n");
        write(".gd/config", "[core]\n\tfsmonitor = x\n");
        write(".git/modules/a/b/config", "");
        write(".git/modules/a/b/hooks/pre-commit.sample", "");
        write("far/.git", "gitdir: /elsewhere\n");
        let mut out = BTreeMap::new();
        assert!(scan(ws, &mut out));
        for rel in [
            "sub/.git",
            ".gd/config",
            ".git/modules/a/b/config",
            "far/.git",
        ] {
            assert!(out.contains_key(&ws.join(rel)), "{rel}: {out:?}");
        }
        let hook = ws.join(".git/modules/a/b/hooks/pre-commit.sample");
        assert!(finding(&hook, "created").is_none());
        let line = finding(&ws.join("sub/.git"), "created").unwrap();
        assert!(
            line.contains(&format!("`{}`", ws.join(".gd").display())),
            "{line}"
        );
    }

    #[test]
    fn every_tool_file_is_named_in_tool_names() {
        use std::os::unix::ffi::OsStrExt;
        for tool in TOOL_FILES {
            let name = Path::new(tool).file_name().unwrap().as_bytes();
            assert!(TOOL_NAMES.contains(&name), "{tool}");
        }
    }

    #[test]
    fn nested_tool_files_are_recorded_and_links_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        let outside = tmp.path().join("outside");
        for dir in ["a/b/.claude", "a/.vscode", "node_modules/x/.claude"] {
            std::fs::create_dir_all(ws.join(dir)).unwrap();
        }
        std::fs::create_dir_all(outside.join(".claude")).unwrap();
        for file in [
            "a/b/.claude/settings.json",
            "a/.vscode/tasks.json",
            "a/b/.envrc",
            ".envrc",
            "node_modules/x/.claude/settings.json",
        ] {
            std::fs::write(ws.join(file), "{}").unwrap();
        }
        std::fs::write(outside.join(".claude/settings.json"), "{}").unwrap();
        std::os::unix::fs::symlink(&outside, ws.join("a/link")).unwrap();
        let mut out = BTreeMap::new();
        assert!(scan(&ws, &mut out));
        let got: Vec<_> = out.keys().map(|p| p.strip_prefix(&ws).unwrap()).collect();
        assert_eq!(
            got,
            [
                Path::new("a/.vscode/tasks.json"),
                Path::new("a/b/.claude/settings.json"),
                Path::new("a/b/.envrc"),
            ]
        );
    }

    #[test]
    fn risky_git_keys_are_found() {
        let text = "[core]\n\tfsmonitor = /tmp/x\n\tbare = false\n[filter \"lfs\"]\n\
                    smudge = git-lfs smudge\n[alias]\n\tst = status\n\tx = !sh -c evil\n";
        assert_eq!(
            risky_git_keys(text),
            ["core.fsmonitor", "filter.lfs.smudge", "alias.x"]
        );
        assert!(risky_git_keys("[core]\n\tbare = false\n[remote \"o\"]\n\turl = x\n").is_empty());
    }

    /// Forms git reads that a line-by-line look misses, and forms that only look risky.
    #[test]
    fn git_config_is_read_as_git_reads_it() {
        let cases: &[(&str, &[&str])] = &[
            ("[core] fsmonitor = x\n", &["core.fsmonitor"]),
            ("[core]fsmonitor=x", &["core.fsmonitor"]),
            ("[alias]\n\ta = \"b \\\n[core]\"\n\tfsmonitor = x\n", &[]),
            (
                "[core]\n\ta = \"b \\\n[alias]\"\n\tfsmonitor = x\n",
                &["core.fsmonitor"],
            ),
            (
                "[core]\n\ta = b ;\\\n[core]\n\tfsmonitor = x\n",
                &["core.fsmonitor"],
            ),
            ("[core]\n\ta = b \\\n\tfsmonitor = x\n", &[]),
            (
                "[Credential \"https://e.com\"]\n\thelper = !x\n",
                &["credential.https://e.com.helper"],
            ),
            ("[pager]\n\tstatus = x\n\tlog = false\n", &["pager.status"]),
            ("[difftool \"d\"]\n\tcmd = x\n", &["difftool.d.cmd"]),
            (
                "[submodule \"s\"]\n\tupdate = !x\n\tbranch = main\n",
                &["submodule.s.update"],
            ),
            (
                "[remote \"o\"]\n\tuploadpack = x\n",
                &["remote.o.uploadpack"],
            ),
            (
                "; [core]\n# fsmonitor = x\n[user]\n\tname = \"a;b\" ; c\n",
                &[],
            ),
            ("[core\n", &["(unreadable config)"]),
        ];
        for (text, want) in cases {
            assert_eq!(risky_git_keys(text), *want, "{text:?}");
        }
    }
}
