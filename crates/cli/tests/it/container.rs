//! Level C with real Podman: `clp run` inside the container (the workspace writable at its
//! real path, the rest of the host absent, no capabilities, no new privileges, the host's
//! loopback backend reachable, secrets never in any process's argv, the IDE lock files
//! read-only), and the real Claude Code answering through it, each as root and as a
//! normal user; the host's binary mounted into a slim image (option b); and the Docker
//! rendering run by the docker CLI against `podman system service`.
//!
//! These tests need Podman and the image `localhost/clp-claude:2.1.330` in the storage
//! of whoever runs clp (root's, and the test user's rootless storage). They do not build
//! it: `scripts/ci-podman.sh clptest` does (about a minute, cached), and `.ci/run` calls
//! it. Without them the tests say SKIPPED, or fail under `CLP_REQUIRE_ALL=1`.
//!
//! Rootless Podman keeps its images under the user's HOME, and these tests give clp a
//! temporary HOME; a `storage.conf` in that HOME points back at the user's real storage.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clp_test_backend::{Backend, Config};
use sha2::{Digest, Sha256};

use crate::common::{self, assert_only_changed, require, text, tree};
use crate::sandbox::{test_user, As, Box, TestUser};

/// The image the shipped `local-container` profile names.
pub const IMAGE: &str = "localhost/clp-claude:2.1.330";
/// The base image (glibc, no Claude Code) `scripts/ci-podman.sh` builds first.
const BASE_IMAGE: &str = "localhost/clp-base:bookworm";
const BUILD: &str = "scripts/ci-podman.sh clptest";

fn is_root() -> bool {
    nix::unistd::getuid().is_root()
}

/// A user's rootless Podman storage: where its images are, and its driver.
#[derive(Clone, Debug)]
struct Storage {
    graphroot: String,
    driver: String,
}

/// `podman ARGS` as `user` with their real home (as root: through setpriv).
pub fn podman_as(user: &TestUser, args: &[&str]) -> Output {
    let home = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(user.uid))
        .ok()
        .flatten()
        .map(|u| u.dir)
        .unwrap_or_else(|| PathBuf::from("/"));
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            &format!("--reuid={}", user.uid),
            &format!("--regid={}", user.gid),
            "--clear-groups",
            "--",
            "podman",
        ]);
        c
    } else {
        Command::new("podman")
    };
    cmd.args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The test user's storage, looked up once.
fn user_storage(user: &TestUser) -> Option<Storage> {
    static STORAGE: OnceLock<Option<Storage>> = OnceLock::new();
    STORAGE
        .get_or_init(|| {
            let out = podman_as(
                user,
                &[
                    "info",
                    "--format",
                    "{{.Store.GraphRoot}} {{.Store.GraphDriverName}}",
                ],
            );
            let (stdout, _) = text(&out);
            let (graphroot, driver) = stdout.trim().split_once(' ')?;
            Some(Storage {
                graphroot: graphroot.to_owned(),
                driver: driver.to_owned(),
            })
        })
        .clone()
}

fn image_exists(mode: As, user: &TestUser, image: &str) -> bool {
    match mode {
        As::User => podman_as(user, &["image", "exists", image])
            .status
            .success(),
        As::Root => Command::new("podman")
            .args(["image", "exists", image])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    }
}

/// What the container tests need for `mode`: Podman, setpriv, a test user, and the image
/// in the storage of whoever runs clp.
pub fn ready(mode: As, image: &str) -> Option<TestUser> {
    require(
        &format!("podman (apt-get install podman runc uidmap; or {BUILD})"),
        common::which("podman"),
    )?;
    require("setpriv (util-linux)", common::which("setpriv"))?;
    let user = test_user()?;
    if mode == As::Root && !is_root() {
        eprintln!("SKIPPED: the as-root container tests need root");
        return None;
    }
    let who = match mode {
        As::Root => "root's storage".to_owned(),
        As::User => format!("{}'s rootless storage", user.name),
    };
    require(
        &format!("the image {image} in {who} (build it: {BUILD})"),
        image_exists(mode, &user, image).then_some(()),
    )?;
    if mode == As::User {
        let storage = require(
            &format!(
                "{}'s Podman storage (`podman info` as that user)",
                user.name
            ),
            user_storage(&user),
        )?;
        if storage.driver != "overlay" {
            eprintln!(
                "note: {}'s Podman storage uses `{}`, which is slow; {BUILD} sets up overlay",
                user.name, storage.driver
            );
        }
    }
    Some(user)
}

