//! Hostile and malformed input, one test per class: names, encodings, sizes and depths,
//! values, the file system, `--set`. Every profile problem exits 2 with its location, no
//! command ever crashes or hangs, and one bad file never blocks an unrelated profile.
//!
//! Each test runs `clp` under a time limit ([`within`]): a FIFO named `*.toml` must never
//! make it wait.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, text, Env};

/// Runs `cmd` to its end, or kills it after `limit` and fails: clp must never hang.
pub fn within(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = common::Guarded::spawn(child);
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("`{cmd:?}` still running after {limit:?}");
}

/// `clp ARGS` in `env`, within ten seconds.
fn clp(env: &Env, args: &[&str]) -> Output {
    let mut cmd = env.clp();
    cmd.args(args);
    within(cmd, Duration::from_secs(10))
}

/// Asserts a profile error: exit 2, and every `error:` line located at `file` (with a
/// line when `line` is set). Returns stderr.
#[track_caller]
fn assert_located(out: &Output, file: &Path, line: bool) -> String {
    let (stdout, stderr) = text(out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert!(!errors.is_empty(), "{stderr}");
    let at = format!("error: {}", file.display());
    for e in &errors {
        assert!(e.starts_with(&at), "not at `{}`: {e}", file.display());
        if line {
            let rest = &e[at.len()..];
            let lc: Vec<&str> = rest.splitn(4, ':').collect();
            assert!(
                lc.len() >= 3 && lc[1].parse::<usize>().is_ok() && lc[2].parse::<usize>().is_ok(),
                "no line:column: {e}"
            );
        }
    }
    stderr
}

/// The commands that name one profile, each as a user types it.
fn commands_on(name: &str) -> Vec<Vec<String>> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&["show", name]),
        v(&["show", name, "--json"]),
        v(&["render", name]),
        v(&["render", name, "--portable"]),
        v(&["check", name]),
        v(&["use", name, "--dry-run"]),
        v(&["run", name, "--dry-run", "--", "true"]),
        v(&["run", name, "--no-check", "--", "true"]),
    ]
}

// ---- names -------------------------------------------------------------------------

