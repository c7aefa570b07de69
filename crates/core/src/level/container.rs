//! Level C: Claude Code inside a Docker or Podman container.
//!
//! The workspace is mounted at its real absolute path (IDE lock files and Claude Code's
//! per-project state name host paths), and the container has no capabilities, no new
//! privileges and a read-only root. Its network is the host's (`open`), or, with
//! Podman, the namespace of clp's helper (`allowlist`, `offline`: the same relays and
//! proxy as level B). A session dir in memory, mounted read-only, carries the secrets
//! (never in the engine's state) and a lock clp holds for the session's life: when clp
//! is gone, whatever ended it, the container's watchdog stops Claude Code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::host::Host;
use crate::model::Engine;
use crate::plan::{Boundary, LaunchPlan, Mount, MountKind, Preflight, SessionUser, Why};
use crate::policy::{Tool, IDE_VARS, PASS};
use crate::profile::Profile;

/// The engine a profile uses on this host: the profile's, else Podman, else Docker.
pub fn engine(profile: &Profile, host: &Host) -> Engine {
    host.engine(profile.container.engine)
}

/// Flags rootful Podman needs on some hosts, rendered into argv rather than a
/// `CONTAINERS_CONF` file: a file in the profile's state dir would be owned by (and
/// mounted writable for) the unprivileged user the container runs as, who could then
/// point root's Podman at a runtime of their choosing. Explicit ulimits, because Podman's
/// rootful defaults (`nofile` 1048576) cannot always be set ("error setting rlimit type
/// 7"); runc (when installed), because crun fails on hybrid cgroups ("cgroups in hybrid
/// mode").
pub const ROOT_PODMAN_ULIMITS: &[&str] =
    &["--ulimit=nofile=20000:20000", "--ulimit=nproc=32768:32768"];

/// Where a host's Claude Code binary is mounted when `claude.command` is an absolute path.
pub const MOUNTED_CLAUDE: &str = "/usr/local/bin/claude";

/// Where the session dir appears inside: `lock` (held by clp while it lives) and
/// `secrets/` (one file per secret).
pub const SESSION_DIR: &str = "/run/clp-session";

/// Wraps `plan` in `docker run` / `podman run`.
pub fn wrap(
    profile: &Profile,
    host: &Host,
    mut boundary: Boundary,
    mut plan: LaunchPlan,
) -> Result<LaunchPlan, Error> {
    let engine = engine(profile, host);
    let tool = Tool::engine(engine);
    let name = tool.program();
    if plan.network.is_some() && engine == Engine::Docker {
        return Err(Error::profile(format!(
            "`network.mode = \"{}\"` at level `container` needs Podman: Docker's daemon \
             cannot join the network namespace clp makes for the session",
            crate::network::mode_name(profile.network.mode)
        ))
        .hint(
            "set `container.engine = \"podman\"`, or `isolation.level = \"sandbox\"`, or \
             `network.mode = \"open\"`",
        ));
    }
    plan.preflight.insert(0, Preflight::program(tool));
    if boundary.user.switch {
        plan.owner = Some((boundary.user.uid, boundary.user.gid));
    }
    let mut a = run_flags(profile, host, engine, boundary.user, plan.network.is_some());
    plan.dirs.extend(
        boundary
            .mounts
            .iter()
            .filter(|m| m.why == Why::ProfileHome)
            .map(|m| m.source.clone()),
    );
    let mounts = &mut boundary.mounts;
    let host_claude = crate::render::claude_program(profile, host);
    let mounted_claude = host_binary(profile, host);
    if let Some(bin) = &mounted_claude {
        // Before the settings file: the order is the argv's.
        let at = mounts
            .iter()
            .position(|m| m.why == Why::Settings)
            .unwrap_or(mounts.len());
        let anchor = bin.parent().unwrap_or(Path::new("/"));
        let dest = Path::new(MOUNTED_CLAUDE);
        let m = Mount::new(bin, anchor, dest, false, Why::Program).kind(MountKind::File);
        mounts.insert(at, m);
    }
    mounts.push(Mount::new(
        &boundary.session,
        &host.runtime_dir,
        Path::new(SESSION_DIR),
        false,
        Why::Session,
    ));
    a.extend(volumes(mounts, name)?);
    a.push(format!("--workdir={}", profile.workspace.path.display()));
    a.extend(env_args(&plan.env.set, host));
    a.push(profile.container.image.clone());
    // Inside the image, Claude Code is on PATH as `claude` (or mounted at MOUNTED_CLAUDE).
    let mut inner = std::mem::take(&mut plan.argv);
    if let Some(first) = inner.first_mut() {
        if *first == host_claude {
            *first = match &mounted_claude {
                Some(_) => MOUNTED_CLAUDE.into(),
                None => "claude".into(),
            };
        }
    }
    let secrets: Vec<String> = plan.env.secrets.keys().cloned().collect();
    a.extend(entry(mounts, &secrets));
    a.extend(inner);
    plan.argv = a;

    // The engine's own environment: clp's, minus other modes' credentials; no secret.
    plan.env.set.clear();
    plan.notes.push(format!(
        "the container ({name}, image `{}`) is the boundary; Claude Code's own Bash \
         sandbox is off inside it (containers cannot create the namespaces it needs), and \
         every Bash command asks first",
        profile.container.image
    ));
    plan.boundary = Some(boundary);
    Ok(plan)
}

