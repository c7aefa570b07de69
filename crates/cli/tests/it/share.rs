//! `claude.share`: the main install's `CLAUDE.md`, agents, skills, commands and output
//! styles seen in a profile's config dir without a copy and without write access, at
//! levels B and C (enforced, as root and as a user) and A (linked, not enforced); never
//! the credentials. A control shows the same write succeeding where nothing is shared
//! read-only.

use std::path::Path;

use clp_test_backend::{Backend, Config};

use crate::common::{assert_only_changed, text, tree};
use crate::container;
use crate::sandbox::{self, As, Box};

const SHARE: &str = "[claude]\nshare = [\"CLAUDE.md\", \"agents\", \"skills\"]\n";

/// The main install's shared parts in `b`: `CLAUDE.md` (the box's own), an agent, a skill.
fn populate(b: &Box) {
    b.write(
        ".claude/agents/reviewer.md",
        "---\nname: reviewer\n---\nreview\n",
    );
    b.write(
        ".claude/skills/notes/SKILL.md",
        "---\nname: notes\n---\nnotes\n",
    );
    if b.mode == As::User {
        crate::sandbox::chown_tree(&b.home.join(".claude"), (b.user.uid, b.user.gid));
    }
}

/// From inside: each shared part is there and reads as the real one, no write reaches
/// it, and nothing else of `~/.claude` is there. Prints `ok NAME` or `FAIL NAME`.
const CHECKS: &str = r#"
c=$CLAUDE_CONFIG_DIR
check() { if eval "$2" >/dev/null 2>&1; then echo "ok $1"; else echo "FAIL $1"; fi; }
check claude-md 'grep -q "real memory" "$c/CLAUDE.md"'
check agent 'grep -q reviewer "$c/agents/reviewer.md"'
check skill 'grep -q notes "$c/skills/notes/SKILL.md"'
check no-write-md '! sh -c "echo x >> \"$c/CLAUDE.md\""'
check no-new-agent '! touch "$c/agents/planted.md"'
check no-rm-skill '! rm -f "$c/skills/notes/SKILL.md"'
check no-rename '! mv "$c/agents" "$c/agents.old"'
check no-credentials '! ls -a "$c" | grep -q credentials'
"#;

fn shared_inside(b: &Box, label: &str) {
    let before = tree(&b.home.join(".claude"));
    let out = b.sh(CHECKS);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{label}: {stdout}{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        8,
        "{label}:\n{stdout}{stderr}"
    );
    assert_eq!(
        before,
        tree(&b.home.join(".claude")),
        "{label}: ~/.claude changed"
    );
    // The last session gone, no mount point is left in the profile's config dir.
    let config = b.home.join(".local/state/clp/box/claude");
    for name in ["CLAUDE.md", "agents", "skills"] {
        assert!(
            config.join(name).symlink_metadata().is_err(),
            "{label}: `{name}` left in the config dir"
        );
    }
}

fn level_b(mode: As) {
    let Some(user) = sandbox::ready(mode) else {
        return;
    };
    let b = Box::new(mode, user, Backend::start(Config::default()).unwrap());
    b.profile(
        "box",
        &format!(
            "extends = \"local-glm\"\n[backend]\nurl = \"{}\"\ncheck = false\n\
             [workspace]\npath = \"~/project\"\n{SHARE}",
            b.url
        ),
    );
    populate(&b);
    shared_inside(&b, &format!("B {mode:?}"));
}

#[test]
fn shared_parts_are_read_only_at_level_b_as_root() {
    level_b(As::Root);
}

#[test]
fn shared_parts_are_read_only_at_level_b_as_user() {
    level_b(As::User);
}

fn level_c(mode: As) {
    let Some(user) = container::ready(mode, container::IMAGE) else {
        return;
    };
    let backend = Backend::start(Config::default()).unwrap();
    let url = backend.url();
    let b = container::container_box_at(mode, user, backend, &url, false, SHARE);
    populate(&b);
    shared_inside(&b, &format!("C {mode:?}"));
}

#[test]
fn shared_parts_are_read_only_at_level_c_as_root() {
    level_c(As::Root);
}

#[test]
fn shared_parts_are_read_only_at_level_c_as_user() {
    level_c(As::User);
}