/// A [`Box`] (temporary home with secrets, a main install, a workspace owned by the test
/// user, a backend) whose profile `box` is the shipped `local-container` plus `extra`, or
/// with `secret`, a container profile whose token comes from `$CLP_IT_TOKEN`.
fn container_box(mode: As, user: TestUser, backend: Backend, secret: bool, extra: &str) -> Box {
    let url = backend.url();
    container_box_at(mode, user, backend, &url, secret, extra)
}

/// [`container_box`] whose profile talks to `url` (a llama-server, say).
pub fn container_box_at(
    mode: As,
    user: TestUser,
    backend: Backend,
    url: &str,
    secret: bool,
    extra: &str,
) -> Box {
    let b = Box::with_url(mode, user, backend, url.to_owned());
    let head = if secret {
        // Not `extends = "local-container"`: its inherited literal token would win.
        "[auth]\nmode = \"auth-token\"\ntoken-env = \"CLP_IT_TOKEN\"\n\
         [model]\ndefault = \"glm-flash-q4\"\n[isolation]\nlevel = \"container\"\n\
         [claude]\nversion = \"=2.1.330\"\n"
    } else {
        "extends = \"local-container\"\n"
    };
    b.profile(
        "box",
        &format!(
            "{head}[backend]\nurl = \"{}\"\n[workspace]\npath = \"~/project\"\n{extra}",
            b.url
        ),
    );
    if mode == As::User {
        storage_conf(&b);
    }
    b
}

/// Rootless images live in the user's real storage, not under the box's HOME: a
/// `storage.conf` there points back at it.
pub fn storage_conf(b: &Box) {
    let storage = user_storage(&b.user).unwrap();
    let conf = b.write(
        ".config/containers/storage.conf",
        &format!(
            "[storage]\ndriver = \"{}\"\ngraphroot = \"{}\"\n",
            storage.driver, storage.graphroot
        ),
    );
    for p in [
        conf.parent().unwrap().parent().unwrap(),
        conf.parent().unwrap(),
        &conf,
    ] {
        std::os::unix::fs::chown(p, Some(b.user.uid), Some(b.user.gid)).unwrap();
    }
}

/// Files on the host the container must not see (beside the home, in `/tmp`), and a
/// `/tmp` path the container writes that must not appear on the host.
struct HostMarkers {
    outside: PathBuf,
    tmp: PathBuf,
    probe: PathBuf,
}