/// Files whose stem cannot name a profile: path tricks, empty, spaces, unicode, too long,
/// reserved. Each is reported by `list` (exit 0) and `check` (exit 2) at its file, never
/// read as a profile, never makes a directory in clp's state; every other profile works.
/// Control: the same files with good names are profiles (`list` shows them).
#[test]
fn names_that_cannot_be_profiles_are_reported_and_never_loaded() {
    let env = Env::new();
    let long = "n".repeat(65);
    // (A file named `.toml` has no stem: it is not a profile file at all.)
    let bad = [
        "..",
        ".",
        " ",
        "a b",
        "café",
        "-x",
        ".hidden",
        "tab\tname",
        "logs",
        &long,
    ];
    let body = "extends = \"local-env\"\n";
    for name in bad {
        env.profile(name, body);
    }
    env.profile("good", body);
    let dir = env.home.join(".config/clp/profiles");

    let out = clp(&env, &["list"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("\ngood "), "{stdout}");
    for name in bad {
        let file = dir.join(format!("{name}.toml"));
        assert!(
            stderr.contains(&format!("warning: {}: ", file.display()).replace('\t', "\\t")),
            "`{name}` not reported by list:\n{stderr}"
        );
        // Never a row of its own.
        assert!(
            !stdout.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{stdout}"
        );
    }

    let out = clp(&env, &["check"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{} problems found", bad.len())),
        "{stderr}"
    );
    assert!(stderr.contains("`..` is not a profile name"), "{stderr}");
    assert!(stderr.contains("`logs` is reserved"), "{stderr}");
    assert!(
        stderr.contains("a profile name has at most 64 characters"),
        "{stderr}"
    );

    // Checked by path: refused at the file, with or without other problems.
    let dots = dir.join("...toml");
    assert_located(
        &clp(&env, &["check", &dots.display().to_string()]),
        &dots,
        false,
    );

    // Every command on a good profile works, and no name made a directory in the state.
    for args in commands_on("good") {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = clp(&env, &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out).1);
    }
    let state = env.home.join(".local/state/clp");
    let made: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(made, ["good"], "{made:?}");
    // Asked for by name, a bad name is simply no profile.
    for name in ["..", "../good", "a b", "logs"] {
        let out = clp(&env, &["show", name]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(text(&out).1.contains("no profile named"), "{name}");
    }
}

/// `clp init` refuses every name the loader would refuse, and writes nothing anywhere
/// (the whole temporary tree is unchanged). Control: a good name writes its file.
#[test]
fn init_never_writes_outside_the_profile_dir() {
    let env = Env::new();
    std::fs::create_dir_all(env.home.join(".config/clp/profiles")).unwrap();
    let before = common::tree(env.dir.path());
    for name in [
        "../escape",
        "..",
        "a/b",
        "/tmp/abs",
        "",
        " ",
        "a b",
        "café",
        "-rf",
        ".x",
        "logs",
        &"n".repeat(65),
    ] {
        let out = clp(&env, &["init", "--from", "local-env", "--", name]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{name:?}: {stderr}");
        assert!(
            stderr.contains("profile name") || stderr.contains("reserved"),
            "{name:?}: {stderr}"
        );
    }
    common::assert_only_changed(&before, &common::tree(env.dir.path()), &[]);

    let out = clp(&env, &["init", "my.profile_2", "--from", "local-env"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(env
        .home
        .join(".config/clp/profiles/my.profile_2.toml")
        .is_file());
}

/// `extends` must name a profile: a path, an empty or reserved name is an error at the
/// key's line and column.
#[test]
fn extends_that_is_not_a_name_is_located() {
    let env = Env::new();
    for (i, parent) in ["../local-env", "/etc/passwd", "", "a b", "logs", ".."]
        .iter()
        .enumerate()
    {
        let file = env.profile(
            &format!("p{i}"),
            &format!("description = \"x\"\nextends = \"{parent}\"\n"),
        );
        let stderr = assert_located(&clp(&env, &["check", &format!("p{i}")]), &file, true);
        assert!(stderr.contains(":2:11: `extends`"), "{parent:?}: {stderr}");
        assert!(
            stderr.contains("is not a profile name")
                || stderr.contains("is reserved")
                || stderr.contains("cannot be empty"),
            "{parent:?}: {stderr}"
        );
    }
}

// ---- values ------------------------------------------------------------------------

/// Control characters anywhere in a profile: a located error at their key, the same at
/// `check` and at launch, exit 2, and never printed raw (they would reach the terminal).
/// Control: tabs and line breaks are allowed.
#[test]
fn control_characters_are_located_and_never_printed_raw() {
    let env = Env::new();
    let cases = [
        ("env-value", "[env]\nX = \"a\\u0000b\"\n", 3, "env.X"),
        ("env-esc", "[env]\nX = \"\\u001b[2J\"\n", 3, "env.X"),
        (
            "args",
            "[claude]\nargs = [\"ok\", \"a\\u0007\"]\n",
            3,
            "claude.args[1]",
        ),
        ("desc", "description = \"\\u009b31m\"\n", 2, "description"),
        (
            "ws",
            "[workspace]\npath = \"/tmp/a\\u0000\"\n",
            3,
            "workspace.path",
        ),
        (
            "model",
            "[model]\ndefault = \"m\\u0000\"\n",
            3,
            "model.default",
        ),
        (
            "cmd",
            "[auth]\nmode = \"auth-token\"\ntoken-command = \"echo\\u0000x\"\n",
            4,
            "auth.token-command",
        ),
        (
            "settings-key",
            "[claude.settings.env]\n\"A\\u0000\" = \"1\"\n",
            3,
            "claude.settings.env.A\\u{0}",
        ),
    ];
    for (name, body, line, key) in cases {
        let file = env.profile(name, &format!("extends = \"local-env\"\n{body}"));
        for args in [
            vec!["check", name],
            vec!["show", name],
            vec!["run", name, "--no-check", "--", "true"],
        ] {
            let out = clp(&env, &args);
            let stderr = assert_located(&out, &file, true);
            assert!(
                stderr.contains(&format!("{name}.toml:{line}:"))
                    && stderr.contains(&format!("`{key}`")),
                "{args:?}: {stderr}"
            );
            let raw = out.stderr.iter().any(|&b| b < 0x20 && b != b'\n')
                || String::from_utf8_lossy(&out.stderr).contains('\u{9b}');
            assert!(
                !raw,
                "{args:?}: a control character printed raw: {stderr:?}"
            );
        }
    }
    env.profile(
        "fine",
        "extends = \"local-env\"\ndescription = \"tab\\there\"\n[env]\nX = \"two\\nlines\\r\\n\"\n",
    );
    let out = clp(&env, &["check", "fine"]);
    assert!(out.status.success(), "{}", text(&out).1);
}

/// A URL or host with credentials (`backend.url`, `backend.switch.url`, `network.allow`,
/// in a file or with `--set`) is refused where it is written, and the password is never
/// printed by any command. Control: the same URLs without credentials pass.
#[test]
fn credentials_in_urls_are_refused_and_never_printed() {
    const PW: &str = "hunter2SECRET";
    let env = Env::new();
    let cases = [
        (
            "url",
            format!("[backend]\nurl = \"http://me:{PW}@127.0.0.1:8080\"\n"),
            4,
            "backend.url",
        ),
        (
            "user-only",
            format!("[backend]\nurl = \"http://{PW}@127.0.0.1:8080\"\n"),
            4,
            "backend.url",
        ),
        (
            "v1",
            format!("[backend]\nurl = \"http://me:{PW}@127.0.0.1:8080/v1\"\n"),
            4,
            "backend.url",
        ),
        (
            "switch",
            format!("[backend.switch]\nurl = \"http://me:{PW}@127.0.0.1:9/switch\"\n"),
            4,
            "backend.switch.url",
        ),
        (
            "allow",
            format!("[network]\nmode = \"allowlist\"\nallow = [\"me:{PW}@example.com\"]\n"),
            5,
            "network.allow[0]",
        ),
    ];
    for (name, body, line, key) in &cases {
        let file = env.profile(name, &format!("extends = \"local-env\"\n\n{body}"));
        for args in commands_on(name)
            .into_iter()
            .chain([vec!["list".to_owned()]])
        {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = clp(&env, &args);
            let (stdout, stderr) = text(&out);
            assert!(
                !stdout.contains(PW) && !stderr.contains(PW),
                "{args:?}: {stdout}{stderr}"
            );
            if args[0] != "list" {
                assert_located(&out, &file, true);
                assert!(stderr.contains(&format!("{name}.toml:{line}:")), "{stderr}");
                assert!(stderr.contains(&format!("`{key}`")), "{stderr}");
            }
        }
    }
    for set in [
        format!("backend.url=http://me:{PW}@127.0.0.1:8080"),
        format!("backend.switch.url=http://me:{PW}@127.0.0.1:9/s"),
        format!("network.allow=[\"me:{PW}@example.com\"]"),
    ] {
        let out = clp(&env, &["--set", &set, "check", "local-env"]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("error: --set "), "{stderr}");
        // The argument itself is echoed as the location, but not its password.
        assert!(
            !stdout.contains(PW) && !stderr.contains(PW),
            "{set}: {stderr}"
        );
    }
    // Control: without credentials, the same keys are fine.
    env.profile(
        "clean",
        "extends = \"local-env\"\n[backend]\nurl = \"http://127.0.0.1:8080\"\n\
         [backend.switch]\nurl = \"http://127.0.0.1:9/switch\"\n\
         [network]\nmode = \"allowlist\"\nallow = [\"example.com\"]\n",
    );
    let out = clp(&env, &["check", "clean"]);
    assert!(out.status.success(), "{}", text(&out).1);
}

/// Paths with `..`, spaces and symbolic links are judged where they lead, the same way
/// by `check` and by a launch: a workspace that resolves to the home is refused by both,
/// one with spaces that resolves to a project works in both.
#[test]
fn paths_with_dotdot_spaces_and_links_are_judged_where_they_lead() {
    let env = Env::new();
    let spaced = env.home.join("my project");
    std::fs::create_dir_all(&spaced).unwrap();
    std::os::unix::fs::symlink(&env.home, env.dir.path().join("home-link")).unwrap();
    std::os::unix::fs::symlink(&spaced, env.dir.path().join("spaced-link")).unwrap();
    let bad = [
        format!("{}/home-link", env.dir.path().display()),
        "~/project/..".to_owned(),
        "~/my project/../project/../.".to_owned(),
    ];
    for (i, path) in bad.iter().enumerate() {
        let file = env.profile(
            &format!("bad{i}"),
            &format!("extends = \"local-env\"\n[workspace]\npath = \"{path}\"\n"),
        );
        for args in [
            vec!["check".to_owned(), format!("bad{i}")],
            vec![
                "run".into(),
                format!("bad{i}"),
                "--no-check".into(),
                "--".into(),
                "true".into(),
            ],
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let stderr = assert_located(&clp(&env, &args), &file, true);
            assert!(stderr.contains("is your whole home"), "{path}: {stderr}");
        }
    }
    for (i, path) in [
        "~/my project".to_owned(),
        format!("{}/spaced-link", env.dir.path().display()),
        "~/project/../my project/.".to_owned(),
    ]
    .iter()
    .enumerate()
    {
        env.profile(
            &format!("good{i}"),
            &format!("extends = \"local-env\"\n[workspace]\npath = \"{path}\"\n"),
        );
        for args in [
            vec!["check".to_owned(), format!("good{i}")],
            vec![
                "run".into(),
                format!("good{i}"),
                "--no-check".into(),
                "--".into(),
                "sh".into(),
                "-c".into(),
                "pwd -P".into(),
            ],
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = clp(&env, &args);
            let (stdout, stderr) = text(&out);
            assert!(out.status.success(), "{path}: {stderr}");
            if args[0] == "run" {
                assert_eq!(
                    stdout.trim(),
                    spaced.canonicalize().unwrap().display().to_string()
                );
            }
        }
    }
}