/// `ENGINE run` and its options: no capabilities, no new privileges, a read-only root,
/// the user the session runs as, and the network.
fn run_flags(
    profile: &Profile,
    host: &Host,
    engine: Engine,
    user: SessionUser,
    filtered: bool,
) -> Vec<String> {
    let tool = Tool::engine(engine);
    let rootful_podman = engine == Engine::Podman && host.uid == 0;
    let mut a: Vec<String> = vec![host
        .program(tool.program())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| tool.program().into())];
    if rootful_podman && host.program(Tool::Runc.program()).is_some() {
        a.push("--runtime=runc".into());
    }
    a.extend(["run", "--rm", "--init", "-i"].map(String::from));
    // `podman ps` names the profile and the session (clp's pid).
    let name: String = profile
        .name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '.' | '-' => c,
            _ => '-',
        })
        .collect();
    a.push(format!("--name=clp-{name}-{}", crate::plan::SESSION));
    if host.tty {
        a.push("-t".into());
    }
    match engine {
        // Rootless Podman in clp's network namespace runs the session as the user's
        // own uid (uid 0 of Podman's user namespace): with `keep-id` the container's
        // own user namespace could not mount its /sys in a namespace it does not own.
        Engine::Podman if host.uid != 0 && filtered => {}
        Engine::Podman if host.uid != 0 => a.push("--userns=keep-id".into()),
        _ => a.push(format!("--user={}:{}", user.uid, user.gid)),
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
    if rootful_podman {
        a.extend(ROOT_PODMAN_ULIMITS.iter().map(|s| s.to_string()));
    }
    a.push(if filtered {
        format!("--network=ns:/proc/{}/ns/net", crate::network::HELPER_PID)
    } else {
        "--network=host".into()
    });
    if profile.container.image.starts_with("localhost/") {
        // A local build: never try to pull it from a registry named `localhost`.
        a.push("--pull=never".into());
    }
    a
}

