//! `clp doctor [NAME]`: can this machine launch the profile? Each check is data (ok,
//! warning or error, and one line saying how to fix it), handed to the caller as it is
//! made, since some checks start the boundary and take a moment.
//!
//! The checks run programs (Claude Code's `--version`, bubblewrap, the profile's own
//! boundary) and ask the backend: this module does I/O by design.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Serialize;

use crate::host::Host;
use crate::model::Level;
use crate::policy::Tool;
use crate::probe::{self, Health};
use crate::profile::Profile;

/// How a check came out, worst last. In JSON: `"ok"`, `"warning"`, `"error"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but worth knowing.
    Warning,
    /// A launch would fail.
    Error,
}

/// One check; `clp doctor --json` prints them as `{"status", "what", "fix"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// How it came out.
    pub status: Status,
    /// What was checked and found.
    pub what: String,
    /// How to fix it.
    pub fix: Option<String>,
}

/// Runs a command inside a profile's boundary (the whole launch: files, descriptors, a
/// filtered network) and returns its output; `None` when it could not start.
pub type Inside<'a> = &'a dyn Fn(&Profile, &[String]) -> Option<std::process::Output>;

/// Collects checks, handing each to the caller as it is made.
struct Report<'a> {
    sink: &'a mut dyn FnMut(&Check),
    worst: Status,
    inside: Inside<'a>,
}

impl Report<'_> {
    fn add(&mut self, status: Status, what: impl Into<String>, fix: Option<String>) {
        let check = Check {
            status,
            what: what.into(),
            fix,
        };
        (self.sink)(&check);
        self.worst = self.worst.max(status);
    }
}

/// Runs every check for `profile` (or the profile-independent ones), reporting each to
/// `sink`, and returns the worst status. `clp` is the clp binary, run inside the
/// boundary to probe the backend from there.
pub fn run(
    host: &Host,
    profile: Option<&Profile>,
    clp: &Path,
    inside: Inside,
    sink: &mut dyn FnMut(&Check),
) -> Status {
    let mut report = Report {
        sink,
        worst: Status::Ok,
        inside,
    };
    // Every program any level may need: doctor reports on all of them.
    let mut found = host.clone();
    for name in crate::host::KNOWN_PROGRAMS {
        crate::host::detect::locate(&mut found, name);
    }
    let host = &found;
    let level = profile.map(|p| p.isolation.level);

    claude_check(host, profile, &mut report);
    if level.is_none() || level == Some(Level::Sandbox) {
        sandbox_checks(host, &mut report);
    }
    if level == Some(Level::Container) {
        if let Some(p) = profile {
            container_checks(host, p, &mut report);
        }
    }

    ide_and_managed_checks(host, &mut report);
    if let Some(p) = profile.filter(|p| p.isolation.level == Level::Sandbox) {
        nested_sandbox_check(host, p, &mut report);
    }
    if let Some(p) = profile {
        backend_checks(p, clp, &mut report);
        network_check(host, p, clp, &mut report);
    }
    report.worst
}

/// Claude Code itself: found, and of the version the profile wants.
fn claude_check(host: &Host, profile: Option<&Profile>, report: &mut Report) {
    let level = profile.map(|p| p.isolation.level);
    let command = profile.map_or("claude".to_owned(), |p| p.claude.command.clone());
    match host.program(&command) {
        Some(path) => {
            let version = Command::new(path)
                .arg("--version")
                .stdin(Stdio::null())
                .output()
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .and_then(|s| s.split_whitespace().next().map(str::to_owned));
            let req = profile.and_then(|p| p.claude.version.clone());
            match (version, req) {
                (Some(v), Some(req)) => {
                    let fits = req.matches(&v);
                    if fits {
                        report.add(
                            Status::Ok,
                            format!("Claude Code {v} at `{}` (wants {req})", path.display()),
                            None,
                        );
                    } else {
                        report.add(
                            Status::Error,
                            format!(
                                "Claude Code {v} at `{}` does not satisfy {req}",
                                path.display()
                            ),
                            Some(format!("npm install -g @anthropic-ai/claude-code@'{req}'")),
                        );
                    }
                }
                (Some(v), None) => report.add(
                    Status::Ok,
                    format!("Claude Code {v} at `{}`", path.display()),
                    None,
                ),
                (None, _) => report.add(
                    Status::Warning,
                    format!("`{}` did not print a version", path.display()),
                    None,
                ),
            }
        }
        None if level == Some(Level::Container) => report.add(
            Status::Ok,
            "Claude Code runs from the container image (not needed on the host)",
            None,
        ),
        None => report.add(
            Status::Error,
            format!("`{command}` not found on PATH"),
            Some(Tool::Claude.install().into()),
        ),
    }
}

