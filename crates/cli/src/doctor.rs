//! `clp doctor [NAME]`: can this machine launch the profile? Each check says ok, warning
//! or error, with one line saying how to fix it.

use std::fmt;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use clp_core::model::Level;
use clp_core::probe::{self, Health};
use clp_core::render::{render_run, render_use};
use clp_core::Profile;

use crate::args::GlobalArgs;
use crate::cmd::Ctx;
use crate::failure::Failure;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    Ok,
    Warning,
    Error,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok     ",
            Status::Warning => "warning",
            Status::Error => "error  ",
        })
    }
}

struct Report(Vec<(Status, String, Option<String>)>);

impl Report {
    fn add(&mut self, status: Status, what: impl Into<String>, fix: Option<String>) {
        let what = what.into();
        println!("{status}  {what}");
        if let Some(f) = &fix {
            println!("         fix: {f}");
        }
        self.0.push((status, what, fix));
    }
}

pub fn run(g: &GlobalArgs, name: Option<&str>) -> Result<ExitCode, Failure> {
    let mut ctx = Ctx::new(g)?;
    let mut report = Report(Vec::new());
    let profile = match name {
        Some(n) => Some(ctx.profile(n)?.1),
        None => None,
    };
    let level = profile.as_ref().map(|p| p.isolation.level);
    let command = profile
        .as_ref()
        .map_or("claude".to_owned(), |p| p.claude.command.clone());

    // Claude Code itself.
    match ctx.host.program(&command) {
        Some(path) => {
            let version = Command::new(path)
                .arg("--version")
                .stdin(Stdio::null())
                .output()
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .and_then(|s| s.split_whitespace().next().map(str::to_owned));
            let req = profile.as_ref().and_then(|p| p.claude.version.clone());
            match (version, req) {
                (Some(v), Some(req)) => {
                    let fits = semver::Version::parse(&v)
                        .ok()
                        .zip(semver::VersionReq::parse(&req).ok())
                        .is_some_and(|(v, r)| r.matches(&v));
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
            Some("npm install -g @anthropic-ai/claude-code".into()),
        ),
    }

    if level.is_none() || level == Some(Level::Sandbox) {
        sandbox_checks(&ctx, &mut report);
    }
    if level == Some(Level::Container) {
        if let Some(p) = &profile {
            container_checks(&ctx, p, &mut report);
        }
    }

    // The IDE integration.
    if ctx.host.ide_dir_exists {
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

    // Managed settings outrank everything a profile renders.
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

    if let Some(p) = profile
        .as_ref()
        .filter(|p| p.isolation.level == Level::Sandbox)
    {
        nested_sandbox_check(&ctx, p, &mut report);
    }
    if let Some(p) = &profile {
        backend_checks(&ctx, p, &mut report)?;
        if let Ok(plan) = render_use(p, &ctx.host, &[]) {
            for n in plan.notes {
                println!("note     {n}");
            }
        }
    }
    let worst = report.0.iter().map(|r| r.0).max().unwrap_or(Status::Ok);
    Ok(if worst == Status::Error {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn sandbox_checks(ctx: &Ctx, report: &mut Report) {
    for (name, install) in [
        ("bwrap", "apt-get install bubblewrap"),
        ("socat", "apt-get install socat"),
    ] {
        match ctx.host.program(name) {
            Some(p) => report.add(Status::Ok, format!("`{name}` at `{}`", p.display()), None),
            None => report.add(
                Status::Error,
                format!("`{name}` not found"),
                Some(install.into()),
            ),
        }
    }
    if ctx.host.uid == 0 && ctx.host.program("setpriv").is_none() {
        report.add(
            Status::Error,
            "`setpriv` not found (needed to leave root inside the sandbox)",
            Some("apt-get install util-linux".into()),
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
    if let Some(bwrap) = ctx.host.program("bwrap") {
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

fn container_checks(ctx: &Ctx, profile: &Profile, report: &mut Report) {
    let engine = match clp_core::container::engine(profile, &ctx.host) {
        clp_core::model::Engine::Docker => "docker",
        _ => "podman",
    };
    let Some(path) = ctx.host.program(engine) else {
        report.add(
            Status::Error,
            format!("`{engine}` not found"),
            Some(if engine == "docker" {
                "apt-get install docker.io (Debian/Ubuntu)".into()
            } else {
                "apt-get install podman runc".into()
            }),
        );
        return;
    };
    let info = Command::new(path)
        .args(["image", "exists", &profile.container.image])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let present = match engine {
        "podman" => info.is_ok_and(|s| s.success()),
        _ => Command::new(path)
            .args(["image", "inspect", &profile.container.image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    };
    if present {
        report.add(
            Status::Ok,
            format!("image `{}` present", profile.container.image),
            None,
        );
        // Usable means the profile's own container starts (rootless or not) and Claude
        // Code runs in it.
        match run_inside(ctx, profile, &["claude".into(), "--version".into()]) {
            Some(o) if o.status.success() => report.add(
                Status::Ok,
                format!(
                    "the container starts ({}) and runs Claude Code {}",
                    if ctx.host.uid == 0 {
                        "rootful"
                    } else {
                        "rootless"
                    },
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
                Some(format!(
                    "clp run {} --no-check -- claude --version",
                    profile.name
                )),
            ),
            None => report.add(
                Status::Error,
                "the container could not be launched",
                Some(format!(
                    "clp run {} --no-check -- claude --version",
                    profile.name
                )),
            ),
        }
    } else {
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
    }
}

/// Runs `argv` inside the profile's boundary (writing its files first), if the program
/// the boundary needs (bwrap, the container engine) exists.
fn run_inside(ctx: &Ctx, profile: &Profile, argv: &[String]) -> Option<std::process::Output> {
    if profile.isolation.level == Level::Sandbox {
        ctx.host.program("bwrap")?;
    }
    let plan = render_run(profile, &ctx.host, argv).ok()?;
    crate::launch::apply_plan(&plan).ok()?;
    let env = plan.env.build(&ctx.host.env, &Default::default());
    Command::new(&plan.argv[0])
        .args(&plan.argv[1..])
        .env_clear()
        .envs(env)
        .current_dir(&plan.cwd)
        .stdin(Stdio::null())
        .output()
        .ok()
}

/// Claude Code's Bash sandbox is a bubblewrap with a user, pid and network namespace and
/// a fresh /proc; check that one starts inside ours.
fn nested_sandbox_check(ctx: &Ctx, profile: &Profile, report: &mut Report) {
    let Some(bwrap) = ctx.host.program("bwrap") else {
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
    match run_inside(ctx, profile, &argv) {
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

fn backend_checks(ctx: &Ctx, profile: &Profile, report: &mut Report) -> Result<(), Failure> {
    let Some(backend) = &profile.backend else {
        report.add(Status::Ok, "no custom backend (Anthropic's API)", None);
        return Ok(());
    };
    let url = format!("{}{}", backend.url, backend.health);
    // From inside the boundary when there is one: the same plan, running a probe.
    let inside = if profile.isolation.level == Level::Sandbox {
        let exe = std::env::current_exe().map_err(|e| Failure::Os(e.to_string()))?;
        run_inside(
            ctx,
            profile,
            &[exe.display().to_string(), "__probe".into(), url.clone()],
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
        .map(|m| format!("{}{m}", backend.url))
        .unwrap_or_else(|| format!("{}/v1/models", backend.url));
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
    if let Some(build) = probe::server_build(&backend.url, Duration::from_secs(2)) {
        report.add(Status::Ok, format!("server: {build}"), None);
    }
    Ok(())
}