/// The command prefix the container runs first: it checks that each mount is the very
/// file or directory clp checked, exports each secret from its file, starts the watchdog
/// that stops the session once clp no longer holds the session lock (clp killed, the
/// terminal gone), then becomes the command.
///
/// The engine resolves mount sources by path, after clp's check. A session of the same
/// workspace still running could swap a source it can write (a protected path it created,
/// say `.vscode`) for a link to somewhere else in between, and the engine would mount that
/// instead (the user's `~/.ssh`, at level C as a user). So clp fills in, at launch, the
/// device and inode of what it checked ([`Mount::id_token`]), and before anything of the
/// session runs, the container compares them with what is mounted: on a difference it
/// names the path and exits with 2.
fn entry(mounts: &[Mount], secrets: &[String]) -> Vec<String> {
    let mut script = String::from(
        "command -v stat >/dev/null || { echo 'clp: the image has no `stat`, which clp \
         needs to check its mounts' >&2; exit 2; }; \
         c() { [ \"$(stat -c %d:%i -- \"$1\")\" = \"$2\" ] || { printf 'clp: `%s` in the \
         container is not what clp checked before the start (replaced since?); nothing was \
         run\\n' \"$1\" >&2; exit 2; }; }; ",
    );
    for m in mounts {
        let dest = m.dest.display().to_string();
        let dest = shlex::try_quote(&dest).map_or_else(|_| "''".into(), |q| q.into_owned());
        script.push_str(&format!("c {dest} '{}' && ", m.id_token()));
    }
    // Names are environment variable names (checked), safe to write into the script.
    for n in secrets {
        script.push_str(&format!(
            "{{ {n}=\"$(cat {SESSION_DIR}/secrets/{n})\" || exit 125; }} && export {n} && "
        ));
    }
    script.push_str(&format!(
        "{{ (flock -x {SESSION_DIR}/lock true; kill -TERM $$) & }} && exec \"$@\""
    ));
    vec!["/bin/sh".into(), "-c".into(), script, "clp".into()]
}

/// Option (b): `claude.command` names a binary on the host by its absolute path; it is
/// mounted read-only at `/usr/local/bin/claude` (its real path may be under a directory
/// the container's user cannot enter, such as the image's `/root`), and the image then
/// only needs glibc.
fn host_binary(profile: &Profile, host: &Host) -> Option<PathBuf> {
    Path::new(&profile.claude.command)
        .is_absolute()
        .then(|| {
            host.program_targets
                .get(&profile.claude.command)
                .cloned()
                .or_else(|| host.program(&profile.claude.command).map(Path::to_path_buf))
        })
        .flatten()
}

/// `--volume` options for the mounts. The engine resolves the sources by path: clp
/// checks them (no symbolic link below their anchors) just before it starts the engine.
fn volumes(mounts: &[Mount], engine: &str) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for m in mounts {
        for p in [&m.source, &m.dest] {
            let p = p.display().to_string();
            if p.contains(':') {
                return Err(Error::host(format!(
                    "`{p}` contains `:`, which `{engine} run --volume` cannot mount"
                ))
                .hint("rename the directory, or use level `sandbox`"));
            }
        }
        out.push(format!(
            "--volume={}:{}{}",
            m.source.display(),
            m.dest.display(),
            if m.writable { "" } else { ":ro" }
        ));
    }
    Ok(out)
}