/// Level A links the shared parts (nothing is enforced there, as `show` says); a later
/// level B session mounts them read-only instead, and level A links them again after.
/// Control: without `share`, the same write from inside the sandbox lands in the
/// profile's own config dir.
#[test]
fn level_a_links_and_b_mounts_in_turn() {
    let Some(user) = sandbox::ready(As::User) else {
        return;
    };
    let b = Box::new(As::User, user, Backend::start(Config::default()).unwrap());
    populate(&b);
    let profile = |level: &str, share: &str| {
        b.profile(
            "box",
            &format!(
                "extends = \"local-glm\"\n[backend]\nurl = \"{}\"\ncheck = false\n\
                 [workspace]\npath = \"~/project\"\n[isolation]\nlevel = \"{level}\"\n{share}",
                b.url
            ),
        );
    };
    let config = b.home.join(".local/state/clp/box/claude");
    profile("env", SHARE);
    let out = b.clp(&["show", "box"]).output().unwrap();
    assert!(
        text(&out)
            .0
            .contains("nothing stops Claude Code writing to them"),
        "{}",
        text(&out).0
    );
    let out = b.sh("true");
    assert!(out.status.success(), "{}", text(&out).1);
    for name in ["CLAUDE.md", "agents", "skills"] {
        assert_eq!(
            std::fs::read_link(config.join(name)).unwrap(),
            b.home.join(".claude").join(name)
        );
    }
    profile("sandbox", SHARE);
    shared_inside(&b, "B after A");
    profile("env", SHARE);
    assert!(b.sh("true").status.success());
    assert!(config
        .join("agents")
        .symlink_metadata()
        .unwrap()
        .is_symlink());

    // Control: nothing shared; a write to the config dir's CLAUDE.md is the profile's own.
    profile("sandbox", "[claude]\nshare = []\n");
    for name in ["CLAUDE.md", "agents", "skills"] {
        let _ = std::fs::remove_file(config.join(name));
    }
    let before = tree(&b.home);
    let out = b.sh("echo mine > \"$CLAUDE_CONFIG_DIR/CLAUDE.md\"");
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(
        std::fs::read_to_string(config.join("CLAUDE.md")).unwrap(),
        "mine\n"
    );
    assert_only_changed(&before, &tree(&b.home), &[Path::new(".local/state/clp")]);
}

/// The last session's cleanup removes the mount points it made in the config dir. A
/// session may rename its config dir (a plain directory inside its state dir; only the
/// mount points below it are pinned) and leave a link to any directory in its place: the
/// cleanup (run by root too) must not follow it and remove what is there.
fn cleanup_through_a_link(mode: As) {
    let Some(user) = sandbox::ready(mode) else {
        return;
    };
    let b = Box::new(mode, user, Backend::start(Config::default()).unwrap());
    let victim = b.dir.path().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("CLAUDE.md"), "").unwrap();
    sandbox::chown_tree(&victim, (b.user.uid, b.user.gid));
    let out = b.sh(&format!(
        "c=$CLAUDE_CONFIG_DIR; mv \"$c\" \"$c.moved\" && ln -s {} \"$c\"",
        victim.display()
    ));
    assert!(out.status.success(), "{mode:?}: {}", text(&out).1);
    assert!(
        victim.join("CLAUDE.md").exists(),
        "{mode:?}: the cleanup removed a file through the session's link"
    );
}

#[test]
fn cleanup_never_follows_a_planted_link_as_user() {
    cleanup_through_a_link(As::User);
}

#[test]
fn cleanup_never_follows_a_planted_link_as_root() {
    cleanup_through_a_link(As::Root);
}

/// Control: without the link, the same cleanup removes the empty mount point it made.
#[test]
fn control_cleanup_removes_its_own_mount_point() {
    let Some(user) = sandbox::ready(As::User) else {
        return;
    };
    let b = Box::new(As::User, user, Backend::start(Config::default()).unwrap());
    let point = b.home.join(".local/state/clp/box/claude/CLAUDE.md");
    let out = b.sh("test -s \"$CLAUDE_CONFIG_DIR/CLAUDE.md\"");
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(!point.exists(), "the mount point stayed");
}
