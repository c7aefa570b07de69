//! Level C: Claude Code inside a Docker or Podman container.
//!
//! The workspace is mounted at its real absolute path (IDE lock files and Claude Code's
//! per-project state name host paths), the host network is shared so the loopback
//! backend and the IDE's websocket stay reachable, and the container has no capabilities,
//! no new privileges and a read-only root. Secrets are passed by name (`-e VAR`), never
//! as values in argv, where `ps` would show them.

use std::collections::BTreeMap;

use crate::host::Host;
use crate::model::Engine;
use crate::render::{LaunchPlan, PlannedFile, Preflight, RenderError, StatePaths, WritePolicy};
use crate::resolve::Profile;
use crate::sandbox::{sandbox_user, PASS};

/// The engine a profile uses on this host: the profile's, else Podman, else Docker.
pub fn engine(profile: &Profile, host: &Host) -> Engine {
    match profile.container.engine {
        Engine::Auto if host.program("podman").is_some() => Engine::Podman,
        Engine::Auto if host.program("docker").is_some() => Engine::Docker,
        Engine::Auto => Engine::Podman,
        e => e,
    }
}

/// Engine settings clp uses for rootful Podman: runc (crun fails on hybrid cgroups here)
/// and explicit ulimits (the default `nofile` cannot be set in some nested setups).
pub const ROOT_CONTAINERS_CONF: &str = "[containers]\n\
default_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\n\
[engine]\n\
runtime = \"runc\"\n";

/// Wraps `plan` in `docker run` / `podman run`.
pub fn wrap(
    profile: &Profile,
    host: &Host,
    mut plan: LaunchPlan,
) -> Result<LaunchPlan, RenderError> {
    let engine = engine(profile, host);
    let name = match engine {
        Engine::Docker => "docker",
        _ => "podman",
    };
    let paths = StatePaths::of(profile);
    let home = host.home.display().to_string();
    plan.preflight.insert(
        0,
        Preflight::Program {
            name: name.into(),
            install: format!("apt-get install {name}"),
        },
    );

    let mut a: Vec<String> = vec![
        host.program(name)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| name.into()),
        "run".into(),
        "--rm".into(),
        "--init".into(),
        "-i".into(),
    ];
    if host.tty {
        a.push("-t".into());
    }
    let user = sandbox_user(profile, host)?;
    match engine {
        Engine::Podman if host.uid != 0 => {
            a.push("--userns=keep-id".into());
        }
        _ => a.push(format!("--user={}:{}", user.uid, user.gid)),
    }
    if user.switch {
        plan.owner = Some((user.uid, user.gid));
    }
    a.extend([
        "--cap-drop=ALL".into(),
        "--security-opt=no-new-privileges".into(),
        "--read-only".into(),
    ]);
    if engine == Engine::Docker {
        // Podman's --read-only adds a tmpfs /tmp itself; Docker's does not.
        a.push("--tmpfs=/tmp".into());
    }
    a.push("--network=host".into());
    let vol = |a: &mut Vec<String>, src: &str, dst: &str, ro: bool| {
        a.push(format!(
            "--volume={src}:{dst}{}",
            if ro { ":ro" } else { "" }
        ));
    };
    vol(&mut a, &paths.home.display().to_string(), &home, false);
    plan.dirs.push(paths.home.clone());
    let state = paths.root.display().to_string();
    vol(&mut a, &state, &state, false);
    let config = profile.isolation.config_dir.display().to_string();
    if !profile.isolation.config_dir.starts_with(&paths.root) {
        vol(&mut a, &config, &config, false);
    }
    let ws = profile.workspace.path.display().to_string();
    vol(&mut a, &ws, &ws, false);
    for p in &profile.workspace.writable {
        let p = p.display().to_string();
        vol(&mut a, &p, &p, false);
    }
    for p in &profile.workspace.read_only {
        let p = p.display().to_string();
        vol(&mut a, &p, &p, true);
    }
    if profile.workspace.protect_git {
        for sub in [".git/hooks", ".git/config"] {
            if host.existing.contains(&profile.workspace.path.join(sub)) {
                let p = profile.workspace.path.join(sub).display().to_string();
                vol(&mut a, &p, &p, true);
            }
        }
    }
    if host.ide_dir_exists && !profile.isolation.main_config {
        let ide = host.main_claude_dir().join("ide").display().to_string();
        vol(&mut a, &ide, &format!("{config}/ide"), true);
    }
    a.push(format!("--workdir={ws}"));

    // The container's environment: what clp sets, by value (nothing secret), the
    // parent's terminal and IDE variables and the secrets by name only.
    let mut container_env: BTreeMap<String, String> = plan.env.set.clone();
    container_env.insert("HOME".into(), home.clone());
    for (k, v) in &container_env {
        a.push(format!("--env={k}={v}"));
    }
    let mut by_name: Vec<String> = plan.env.secrets.keys().cloned().collect();
    for var in PASS.iter().chain(crate::render::IDE_VARS) {
        match var.strip_suffix('*') {
            Some(prefix) => {
                by_name.extend(host.env.keys().filter(|k| k.starts_with(prefix)).cloned())
            }
            None if *var != "PATH" && host.env.contains_key(*var) => by_name.push(var.to_string()),
            None => {}
        }
    }
    by_name.sort();
    by_name.dedup();
    for k in by_name {
        a.push(format!("--env={k}"));
    }
    a.push(profile.container.image.clone());
    // Inside the image, Claude Code is on PATH as `claude`.
    let mut inner = std::mem::take(&mut plan.argv);
    if let Some(first) = inner.first_mut() {
        if *first == crate::render::claude_program(profile, host) {
            *first = "claude".into();
        }
    }
    a.extend(inner);
    plan.argv = a;

    // The engine's own environment: clp's, minus other modes' credentials, plus the
    // secrets it forwards by name.
    plan.env.set.clear();
    if engine == Engine::Podman && host.uid == 0 {
        let conf = paths.root.join("containers.conf");
        plan.files.push(PlannedFile {
            path: conf.clone(),
            contents: ROOT_CONTAINERS_CONF.into(),
            mode: 0o644,
            policy: WritePolicy::Replace,
        });
        plan.env
            .set
            .insert("CONTAINERS_CONF".into(), conf.display().to_string());
    }
    plan.notes.push(format!(
        "the container ({name}, image `{}`) is the boundary; Claude Code's own Bash \
         sandbox is off inside it (containers cannot create the namespaces it needs), and \
         every Bash command asks first",
        profile.container.image
    ));
    Ok(plan)
}

/// A Containerfile for a profile's image: Debian slim, Node.js from Debian, Claude Code
/// from npm at the profile's pinned version.
pub fn containerfile(profile: &Profile) -> String {
    let version = profile
        .claude
        .version
        .as_deref()
        .and_then(|v| v.strip_prefix('='))
        .map(str::trim)
        .unwrap_or("latest");
    format!(
        "# Claude Code for clp profile `{name}` (level C).\n\
FROM docker.io/library/debian:bookworm-slim\n\
RUN apt-get update \\\n\
 && apt-get install -y --no-install-recommends nodejs npm git ca-certificates ripgrep \\\n\
 && rm -rf /var/lib/apt/lists/*\n\
RUN npm install -g @anthropic-ai/claude-code@{version} && npm cache clean --force\n\
ENV DISABLE_AUTOUPDATER=1\n\
CMD [\"claude\"]\n",
        name = profile.name
    )
}