/// The container's environment: what clp sets, by value (nothing secret), and the
/// parent's terminal and IDE variables by name.
fn env_args(set: &BTreeMap<String, String>, host: &Host) -> Vec<String> {
    let mut out = Vec::new();
    let mut env = set.clone();
    env.insert("HOME".into(), host.home.display().to_string());
    // The image (or the mounted binary) is read-only: updates come with a new image.
    env.insert("DISABLE_AUTOUPDATER".into(), "1".into());
    for (k, v) in &env {
        out.push(format!("--env={k}={v}"));
    }
    let mut by_name: Vec<String> = Vec::new();
    for var in PASS.iter().chain(IDE_VARS) {
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
    out.extend(by_name.into_iter().map(|k| format!("--env={k}")));
    out
}

/// A Containerfile for a profile's image: Claude Code's native binary from npm at the
/// profile's pinned version, fetched in a Node.js stage and copied into Debian slim (it
/// needs glibc, not Node.js), plus git and CA certificates.
pub fn containerfile(profile: &Profile) -> String {
    let version = profile
        .claude
        .version
        .as_ref()
        .and_then(|v| v.pinned())
        .unwrap_or("latest");
    CONTAINERFILE
        .replace("{version}", version)
        .replace("{name}", &profile.name)
}

const CONTAINERFILE: &str = r#"# Claude Code {version} for clp profile `{name}` (level C).
# Stage 1 fetches the npm package; only its native binary (glibc) goes into the image.
FROM docker.io/library/node:22-bookworm-slim AS fetch
RUN npm install -g @anthropic-ai/claude-code@{version}
RUN bin="$(readlink -f "$(npm prefix -g)/bin/claude")" \
 && if head -c 4 "$bin" | grep -q ELF; then cp "$bin" /claude; \
    else echo "this Claude Code version has no native binary" >&2; exit 1; fi

FROM docker.io/library/debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git \
 && rm -rf /var/lib/apt/lists/*
COPY --from=fetch /claude /usr/local/bin/claude
ENV DISABLE_AUTOUPDATER=1
CMD ["claude"]
"#;

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::render::{render_run, render_use};
    use crate::{resolve, Catalog, Override, SearchPath};

    fn profile(host: &Host, sets: &[&str]) -> Profile {
        let catalog = Catalog::new(SearchPath::default());
        let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
        resolve(&catalog.load("local-container", &overrides).unwrap(), host).unwrap()
    }

    fn root_host() -> Host {
        let mut host = Host::fixture();
        host.uid = 0;
        host.gid = 0;
        host.home = PathBuf::from("/root");
        host.state_dir = PathBuf::from("/root/.local/state/clp");
        host
    }

    fn has(argv: &[String], arg: &str) -> bool {
        argv.iter().any(|a| a == arg)
    }

    /// Rootful Podman gets its settings as flags: no engine config file that the
    /// container's user could rewrite, no `CONTAINERS_CONF`.
    #[test]
    fn rootful_podman_uses_flags_not_a_config_file() {
        let mut host = root_host();
        host.programs.remove("runc");
        let p = profile(&host, &["container.engine=podman", "isolation.user=user"]);
        let plan = render_use(&p, &host, &[]).unwrap();
        assert_eq!(plan.argv[1], "run", "no runc on this host: {:?}", plan.argv);
        for flag in ROOT_PODMAN_ULIMITS {
            assert!(has(&plan.argv, flag), "{flag}");
        }
        assert!(has(&plan.argv, "--user=1000:1000"));
        assert!(!has(&plan.argv, "--userns=keep-id"));
        assert_eq!(plan.owner, Some((1000, 1000)));
        assert!(plan.env.set.is_empty(), "{:?}", plan.env.set);
        assert!(plan
            .files
            .iter()
            .all(|f| !f.path.ends_with("containers.conf")));

        host.programs.insert("runc".into(), "/usr/sbin/runc".into());
        let plan = render_use(&p, &host, &[]).unwrap();
        assert_eq!(plan.argv[1..3], ["--runtime=runc", "run"]);

        // Rootless Podman and Docker need none of it.
        let host = Host::fixture();
        for engine in ["podman", "docker"] {
            let p = profile(
                &host,
                &[&format!("container.engine={engine}"), "network.mode=open"],
            );
            let plan = render_use(&p, &host, &[]).unwrap();
            assert!(!plan.argv.iter().any(|a| a.starts_with("--ulimit")));
            assert_eq!(plan.argv[1], "run");
            assert_eq!(has(&plan.argv, "--userns=keep-id"), engine == "podman");
            assert_eq!(has(&plan.argv, "--user=1000:1000"), engine == "docker");
            assert_eq!(has(&plan.argv, "--tmpfs=/tmp"), engine == "docker");
        }
    }

    /// A limited network at level C: Podman joins clp's namespace (rootless Podman with
    /// its helper in Podman's user namespace, no `keep-id`); Docker, whose daemon cannot,
    /// is refused rather than run with the network open.
    #[test]
    fn a_limited_network_joins_the_helper_or_is_refused() {
        for host in [Host::fixture(), root_host()] {
            for mode in ["allowlist", "offline"] {
                let p = profile(
                    &host,
                    &[&format!("network.mode={mode}"), "isolation.user=user"],
                );
                let plan = render_use(&p, &host, &[]).unwrap();
                assert!(has(&plan.argv, "--network=ns:/proc/{helper-pid}/ns/net"));
                assert!(!has(&plan.argv, "--userns=keep-id"));
                let net = plan.network.as_ref().unwrap();
                assert_eq!(net.helper_prefix.is_empty(), host.uid == 0, "{net:?}");

                let p = profile(
                    &host,
                    &[&format!("network.mode={mode}"), "container.engine=docker"],
                );
                let err = render_use(&p, &host, &[]).unwrap_err();
                assert!(err.message.contains(mode), "{err}");
                assert!(err.hints[0].contains("podman"), "{:?}", err.hints);
            }
        }
    }

    #[test]
    fn a_path_with_a_colon_is_refused() {
        let mut host = Host::fixture();
        host.cwd = PathBuf::from("/home/user/a:b");
        host.existing.clear();
        let p = profile(&host, &[]);
        let err = render_run(&p, &host, &["true".into()]).unwrap_err();
        assert!(err.message.contains("/home/user/a:b"), "{err}");
    }

    /// Option (b): `claude.command` as an absolute path mounts the host's binary (its
    /// resolved target) read-only at `/usr/local/bin/claude` and runs it from there.
    #[test]
    fn an_absolute_claude_command_is_mounted_from_the_host() {
        let mut host = Host::fixture();
        let link = "/home/user/.local/bin/claude";
        let real = "/home/user/.local/share/claude/versions/2.1.330";
        host.programs.insert(link.into(), link.into());
        host.program_targets.insert(link.into(), real.into());
        let p = profile(
            &host,
            &[
                &format!("claude.command={link}"),
                "container.image=localhost/clp-base:bookworm",
            ],
        );
        let plan = render_use(&p, &host, &["-p".into(), "hi".into()]).unwrap();
        assert!(has(
            &plan.argv,
            &format!("--volume={real}:{MOUNTED_CLAUDE}:ro")
        ));
        let image = plan
            .argv
            .iter()
            .position(|a| a == "localhost/clp-base:bookworm")
            .unwrap();
        // After the image: the entry script (`/bin/sh -c SCRIPT clp`), then the command.
        assert_eq!(plan.argv[image + 1..image + 3], ["/bin/sh", "-c"]);
        assert_eq!(plan.argv[image + 4..image + 6], ["clp", MOUNTED_CLAUDE]);
        assert_eq!(plan.argv.last().unwrap(), "hi");

        // By name, Claude Code comes from the image.
        let p = profile(&host, &["network.mode=open"]);
        let plan = render_use(&p, &host, &[]).unwrap();
        let image = plan
            .argv
            .iter()
            .position(|a| a == "localhost/clp-claude:2.1.330")
            .unwrap();
        assert_eq!(plan.argv[image + 5], "claude");
        assert!(!plan.argv.iter().any(|a| a.contains("/usr/bin/claude")));
    }

    /// The entry script checks every mount (but the secrets, made at launch) against the
    /// identity clp fills in, before the command runs.
    #[test]
    fn the_container_checks_its_mounts_before_running_anything() {
        let host = Host::fixture();
        let plan = render_use(&profile(&host, &[]), &host, &[]).unwrap();
        let script = &plan.argv[plan.argv.iter().position(|a| a == "-c").unwrap() + 1];
        let mounts = &plan.boundary.as_ref().unwrap().mounts;
        assert!(mounts.len() > 5);
        for m in mounts {
            let check = format!("c {} '{}' && ", m.dest.display(), m.id_token());
            assert!(script.contains(&check), "{check}\n{script}");
        }
        assert!(script.ends_with("exec \"$@\""), "{script}");
    }

    #[test]
    fn the_containerfile_pins_the_version() {
        let host = Host::fixture();
        let text = containerfile(&profile(&host, &[]));
        assert!(text.contains("npm install -g @anthropic-ai/claude-code@2.1.330\n"));
        assert!(text.contains("COPY --from=fetch /claude /usr/local/bin/claude"));
    }
}