impl HostMarkers {
    fn new(b: &Box) -> HostMarkers {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let outside = b.dir.path().join("outside.txt");
        let tmp = PathBuf::from(format!("/tmp/clp-it-c-marker-{id}"));
        for p in [&outside, &tmp] {
            std::fs::write(p, "HOSTMARKER").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        HostMarkers {
            outside,
            tmp,
            probe: PathBuf::from(format!("/tmp/clp-it-c-probe-{id}")),
        }
    }
}

impl Drop for HostMarkers {
    fn drop(&mut self) {
        for p in [&self.outside, &self.tmp, &self.probe] {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `clp run box -- bash -c SCRIPT`.
fn bash(b: &Box, script: &str) -> Output {
    b.clp(&["run", "box", "--", "bash", "-c", script])
        .output()
        .unwrap()
}

/// The number of checks in [`inside_checks`].
const CHECKS: usize = 28;

/// The checks one `bash -c` runs inside the container: each prints `ok NAME` or
/// `FAIL NAME`.
fn inside_checks(b: &Box, markers: &HostMarkers) -> String {
    let ws = b.project.display();
    let home = b.home.display();
    let port = b.backend.port();
    let repo = std::fs::canonicalize(common::repo()).unwrap();
    let checks: Vec<(&str, String)> = vec![
        ("workspace at its real path", format!("[ \"$(pwd)\" = '{ws}' ]")),
        ("workspace writable", "echo from-the-container > written-inside.txt".into()),
        ("workspace readable", "grep -q 'a project' README".into()),
        ("not root", "[ \"$(id -u)\" != 0 ]".into()),
        ("no effective capabilities", "grep -q 'CapEff:[[:space:]]*0000000000000000' /proc/self/status".into()),
        ("no bounding capabilities", "grep -q 'CapBnd:[[:space:]]*0000000000000000' /proc/self/status".into()),
        ("no new privileges", "grep -q 'NoNewPrivs:[[:space:]]*1' /proc/self/status".into()),
        ("su fails", "! su -c true root </dev/null 2>/dev/null".into()),
        ("root filesystem read-only", "! touch /usr/clp-escape 2>/dev/null && ! touch /etc/clp-escape 2>/dev/null".into()),
        ("HOME is the real path, writable", format!("[ \"$HOME\" = '{home}' ] && touch \"$HOME/.clp-home-probe\"")),
        ("~/.ssh absent", "! grep -rqs SECRETKEY \"$HOME/.ssh\"".into()),
        ("~/.aws absent", "! grep -rqs AWSSECRET \"$HOME/.aws\"".into()),
        ("the real ~/.claude absent", "! grep -rqs REALLOGIN \"$HOME/.claude\" && ! grep -qs REALUSER \"$HOME/.claude.json\"".into()),
        ("files beside the home absent", format!("! test -e '{}'", markers.outside.display())),
        ("the host /tmp absent", format!(
            "! test -e '{}' && touch '{}'",
            markers.tmp.display(),
            markers.probe.display()
        )),
        ("the repository absent", format!("! test -e '{}'", repo.display())),
        ("other homes absent", "! test -e /home/clptest/.profile && ! test -e /home/clp-escape-other".into()),
        ("/root is not the host /root", "! test -e /root/.cache/clp-ci && ! test -e /root/.cargo".into()),
        ("host processes invisible", format!("! test -e /proc/{}", std::process::id())),
        ("engine sockets absent", "! test -S /run/podman/podman.sock && ! test -S /var/run/docker.sock && ! test -e /run/user".into()),
        ("the engine config not in reach", "! test -e \"$CLAUDE_CONFIG_DIR/../containers.conf\"".into()),
        ("parent secrets absent", "! env | grep -qE 'PARENTSECRET|ghp_|AWSPARENT|ssh-agent'".into()),
        // By its hash: the value itself must appear in no command line on the host.
        ("the profile secret delivered", format!(
            "[ \"$(printf %s \"$ANTHROPIC_AUTH_TOKEN\" | sha256sum | cut -d' ' -f1)\" = {:x} ]",
            Sha256::digest(SECRET)
        )),
        ("the backend on the host loopback", format!(
            "exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200'"
        )),
        ("the IDE lock files, read-only", "grep -q authToken \"$CLAUDE_CONFIG_DIR/ide/4242.lock\" && ! touch \"$CLAUDE_CONFIG_DIR/ide/x\" 2>/dev/null".into()),
        ("the IDE port passed", "[ \"$CLAUDE_CODE_SSE_PORT\" = 45678 ]".into()),
        ("the config dir writable", "touch \"$CLAUDE_CONFIG_DIR/probe\" \"$TMPDIR/probe\"".into()),
        (".git/hooks read-only", "! sh -c 'echo evil > .git/hooks/pre-commit' 2>/dev/null".into()),
    ];
    assert_eq!(checks.len(), CHECKS);
    assert!(checks.iter().all(|(name, _)| !name.contains('\'')));
    checks
        .iter()
        .map(|(name, script)| {
            format!("if ( {script} ) >/dev/null 2>&1; then echo 'ok {name}'; else echo 'FAIL {name}'; fi\n")
        })
        .collect()
}

/// The token the secret profile reads from clp's environment.
const SECRET: &str = "tok-SECRET-VALUE";

/// Every process's command line on the host that contains `needle`.
fn cmdlines_containing(needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            if line.contains(needle) {
                hits.push(format!("{}: {line}", entry.file_name().to_string_lossy()));
            }
        }
    }
    hits
}

fn real_run(mode: As) {
    let Some(user) = ready(mode, IMAGE) else {
        return;
    };
    let backend = Backend::start(Config::default()).unwrap();
    let mut b = container_box(mode, user, backend, true, "");
    b.extra_env.push(("CLP_IT_TOKEN".into(), SECRET.into()));
    b.extra_env
        .push(("CLAUDE_CODE_SSE_PORT".into(), "45678".into()));
    let markers = HostMarkers::new(&b);
    let before = tree(&b.home);

    let start = Instant::now();
    let out = bash(&b, &inside_checks(&b, &markers));
    let took = start.elapsed();
    let (stdout, stderr) = text(&out);
    eprintln!("{mode:?}: the container run took {took:?}");
    assert!(
        out.status.success() && stdout.lines().filter(|l| l.starts_with("ok ")).count() == CHECKS,
        "{mode:?}: exit {:?}\n{stdout}{stderr}",
        out.status.code()
    );
    let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        failed.is_empty(),
        "{mode:?}:\n{}\n\n{stdout}{stderr}",
        failed.join("\n")
    );

