//! Hostile and malformed input, one test per class: names, encodings, sizes and depths,
//! values, the file system, `--set`. Every profile problem exits 2 with its location, no
//! command ever crashes or hangs, and one bad file never blocks an unrelated profile.
//!
//! Each test runs `clp` under a time limit ([`within`]): a FIFO named `*.toml` must never
//! make it wait.

use std::os::unix::fs::PermissionsExt;
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
        v(&["explain", name]),
        v(&["explain", name, "--json"]),
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

// ---- one bad file ------------------------------------------------------------------

/// Every kind of broken file beside good profiles: not UTF-8, not TOML, invalid, a
/// directory, a FIFO, a device, a dangling link, a link loop, too large, a bad name.
/// Every command on the built-in `oauth` and on a user profile works; `list` reports them
/// all and exits 0; `check` reports each one located and exits 2; none hangs.
#[test]
fn one_bad_file_never_blocks_an_unrelated_profile() {
    let mut env = Env::new();
    let dir = env.home.join(".config/clp/profiles");
    env.profile("good", "extends = \"local-env\"\n");
    let bytes = |name: &str, b: &[u8]| std::fs::write(dir.join(name), b).unwrap();
    bytes("latin1.toml", b"description = \"caf\xe9\"\n");
    bytes("syntax.toml", b"description = \"unterminated\n");
    bytes(
        "invalid.toml",
        b"[backend]\nurl = \"http://127.0.0.1:8080/v1\"\n",
    );
    bytes("huge.toml", &vec![b'#'; 2 << 20]);
    bytes("a b.toml", b"description = \"x\"\n");
    std::fs::create_dir(dir.join("dir.toml")).unwrap();
    nix::unistd::mkfifo(
        &dir.join("fifo.toml"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.toml")).unwrap();
    std::os::unix::fs::symlink("nowhere.toml", dir.join("dangling.toml")).unwrap();
    std::os::unix::fs::symlink("loop.toml", dir.join("loop.toml")).unwrap();
    let broken = [
        "latin1", "syntax", "invalid", "huge", "a b", "dir", "fifo", "zero", "dangling", "loop",
    ];

    for name in ["oauth", "good", "local-env"] {
        for args in commands_on(name) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = clp(&env, &args);
            let (stdout, stderr) = text(&out);
            assert!(out.status.success(), "{args:?}: {stdout}\n{stderr}");
            for b in broken {
                assert!(!stderr.contains(&format!("{b}.toml")), "{args:?}: {stderr}");
            }
        }
    }
    // A real `clp use` of a profile that does not extend any of them (Claude Code
    // itself, asked for its version).
    if let Some(claude) = common::claude() {
        env.path_var = format!("{}:{}", claude.parent().unwrap().display(), env.path_var);
        let out = clp(&env, &["use", "good", "--no-check", "--", "--version"]);
        assert!(out.status.success(), "use: {}", text(&out).1);
        assert!(text(&out).0.contains("Claude Code"), "{}", text(&out).0);
    }
    let out = clp(&env, &["doctor", "good"]);
    let (stdout, stderr) = text(&out);
    for b in broken {
        assert!(!stdout.contains(&format!("{b}.toml")), "doctor: {stdout}");
        assert!(!stderr.contains(&format!("{b}.toml")), "doctor: {stderr}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = clp(&env, &["shell-init", shell]);
        assert!(out.status.success(), "{}", text(&out).1);
    }

    let out = clp(&env, &["list"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("\ngood "), "{stdout}");
    for b in broken {
        // Unreadable ones as warnings; readable but invalid ones as rows marked invalid.
        let row = stdout
            .lines()
            .any(|l| l.starts_with(&format!("{b} ")) && l.contains("invalid"));
        assert!(
            row || stderr.contains(&format!("{b}.toml")),
            "list: {b}:\n{stdout}{stderr}"
        );
    }

    let out = clp(&env, &["check"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.contains("ok       good"), "{stdout}");
    for b in broken {
        let file = dir.join(format!("{b}.toml"));
        assert!(
            stderr.contains(&format!("error: {}", file.display())),
            "check: {b}:\n{stderr}"
        );
    }
    assert!(
        stderr.contains(&format!(
            "error: {}:1:19: ",
            dir.join("latin1.toml").display()
        )),
        "the byte that is not UTF-8 is located: {stderr}"
    );
    assert!(
        stderr.contains("invalid.toml:2:7: `backend.url`"),
        "{stderr}"
    );

    // The broken profile itself, named: exit 2, located, never a hang.
    for b in ["latin1", "syntax", "fifo", "dir", "huge", "zero"] {
        let out = clp(&env, &["show", b]);
        assert_eq!(out.status.code(), Some(2), "{b}: {}", text(&out).1);
        let file = dir.join(format!("{b}.toml"));
        assert!(
            text(&out)
                .1
                .starts_with(&format!("error: {}", file.display())),
            "{b}: {}",
            text(&out).1
        );
    }
}

// ---- encodings ---------------------------------------------------------------------

/// Not UTF-8: exit 2 at the line and column of the first bad byte. A BOM and CRLF line
/// ends are read like any file (a multi-line string keeps its `\r\n`). A raw NUL is a
/// TOML error located where it is; an escaped one a profile error at its key.
#[test]
fn encodings_are_read_or_located() {
    let env = Env::new();
    let dir = env.home.join(".config/clp/profiles");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, b: &[u8]| {
        let p = dir.join(format!("{name}.toml"));
        std::fs::write(&p, b).unwrap();
        p
    };

    let p = write(
        "latin1",
        b"extends = \"local-env\"\n\ndescription = \"\xe9t\xe9\"\n",
    );
    let stderr = assert_located(&clp(&env, &["check", "latin1"]), &p, true);
    assert!(
        stderr.contains("latin1.toml:3:16: not UTF-8: byte 0xe9"),
        "{stderr}"
    );
    let p = write("utf16", b"\xff\xfed\x00e\x00");
    assert_located(&clp(&env, &["show", "utf16"]), &p, true);

    write(
        "bom",
        b"\xef\xbb\xbfextends = \"local-env\"\ndescription = \"bom\"\n",
    );
    let out = clp(&env, &["show", "bom"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(text(&out).0.contains("description = \"bom\""));

    write(
        "crlf",
        b"extends = \"local-env\"\r\n[env]\r\nMULTI = \"\"\"\r\none\r\ntwo\"\"\"\r\n",
    );
    let out = clp(&env, &["show", "crlf", "--json"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(text(&out).0.contains("one\\r\\ntwo"), "{}", text(&out).0);

    let p = write(
        "rawnul",
        b"extends = \"local-env\"\ndescription = \"a\0b\"\n",
    );
    let stderr = assert_located(&clp(&env, &["check", "rawnul"]), &p, true);
    assert!(stderr.contains("rawnul.toml:2:"), "{stderr}");
    assert!(!stderr.contains('\0'), "a NUL printed raw");

    let p = write(
        "escnul",
        b"extends = \"local-env\"\n[env]\nX = \"a\\u0000b\"\n",
    );
    for args in [
        &["check", "escnul"][..],
        &["run", "escnul", "--no-check", "--", "true"],
    ] {
        let stderr = assert_located(&clp(&env, args), &p, true);
        assert!(
            stderr.contains("escnul.toml:3:5: `env.X`: contains a NUL"),
            "{stderr}"
        );
    }
}

// ---- sizes and depths --------------------------------------------------------------

/// A file over the size limit, nesting deeper than the parser goes, dotted keys that
/// nest as deep: each an exit-2 error at the file, quickly, never a crash.
#[test]
fn huge_and_deep_files_are_located_errors() {
    let env = Env::new();
    let deep_array = format!(
        "description = {}{}\n",
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    let deep_table = format!(
        "[claude]\nsettings = {}1{}\n",
        "{ a = ".repeat(5_000),
        " }".repeat(5_000)
    );
    let deep_dotted = format!("claude.settings.{} = 1\n", vec!["a"; 5_000].join("."));
    let huge = format!("description = \"{}\"\n", "x".repeat(3 << 20));
    for (name, body, line) in [
        ("deep-array", deep_array, true),
        ("deep-table", deep_table, true),
        ("deep-dotted", deep_dotted, true),
        ("huge", huge, false),
    ] {
        let file = env.profile(name, &body);
        let start = Instant::now();
        assert_located(&clp(&env, &["check", name]), &file, line);
        assert_located(&clp(&env, &["show", name]), &file, line);
        assert!(start.elapsed() < Duration::from_secs(10), "{name}: slow");
    }
    // Just below the limit, a big valid file is a profile.
    let big = format!(
        "extends = \"local-env\"\ndescription = \"{}\"\n",
        "x".repeat(1000 * 1000)
    );
    env.profile("big", &big);
    let out = clp(&env, &["check", "big"]);
    assert!(out.status.success(), "{}", text(&out).1);
}

/// `extends` chains: 32 profiles load; a 33rd is an error at the `extends` that goes too
/// far; a cycle closing at any depth names the whole cycle at the `extends` that closes
/// it.
#[test]
fn long_chains_and_cycles_at_any_depth() {
    let env = Env::new();
    let chain = |n: usize, last: &str| {
        for i in 0..n {
            let parent = if i + 1 == n {
                last.to_owned()
            } else {
                format!("c{}", i + 1)
            };
            env.profile(
                &format!("c{i}"),
                &format!("extends = \"{parent}\"\ndescription = \"level {i}\"\n"),
            );
        }
    };
    // c0 -> c1 -> ... -> c30 -> local-env: 32 profiles.
    chain(31, "local-env");
    let out = clp(&env, &["show", "c0"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(text(&out).0.contains("description = \"level 0\""));
    // One more level above it: 33.
    let top = env.profile("top", "extends = \"c0\"\n");
    let stderr = assert_located(
        &clp(&env, &["check", "top"]),
        &env.home.join(".config/clp/profiles/c30.toml"),
        true,
    );
    assert!(
        stderr.contains("longer than 32 profiles: top -> c0 -> c1 -> c2 -> ..."),
        "{stderr}"
    );
    std::fs::remove_file(top).unwrap();

    for depth in 1..=31 {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..depth {
            let parent = format!("k{}", (i + 1) % depth);
            std::fs::write(
                dir.path().join(format!("k{i}.toml")),
                format!("extends = \"{parent}\"\n"),
            )
            .unwrap();
        }
        let out = clp(
            &env,
            &[
                "--profiles-dir",
                &dir.path().display().to_string(),
                "check",
                "k0",
            ],
        );
        let closing = dir.path().join(format!("k{}.toml", depth - 1));
        let stderr = assert_located(&out, &closing, true);
        let cycle: Vec<String> = (0..depth).map(|i| format!("k{i}")).collect();
        assert!(
            stderr.contains(&format!(
                "`extends` forms a cycle: {} -> k0",
                cycle.join(" -> ")
            )),
            "depth {depth}: {stderr}"
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

/// A shell variable in any key that holds a path is an error at its place: clp does not
/// expand it, and `$HOME/x` would be a directory named `$HOME` beside the profile
/// (found by the property tests for `isolation.config-dir`). Control: `~/x` is fine.
#[test]
fn shell_variables_in_any_path_key_are_located() {
    let env = Env::new();
    for (key, line, toml) in [
        ("workspace.path", 3, "[workspace]\npath = \"$HOME/p\"\n"),
        (
            "isolation.config-dir",
            3,
            "[isolation]\nconfig-dir = \"$HOME/x\"\n",
        ),
        (
            "workspace.read-only[1]",
            3,
            "[workspace]\nread-only = [\"~/a\", \"$XDG_DATA_HOME/b\"]\n",
        ),
        (
            "workspace.writable[0]",
            3,
            "[workspace]\nwritable = [\"${HOME}/c\"]\n",
        ),
    ] {
        let file = env.profile("vars", &format!("extends = \"local-env\"\n{toml}"));
        for args in [
            &["check", "vars"][..],
            &["run", "vars", "--no-check", "--", "true"],
        ] {
            let stderr = assert_located(&clp(&env, args), &file, true);
            assert!(
                stderr.contains(&format!("vars.toml:{line}:"))
                    && stderr.contains(&format!("`{key}`: ")),
                "{key}: {stderr}"
            );
            assert!(stderr.contains("is not expanded"), "{key}: {stderr}");
        }
    }
    env.profile(
        "vars",
        "extends = \"local-env\"\n[isolation]\nconfig-dir = \"~/x\"\n",
    );
    let out = clp(&env, &["check", "vars"]);
    assert!(out.status.success(), "{}", text(&out).1);
}

// ---- the file system ---------------------------------------------------------------

/// The profile dir may be a symbolic link (dotfiles managers make them); a profile file
/// may be one too.
#[test]
fn a_profile_dir_that_is_a_link_works() {
    let env = Env::new();
    let real = env.dir.path().join("dotfiles/clp");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::write(real.join("mine.toml"), "extends = \"local-env\"\n").unwrap();
    std::fs::write(real.join("target.toml"), "extends = \"local-env\"\n").unwrap();
    std::fs::create_dir_all(env.home.join(".config/clp")).unwrap();
    std::os::unix::fs::symlink(&real, env.home.join(".config/clp/profiles")).unwrap();
    std::os::unix::fs::symlink("target.toml", real.join("linked.toml")).unwrap();
    for name in ["mine", "linked"] {
        for args in commands_on(name) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = clp(&env, &args);
            assert!(out.status.success(), "{args:?}: {}", text(&out).1);
        }
    }
    let out = clp(&env, &["list"]);
    assert!(text(&out).0.contains("\nmine "), "{}", text(&out).0);
    assert!(text(&out).1.is_empty(), "{}", text(&out).1);
}

/// An unreadable profile file (clp runs as the test user, the file is root's, mode 0):
/// reported by `list` and `check`, an error when named, never in the way of others.
#[test]
fn an_unreadable_file_is_reported_and_never_blocks() {
    let Some(user) = crate::sandbox::test_user() else {
        return;
    };
    if !nix::unistd::getuid().is_root() {
        eprintln!("SKIPPED: needs root to make a file the test user cannot read");
        return;
    }
    let backend = clp_test_backend::Backend::start(clp_test_backend::Config::default()).unwrap();
    let b = crate::sandbox::Box::new(crate::sandbox::As::User, user, backend);
    b.profile("good", "extends = \"local-env\"\n");
    b.profile("secret", "extends = \"local-env\"\n");
    let secret = b.home.join(".config/clp/profiles/secret.toml");
    std::os::unix::fs::chown(&secret, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let run = |args: &[&str]| within(b.clp(args), Duration::from_secs(20));

    let out = run(&["list"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(
        text(&out)
            .1
            .contains("secret.toml: cannot read the file: Permission denied"),
        "{}",
        text(&out).1
    );
    let out = run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).0.contains("ok       good"), "{}", text(&out).0);
    assert_located(&run(&["show", "secret"]), &secret, false);
    for args in [
        &["show", "good"][..],
        &["run", "good", "--no-check", "--", "true"],
    ] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out).1);
    }
}

/// A profile rewritten in place (not atomically, as many editors do) while clp reads it:
/// each `clp check` sees it whole, in part or empty, and answers 0 or 2 with a location,
/// never a crash. Control: the writer really did change the file under the readers
/// (both answers were seen).
#[test]
fn a_file_changing_while_read_is_either_valid_or_located() {
    use std::io::Write;
    let env = Env::new();
    let good = "extends = \"local-env\"\ndescription = \"a valid profile\"\n\
                [env]\nA = \"1\"\nB = \"2\"\n";
    let file = env.profile("moving", good);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, file) = (stop.clone(), file.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                use std::io::Seek;
                f.set_len(0).unwrap();
                f.rewind().unwrap();
                for chunk in good.as_bytes().chunks(7) {
                    f.write_all(chunk).unwrap();
                    if i.is_multiple_of(3) {
                        std::thread::yield_now();
                    }
                }
                i += 1;
            }
        })
    };
    let (mut ok, mut located) = (0, 0);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(8) && (ok < 3 || located < 3) {
        let out = clp(&env, &["check", "moving"]);
        match out.status.code() {
            Some(0) => ok += 1,
            Some(2) => {
                assert_located(&out, &file, false);
                located += 1;
            }
            other => panic!("exit {other:?}: {}", text(&out).1),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(ok > 0 && located > 0, "ok {ok}, located {located}");
}

// ---- --set -------------------------------------------------------------------------

/// `--set` with unknown keys, bad TOML, keys nested deeper than any profile key, or
/// values nested deeper than the parser goes: exit 2 naming the `--set`, never a crash.
#[test]
fn set_overrides_that_are_wrong_are_errors_not_crashes() {
    let env = Env::new();
    let deep_key = format!("claude.settings.{}=1", vec!["a"; 20_000].join("."));
    let deep_value = format!("description={}{}", "[".repeat(20_000), "]".repeat(20_000));
    let cases: Vec<(String, &str)> = vec![
        ("nonsense.key=1".into(), "unknown key `nonsense`"),
        ("model.contxt=1".into(), "did you mean `context`?"),
        ("description=[1".into(), "is not valid TOML"),
        ("description=\"open".into(), "is not valid TOML"),
        ("network.allow={a=".into(), "is not valid TOML"),
        ("env.A=\"\\u0000\"".into(), "contains a NUL"),
        ("=1".into(), "is not a key path"),
        ("a..b=1".into(), "is not a key path"),
        ("model.default".into(), "is not `key.path=value`"),
        (deep_key, "more than 32 parts"),
        (deep_value, "is not valid TOML"),
        (
            "claude.settings.a.b.c.d.e.f=1".into(),
            "Claude Code has no setting `a`",
        ),
    ];
    for (set, expect) in &cases {
        for args in [
            vec!["check", "local-env"],
            vec!["show", "oauth"],
            vec!["run", "local-env", "--no-check", "--", "true"],
        ] {
            let out = clp(&env, &[&["--set", set.as_str()][..], &args].concat());
            let (_, stderr) = text(&out);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{}: {stderr}",
                &set[..set.len().min(40)]
            );
            assert!(
                stderr.contains(expect),
                "{}: {stderr}",
                &set[..set.len().min(40)]
            );
        }
    }
}
