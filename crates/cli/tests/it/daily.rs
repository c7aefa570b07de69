//! Daily use of a local profile: the status line clp renders, and resuming a session
//! by the line Claude Code prints at its end.

use clp_test_backend::{Backend, Config};

use crate::common::text;
use crate::sandbox::{self, As, Box};

/// The status line clp renders runs inside the sandbox and prints the profile, level,
/// network, backend and model; a status line of the profile's own config dir wins.
#[test]
fn the_status_line_works_inside_the_sandbox() {
    let Some(user) = sandbox::ready(As::User) else {
        return;
    };
    let b = Box::new(As::User, user, Backend::start(Config::default()).unwrap());
    let settings = b.home.join(".local/state/clp/box/settings.json");
    assert!(b.sh("true").status.success());
    let read = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&settings).unwrap()).unwrap()
    };
    let command = read()["statusLine"]["command"].as_str().unwrap().to_owned();
    let out = b.sh(&command);
    let port = b.url.rsplit(':').next().unwrap().to_owned();
    assert_eq!(
        text(&out).0,
        format!("clp:box [B offline] 127.0.0.1:{port} glm-flash-q4\n")
    );
    // The user's own status line in the profile's config dir: clp adds none.
    let own = b.write(
        ".local/state/clp/box/claude/settings.json",
        r#"{"statusLine":{"type":"command","command":"echo mine"}}"#,
    );
    crate::sandbox::chown_tree(&own, (b.user.uid, b.user.gid));
    assert!(b.sh("true").status.success());
    assert!(read().get("statusLine").is_none());
}

/// After an interactive session Claude Code's last word is `clp --resume <id>`, and that
/// command, run from elsewhere, finds the profile whose store holds the session and
/// resumes it in the session's own directory.
#[test]
fn the_resume_line_names_clp_and_clp_resumes() {
    let Some(b) =
        sandbox::box_with_claude(As::User, Backend::start(Config::default()).unwrap(), None)
    else {
        return;
    };
    b.profile(
        "box",
        &format!(
            "extends = \"local-glm\"\n[backend]\nurl = \"{}\"\n[workspace]\npath = \"~/project\"\n\
             trust = true\n",
            b.url
        ),
    );
    let t = crate::sandbox::Tmux::start(&b, &[]);
    t.wait_for("❯");
    t.tmux(&["send-keys", "-t", &t.session, "-l", "first words"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    t.tmux(&["send-keys", "-t", &t.session, "Enter"]);
    t.wait_for("● pong");
    t.quit();
    let screen = t.screen();
    drop(t);
    let id = screen
        .split("clp --resume ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no clp resume line:\n{screen}"))
        .to_owned();
    assert!(!screen.contains("claude --resume"), "{screen}");

    // From the home directory, not the project: clp finds the store and the directory.
    let out = b
        .clp(&["resume", &id, "--", "-p", "second words"])
        .current_dir(&b.home)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let last = b.backend.requests_to("/v1/messages");
    let body = last.last().unwrap().json.as_ref().unwrap().to_string();
    assert!(
        body.contains("first words") && body.contains("second words"),
        "the resumed request lacks the first turn: {body}"
    );
    // Control: an id no store holds is a clear error.
    let out = b
        .clp(&["--resume", "01b04298-0000-0000-0000-000000000000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("no profile's session store holds"));
}