    // Host side: the write landed, owned by the test user; nothing else moved.
    let written = b.project.join("written-inside.txt");
    assert_eq!(
        std::fs::read_to_string(&written).unwrap(),
        "from-the-container\n"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&written).unwrap().uid(), b.user.uid);
    assert!(!markers.probe.exists(), "a write to /tmp reached the host");
    assert!(!b.project.join(".git/hooks/pre-commit").exists());
    assert_only_changed(
        &before,
        &tree(&b.home),
        &[Path::new(".local/state/clp"), Path::new("project")],
    );
    let state = b.home.join(".local/state/clp/box");
    assert!(
        !state.join("containers.conf").exists(),
        "no engine config where the container's user can write"
    );

    // The secret travels by name: while a container holds it, no command line on the
    // host (podman's, conmon's, clp's) shows its value.
    let child = common::Guarded::spawn(
        b.clp(&[
            "run",
            "box",
            "--",
            "sh",
            "-c",
            "echo \"$ANTHROPIC_AUTH_TOKEN\" > token-seen.txt; sleep 3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped()),
    );
    let seen = b.project.join("token-seen.txt");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let leaks = cmdlines_containing(SECRET);
    let out = child.wait_with_output();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{mode:?}: {stdout}{stderr}");
    assert_eq!(std::fs::read_to_string(&seen).unwrap().trim(), SECRET);
    assert!(
        leaks.is_empty(),
        "{mode:?}: the secret is in argv:\n{}",
        leaks.join("\n")
    );
}

#[test]
fn real_run_in_the_container_as_root() {
    real_run(As::Root);
}

#[test]
fn real_run_in_the_container_as_user() {
    real_run(As::User);
}

/// The same checks at level A (no boundary) mostly fail: they can see an escape.
#[test]
fn the_checks_detect_a_missing_boundary() {
    let Some(user) = test_user() else { return };
    let backend = Backend::start(Config::default()).unwrap();
    let mut b = container_box(As::User, user, backend, true, "");
    b.extra_env.push(("CLP_IT_TOKEN".into(), SECRET.into()));
    b.extra_env
        .push(("CLAUDE_CODE_SSE_PORT".into(), "45678".into()));
    let markers = HostMarkers::new(&b);
    let out = b
        .clp(&[
            "--set",
            "isolation.level=env",
            "run",
            "box",
            "--",
            "bash",
            "-c",
            &inside_checks(&b, &markers),
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    let failed = stdout.lines().filter(|l| l.starts_with("FAIL")).count();
    let ok = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(ok + failed, CHECKS, "{stdout}{stderr}");
    assert!(
        failed >= 10,
        "only {failed} checks fail without a boundary:\n{stdout}{stderr}"
    );
    for escape in [
        "FAIL no new privileges",
        "FAIL ~/.ssh absent",
        "FAIL files beside the home absent",
        "FAIL the host /tmp absent",
        "FAIL the repository absent",
        "FAIL host processes invisible",
    ] {
        assert!(stdout.contains(escape), "`{escape}` expected:\n{stdout}");
    }
}

/// As root, clp creates the profile's dirs and files and hands them to the container's
/// user, who can replace them with links between launches (the state dir is mounted
/// writable). The next launch must not follow such a link and give the user a host file.
#[test]
fn links_planted_inside_do_not_hand_host_files_to_the_user() {
    use std::os::unix::fs::MetadataExt;
    let Some(user) = ready(As::Root, IMAGE) else {
        return;
    };
    let backend = Backend::start(Config::default()).unwrap();
    let b = container_box(As::Root, user, backend, false, "");
    let victim_file = b.dir.path().join("victim-file");
    std::fs::write(&victim_file, "root's\n").unwrap();
    std::fs::set_permissions(&victim_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let victim_dir = b.dir.path().join("victim-dir");
    std::fs::create_dir(&victim_dir).unwrap();
    let out = bash(
        &b,
        &format!(
            "cd \"$CLAUDE_CONFIG_DIR\" && rm -f .claude.json && ln -s '{}' .claude.json \
             && cd .. && rm -rf anthropic && ln -s '{}' anthropic && echo planted",
            victim_file.display(),
            victim_dir.display()
        ),
    );
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains("planted"), "{stdout}{stderr}");
    // The next launch may refuse; it must not chown through the links.
    let _ = bash(&b, "true");
    let _ = std::fs::remove_file(b.home.join(".local/state/clp/box/anthropic"));
    let _ = bash(&b, "true");
    for p in [&victim_file, &victim_dir] {
        assert_eq!(
            std::fs::metadata(p).unwrap().uid(),
            0,
            "{} was handed over",
            p.display()
        );
    }
}

/// `clp use box -- -p "say pong"`: Claude Code in the container answers from the host's
/// backend, authenticated with the profile's token, and nothing outside clp's dirs
/// changes. `extra` switches to the host's binary (option b).
fn print_mode(mode: As, host_binary: bool) {
    let image = if host_binary { BASE_IMAGE } else { IMAGE };
    let Some(user) = ready(mode, image) else {
        return;
    };
    let extra = if host_binary {
        let Some(claude) = common::claude() else {
            return;
        };
        let claude = crate::sandbox::shared_copy(&claude, "claude");
        format!(
            "[claude]\ncommand = \"{}\"\n[container]\nimage = \"{BASE_IMAGE}\"\n",
            claude.display()
        )
    } else {
        String::new()
    };
    let backend = Backend::start(Config::default()).unwrap();
    let b = container_box(mode, user, backend, false, &extra);
    let before = tree(&b.home);
    let start = Instant::now();
    let out = b
        .clp(&["use", "box", "--", "-p", "say pong"])
        .output()
        .unwrap();
    eprintln!("{mode:?}: `clp use -p` took {:?}", start.elapsed());
    crate::sandbox::assert_pong(&b, &out, &before);
    if host_binary {
        let dry = b.clp(&["use", "box", "--dry-run"]).output().unwrap();
        let (plan, _) = text(&dry);
        assert!(plan.contains(":/usr/local/bin/claude:ro"), "{plan}");
    }
}

#[test]
fn print_mode_through_the_container_as_root() {
    print_mode(As::Root, false);
}

#[test]
fn print_mode_through_the_container_as_user() {
    print_mode(As::User, false);
}

#[test]
fn host_binary_in_a_slim_image_as_root() {
    print_mode(As::Root, true);
}

#[test]
fn host_binary_in_a_slim_image_as_user() {
    print_mode(As::User, true);
}

/// `podman system service` on a private socket, stopped on drop.
struct PodmanService {
    child: std::process::Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl PodmanService {
    fn start() -> PodmanService {
        let dir = tempfile::Builder::new()
            .prefix("clp-it-svc-")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("podman.sock");
        // The service runs containers for the Docker API with its own settings; as root
        // here they are the ones clp renders as flags for `podman run`.
        let conf = dir.path().join("containers.conf");
        std::fs::write(
            &conf,
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [engine]\nruntime = \"runc\"\n",
        )
        .unwrap();
        let child = Command::new("podman")
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            .env("CONTAINERS_CONF", &conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(socket.exists(), "podman system service did not start");
        PodmanService {
            child,
            socket,
            _dir: dir,
        }
    }
}

impl Drop for PodmanService {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// The Docker rendering (`--user`, an explicit tmpfs /tmp, no keep-id), run by the real
/// docker CLI against Podman's Docker-compatible API: the same checks, and Claude Code.
#[test]
fn docker_rendering_runs_through_the_docker_cli() {
    let Some(user) = ready(As::Root, IMAGE) else {
        return;
    };
    let Some(_) = require(
        "the docker CLI (apt-get install --no-install-recommends docker.io)",
        common::which("docker"),
    ) else {
        return;
    };
    let service = PodmanService::start();
    let backend = Backend::start(Config::default()).unwrap();
    let mut b = container_box(
        As::Root,
        user,
        backend,
        true,
        "[container]\nengine = \"docker\"\n",
    );
    b.extra_env.push((
        "DOCKER_HOST".into(),
        format!("unix://{}", service.socket.display()),
    ));
    b.extra_env.push(("CLP_IT_TOKEN".into(), SECRET.into()));
    b.extra_env
        .push(("CLAUDE_CODE_SSE_PORT".into(), "45678".into()));
    let dry = b
        .clp(&["run", "box", "--dry-run", "--", "true"])
        .output()
        .unwrap();
    let (plan, _) = text(&dry);
    assert!(plan.contains("docker\nrun\n"), "{plan}");
    assert!(
        plan.contains("--tmpfs=/tmp\n") && !plan.contains("keep-id"),
        "{plan}"
    );

    let markers = HostMarkers::new(&b);
    let out = bash(&b, &inside_checks(&b, &markers));
    let (stdout, stderr) = text(&out);
    assert!(!markers.probe.exists(), "a write to /tmp reached the host");
    let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        out.status.success()
            && failed.is_empty()
            && stdout.lines().filter(|l| l.starts_with("ok ")).count() == CHECKS,
        "docker:\n{}\n\n{stdout}{stderr}",
        failed.join("\n")
    );
    assert_eq!(
        std::fs::read_to_string(b.project.join("written-inside.txt")).unwrap(),
        "from-the-container\n"
    );

    let out = b
        .clp(&["use", "box", "--", "-p", "say pong"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "docker: {stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "pong");
    assert!(b
        .backend
        .requests_to("/v1/messages")
        .iter()
        .all(|r| r.header("authorization") == Some(&format!("Bearer {SECRET}"))));
}

/// `clp doctor` for level C: the engine, the image, and the profile's own container
/// starting with Claude Code in it.
fn doctor(mode: As) {
    let Some(user) = ready(mode, IMAGE) else {
        return;
    };
    let backend = Backend::start(Config::default()).unwrap();
    let b = container_box(mode, user, backend, false, "");
    let out = b.clp(&["doctor", "box"]).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{mode:?}: {stdout}{stderr}");
    assert!(
        stdout.contains(&format!("image `{IMAGE}` present")),
        "{stdout}"
    );
    assert!(stdout.contains("runs Claude Code 2.1.330"), "{stdout}");
    assert!(
        stdout.contains("ready (from the host, whose network the container shares)"),
        "{stdout}"
    );
}

#[test]
fn doctor_starts_the_container_as_root() {
    doctor(As::Root);
}

#[test]
fn doctor_starts_the_container_as_user() {
    doctor(As::User);
}