/// The IDE lock dir, and managed settings (which outrank everything a profile renders).
fn ide_and_managed_checks(host: &Host, report: &mut Report) {
    if host.ide_dir_exists {
        report.add(
            Status::Ok,
            "IDE lock dir `~/.claude/ide` present (VS Code integration visible)",
            None,
        );
    } else {
        report.add(
            Status::Ok,
            "no IDE lock dir `~/.claude/ide` (no IDE extension running)",
            None,
        );
    }

    for path in [
        "/etc/claude-code/managed-settings.json",
        "/etc/claude-code/managed-mcp.json",
    ] {
        if Path::new(path).exists() {
            report.add(
                Status::Warning,
                format!("`{path}` exists: its settings override the profile's"),
                Some("review it; managed settings win over `--settings`".into()),
            );
        }
    }
}

fn sandbox_checks(host: &Host, report: &mut Report) {
    for tool in [Tool::Bwrap, Tool::Socat] {
        let name = tool.program();
        match host.program(name) {
            Some(p) => report.add(Status::Ok, format!("`{name}` at `{}`", p.display()), None),
            None => report.add(
                Status::Error,
                format!("`{name}` not found"),
                Some(tool.install().into()),
            ),
        }
    }
    if host.uid == 0 && host.program(Tool::Setpriv.program()).is_none() {
        report.add(
            Status::Error,
            "`setpriv` not found (needed to leave root inside the sandbox)",
            Some(Tool::Setpriv.install().into()),
        );
    }
    let restricted =
        std::fs::read_to_string("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
            .map(|s| s.trim() == "1")
            .unwrap_or(false);
    if restricted {
        report.add(
            Status::Warning,
            "AppArmor restricts unprivileged user namespaces (Ubuntu 24.04+)",
            Some(
                "add an AppArmor profile allowing `userns` for /usr/bin/bwrap, or \
                 `sysctl kernel.apparmor_restrict_unprivileged_userns=0`"
                    .into(),
            ),
        );
    }
    if let Some(bwrap) = host.program("bwrap") {
        let ok = Command::new(bwrap)
            .args(["--unshare-user", "--ro-bind", "/", "/", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            report.add(Status::Ok, "user namespaces usable by bubblewrap", None);
        } else {
            report.add(
                Status::Error,
                "bubblewrap cannot create a user namespace",
                Some("sysctl kernel.unprivileged_userns_clone=1 (Debian) or check AppArmor".into()),
            );
        }
    }
}

fn container_checks(host: &Host, profile: &Profile, report: &mut Report) {
    let tool = Tool::engine(crate::level::container::engine(profile, host));
    let engine = tool.program();
    let Some(path) = host.program(engine) else {
        report.add(
            Status::Error,
            format!("`{engine}` not found"),
            Some(tool.install().into()),
        );
        return;
    };
    // `podman image exists`; Docker has no such verb, `image inspect` says the same.
    let verb = if tool == Tool::Podman {
        "exists"
    } else {
        "inspect"
    };
    let present = Command::new(path)
        .args(["image", verb, &profile.container.image])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        report.add(
            Status::Error,
            format!(
                "image `{}` not found (or `{engine}` is not usable)",
                profile.container.image
            ),
            Some(format!(
                "clp image {} | {engine} build -t {} -f - .",
                profile.name, profile.container.image
            )),
        );
        return;
    }
    report.add(
        Status::Ok,
        format!("image `{}` present", profile.container.image),
        None,
    );
    // Usable means the profile's own container starts (rootless or not) and Claude Code
    // runs in it.
    let retry = format!("clp run {} --no-check -- claude --version", profile.name);
    match (report.inside)(profile, &["claude".into(), "--version".into()]) {
        Some(o) if o.status.success() => report.add(
            Status::Ok,
            format!(
                "the container starts ({}) and runs Claude Code {}",
                if host.uid == 0 { "rootful" } else { "rootless" },
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .next()
                    .unwrap_or("?")
            ),
            None,
        ),
        Some(o) => report.add(
            Status::Error,
            format!(
                "the container does not start: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Some(retry),
        ),
        None => report.add(
            Status::Error,
            "the container could not be launched",
            Some(retry),
        ),
    }
}

/// A filtered network: from inside the session's own namespace, clp's proxy answers and
/// the backend's relay connects.
fn network_check(host: &Host, profile: &Profile, clp: &Path, report: &mut Report) {
    let Some(net) = crate::network::plan(profile, host) else {
        return;
    };
    let probe = |url: String| -> Vec<String> {
        if profile.isolation.level == Level::Container {
            // clp is not in the image; bash's /dev/tcp is.
            let port = url
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .trim_end_matches('/');
            vec![
                "bash".into(),
                "-c".into(),
                format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo HTTP"),
            ]
        } else {
            vec![clp.display().to_string(), "__probe".into(), url]
        }
    };
    let answer = |argv: Vec<String>| {
        (report.inside)(profile, &argv)
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    // The proxy answers `400` to a request that is not a proxy request: it is up.
    let proxy = answer(probe(format!("http://127.0.0.1:{}/", net.proxy_port)));
    let relays: Vec<String> = net
        .relays
        .iter()
        .map(|r| format!("{} (port {})", r.what, r.port))
        .collect();
    if proxy.contains("HTTP") || proxy == "ready" {
        report.add(
            Status::Ok,
            format!(
                "the session's own network comes up: clp's proxy answers on port {} inside; \
                 relayed: {}",
                net.proxy_port,
                if relays.is_empty() {
                    "nothing".to_owned()
                } else {
                    relays.join(", ")
                }
            ),
            None,
        );
    } else {
        report.add(
            Status::Error,
            format!("clp's proxy does not answer inside the session's network: {proxy}"),
            Some(format!("clp run {} -- true", profile.name)),
        );
    }
}

/// Claude Code's Bash sandbox is a bubblewrap with a user, pid and network namespace and
/// a fresh /proc; check that one starts inside ours.
fn nested_sandbox_check(host: &Host, profile: &Profile, report: &mut Report) {
    let Some(bwrap) = host.program("bwrap") else {
        return;
    };
    let argv: Vec<String> = [
        &bwrap.display().to_string(),
        "--ro-bind",
        "/",
        "/",
        "--unshare-all",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--",
        "true",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match (report.inside)(profile, &argv) {
        Some(o) if o.status.success() => report.add(
            Status::Ok,
            "Claude Code's Bash sandbox can start inside the sandbox (nested bubblewrap works)",
            None,
        ),
        Some(o) => report.add(
            Status::Error,
            format!(
                "Claude Code's Bash sandbox cannot start inside the sandbox: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Some(
                "every Bash command would fail (it never runs unsandboxed); check user \
                 namespaces (above) and `clp run NAME -- bwrap --unshare-all --proc /proc true`"
                    .into(),
            ),
        ),
        None => report.add(
            Status::Error,
            "the sandbox itself does not start",
            Some(format!("clp run {} -- true", profile.name)),
        ),
    }
}

fn backend_checks(profile: &Profile, clp: &Path, report: &mut Report) {
    let Some(backend) = &profile.backend else {
        report.add(Status::Ok, "no custom backend (Anthropic's API)", None);
        return;
    };
    let url = backend.url.join(&backend.health);
    // From inside the boundary when there is one: the same plan, running a probe.
    let inside = if profile.isolation.level == Level::Sandbox {
        (report.inside)(
            profile,
            &[clp.display().to_string(), "__probe".into(), url.clone()],
        )
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    } else {
        None
    };
    let (state, place) = match inside.as_deref() {
        Some("ready") => (Health::Ready, "from inside the sandbox"),
        Some("loading") => (Health::Loading, "from inside the sandbox"),
        Some(other) if !other.is_empty() => (
            Health::Unreachable(other.to_owned()),
            "from inside the sandbox",
        ),
        _ if profile.isolation.level == Level::Container => (
            probe::health(&url, Duration::from_secs(2)),
            "from the host, whose network the container shares",
        ),
        _ => (probe::health(&url, Duration::from_secs(2)), "from the host"),
    };
    match state {
        Health::Ready => report.add(Status::Ok, format!("backend `{url}` ready ({place})"), None),
        Health::Loading => report.add(
            Status::Warning,
            format!("backend `{url}` is loading a model ({place})"),
            Some("wait, or set `backend.wait`".into()),
        ),
        Health::Status(c) => report.add(
            Status::Error,
            format!("backend `{url}` answered HTTP {c} ({place})"),
            None,
        ),
        Health::Unreachable(why) => report.add(
            Status::Error,
            format!("backend `{url}` unreachable ({place}): {why}"),
            Some("start llama-server, or fix `backend.url`".into()),
        ),
    }
    let models_url = backend
        .models
        .as_ref()
        .map(|m| backend.url.join(m))
        .unwrap_or_else(|| backend.url.join("/v1/models"));
    if let Ok(ids) = probe::models(&models_url, Duration::from_secs(2)) {
        let wanted = profile.model.default.clone().unwrap_or_default();
        if ids.contains(&wanted) {
            report.add(
                Status::Ok,
                format!("backend serves `{wanted}` ({})", ids.join(", ")),
                None,
            );
        } else {
            report.add(
                Status::Warning,
                format!(
                    "backend does not list `{wanted}`; it serves: {}",
                    ids.join(", ")
                ),
                Some("start llama-server with `--alias` set to the profile's model name".into()),
            );
        }
    }
    if let Some(build) = probe::server_build(backend.url.as_str(), Duration::from_secs(2)) {
        report.add(Status::Ok, format!("server: {build}"), None);
    }
}
