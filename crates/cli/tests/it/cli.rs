//! The command line itself: `clp` alone, man pages, completions of profile names in
//! bash, zsh and fish, the `--json` shapes, colours (`NO_COLOR`, terminals) and the
//! progress shown while the backend loads or switches models.
//!
//! A terminal is `script` (util-linux) for output and tmux for zsh's completion, which
//! only runs in an interactive shell.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use clp_test_backend::{Backend, Config, HealthMode};
use serde_json::Value;

use crate::common::{self, clp_bin, require, text, Env, BUILTINS};

/// The commands `clp --help` lists, each with a man page.
const COMMANDS: [&str; 16] = [
    "use",
    "run",
    "list",
    "show",
    "explain",
    "resume",
    "check",
    "schema",
    "init",
    "render",
    "doctor",
    "shell-init",
    "log",
    "image",
    "completions",
    "man",
];

/// An env with a user profile `mine`, an `extra` profile in another dir (returned), and
/// `clp` on PATH for the completion scripts.
fn env_with_profiles() -> (Env, PathBuf) {
    let mut env = Env::new();
    env.profile("mine", "extends = \"local-env\"\n");
    let extra = env.dir.path().join("extra");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("extra.toml"), "extends = \"oauth\"\n").unwrap();
    env.path_var = format!("{}:{}", clp_bin().parent().unwrap().display(), env.path_var);
    (env, extra)
}

#[test]
fn no_arguments_lists_the_profiles_and_the_next_step() {
    let (env, _) = env_with_profiles();
    env.profile("broken", "[backend]\nurl = 3\n");
    let out = env.run(&[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "");
    insta::assert_snapshot!("no_arguments", stdout);
}

#[test]
fn man_pages_for_clp_and_every_command() {
    let env = Env::new();
    let out = env.run(&["man"]);
    let (page, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(page.contains(".TH clp 1"), "{page}");
    for section in [
        "SYNOPSIS",
        "SUBCOMMANDS",
        "ENVIRONMENT",
        "FILES",
        "\"EXIT STATUS\"",
    ] {
        assert!(page.contains(&format!("\n.SH {section}\n")), "{section}");
    }
    for c in COMMANDS {
        assert!(
            page.contains(&format!("clp\\-{}(1)", c.replace('-', "\\-"))),
            "{c}"
        );
    }

    let dir = env.dir.path().join("man1");
    let out = env.run(&["man", "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
    let mut written: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    let mut expected: Vec<String> = COMMANDS.iter().map(|c| format!("clp-{c}.1")).collect();
    expected.push("clp.1".into());
    expected.sort();
    assert_eq!(written, expected);
    assert_eq!(std::fs::read_to_string(dir.join("clp.1")).unwrap(), page);

    // groff reads every page without a warning. Control: it does warn on a broken one.
    require("groff (apt-get install groff-base)", common::which("groff"));
    let groff = |path: &Path| {
        let out = Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .arg(path)
            .output()
            .unwrap();
        text(&out).1
    };
    for name in &written {
        assert_eq!(groff(&dir.join(name)), "", "{name}");
    }
    let broken = dir.join("broken.1");
    std::fs::write(&broken, ".TH broken 1\n.NOSUCHMACRO\n").unwrap();
    assert!(groff(&broken).contains("NOSUCHMACRO"));
}

/// Runs `program ARGS` with only `env`'s HOME and PATH, in its project.
fn in_env(env: &Env, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env_clear()
        .env("HOME", &env.home)
        .env("PATH", &env.path_var)
        .current_dir(&env.project)
        .output()
        .unwrap()
}

/// Completes each of `lines` (the words so far, the last one being completed) with
/// `script` in bash, through the function `complete -p clp` names; one reply a line.
fn bash_completions(env: &Env, script: &str, lines: &[Vec<String>]) -> Vec<String> {
    let file = env.dir.path().join("clp.bash");
    std::fs::write(&file, script).unwrap();
    let mut program = format!(
        "source {}\n\
         complete -p clp >&2\n\
         t() {{\n\
           COMP_WORDS=(\"$@\"); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n\
           COMP_LINE=\"$*\"; COMP_POINT=${{#COMP_LINE}}; COMPREPLY=()\n\
           local f; f=$(complete -p clp | sed -E 's/.* -F ([^ ]+) .*/\\1/')\n\
           \"$f\" clp \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
           echo \"${{COMPREPLY[*]}}\"\n\
         }}\n",
        file.display()
    );
    for words in lines {
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        program.push_str(&format!("t {}\n", quoted.join(" ")));
    }
    let out = in_env(env, "bash", &["--norc", "--noprofile", "-c", &program]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    stdout.lines().map(String::from).collect()
}

fn words(line: &str) -> Vec<String> {
    let mut w: Vec<String> = line.split(' ').map(String::from).collect();
    if line.ends_with(' ') {
        w.pop();
        w.push(String::new());
    }
    w
}

#[test]
fn bash_completes_profile_names_from_every_source() {
    let (env, extra) = env_with_profiles();
    let script = text(&env.run(&["completions", "bash"])).0;
    let extra = extra.display().to_string();
    let lines: Vec<Vec<String>> = [
        "clp use ".to_owned(),
        "clp run --no-check ".into(),
        "clp show m".into(),
        format!("clp --profiles-dir {extra} render ex"),
        "clp init new --from o".into(),
        "clp check ".into(),
        "clp use local-glm ".into(),
        "clp render local-glm --format ".into(),
        "clp li".into(),
        "clp use --d".into(),
    ]
    .iter()
    .map(|l| words(l))
    .collect();
    let got = bash_completions(&env, &script, &lines);
    let all: Vec<&str> = BUILTINS.iter().copied().chain(["mine"]).collect();
    let mut all_sorted = all.clone();
    all_sorted.sort();
    assert_eq!(got[0], all_sorted.join(" "), "built-ins and the user's");
    assert_eq!(got[1], all_sorted.join(" "));
    assert_eq!(got[2], "mine");
    assert_eq!(got[3], "extra", "--profiles-dir is searched");
    assert_eq!(got[4], "oauth");
    assert_eq!(got[5], all_sorted.join(" "));
    // Where no profile is named, clap's completion answers.
    assert!(!got[6].contains("local"), "{}", got[6]);
    assert_eq!(got[7], "text json");
    assert_eq!(got[8], "list");
    assert_eq!(got[9], "--dry-run");

    // Control: clap_complete's script alone offers no profile names.
    let clap_only = &script[..script.find("\n# Profile names").unwrap()];
    let got = bash_completions(&env, clap_only, &lines[..1]);
    assert!(!got[0].contains("local-glm"), "{}", got[0]);
}

#[test]
fn fish_completes_profile_names() {
    let Some(fish) = require("fish (apt-get install fish)", common::which("fish")) else {
        return;
    };
    let (env, _) = env_with_profiles();
    let file = env.dir.path().join("clp.fish");
    std::fs::write(&file, text(&env.run(&["completions", "fish"])).0).unwrap();
    let complete = |line: &str| -> Vec<String> {
        let program = format!("source {}; complete -C '{line}'", file.display());
        let out = in_env(&env, &fish, &["--no-config", "-c", &program]);
        assert!(out.status.success(), "{}", text(&out).1);
        text(&out)
            .0
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_owned())
            .collect()
    };
    let mut all: Vec<String> = BUILTINS.iter().map(|s| s.to_string()).collect();
    all.push("mine".into());
    all.sort();
    assert_eq!(complete("clp use "), all);
    assert_eq!(complete("clp show local-g"), ["local-glm", "local-gpt-oss"]);
    assert_eq!(complete("clp render x --format "), ["json", "text"]);
    assert!(!complete("clp use local-glm ").contains(&"oauth".to_owned()));

    // Control: clap_complete's script alone offers no profile names.
    let script = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, &script[..script.find("\n# Profile names").unwrap()]).unwrap();
    assert!(!complete("clp use ").contains(&"local-glm".to_owned()));
}

#[test]
fn zsh_completes_profile_names() {
    let Some(zsh) = require("zsh (apt-get install zsh)", common::which("zsh")) else {
        return;
    };
    require("tmux (apt-get install tmux)", common::which("tmux"));
    let (env, _) = env_with_profiles();
    let zdot = env.dir.path().join("zdot");
    std::fs::create_dir_all(&zdot).unwrap();
    let script = zdot.join("clp.zsh");
    std::fs::write(&script, text(&env.run(&["completions", "zsh"])).0).unwrap();
    std::fs::write(
        zdot.join(".zshrc"),
        format!(
            "autoload -U compinit; compinit -u -d {}/compdump\nsource {}\nPROMPT='> '\n",
            zdot.display(),
            script.display()
        ),
    )
    .unwrap();
    let socket = env.dir.path().join("tmux.sock");
    let tmux = |args: &[&str]| common::tmux(&socket, args);
    let shell = format!(
        "env -i HOME={} PATH={} ZDOTDIR={} TERM=xterm {} -i",
        env.home.display(),
        env.path_var,
        zdot.display(),
        zsh.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "z",
        "-x",
        "160",
        "-y",
        "20",
        &shell,
    ]);
    let screen = || text(&tmux(&["capture-pane", "-p", "-t", "z"])).0;
    let wait_for = |what: &str| {
        for _ in 0..80 {
            if screen().contains(what) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    };
    // (capture-pane drops the space after the prompt)
    let ready = wait_for(">");
    tmux(&["send-keys", "-t", "z", "-l", "clp use local-g"]);
    tmux(&["send-keys", "-t", "z", "Tab"]);
    let offered = wait_for("local-gpt-oss");
    let first = screen();
    tmux(&["send-keys", "-t", "z", "C-u"]);
    tmux(&["send-keys", "-t", "z", "-l", "clp use mi"]);
    tmux(&["send-keys", "-t", "z", "Tab"]);
    let completed = wait_for("clp use mine");
    let second = screen();
    tmux(&["kill-server"]);
    assert!(ready && offered, "{first}");
    assert!(first.contains("local-glm"), "{first}");
    assert!(completed, "{second}");
}

/// Every listing and report prints JSON with `--json`, in the shapes docs/json.md
/// documents: a change of keys fails here first.
#[test]
fn json_shapes_are_stable() {
    let env = Env::new();
    env.profile("broken", "[backend]\nurl = 3\n");
    let json = |args: &[&str]| -> (Option<i32>, Value) {
        let out = env.run(args);
        let v = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out).0));
        (out.status.code(), v)
    };
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };

    let (code, list) = json(&["list", "--json"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        keys(&list[0]),
        ["backend", "description", "level", "name", "source", "valid"]
    );

    let (code, checked) = json(&["check", "--json", "local-glm", "broken"]);
    assert_eq!(code, Some(2), "a problem is exit 2, as without --json");
    assert_eq!(keys(&checked[0]), ["name", "problems", "source"]);
    assert_eq!(checked[0]["problems"], serde_json::json!([]));
    let problem = &checked[1]["problems"][0];
    assert_eq!(
        keys(problem),
        ["column", "hint", "key", "line", "message", "origin"]
    );
    assert_eq!(problem["key"], "backend.url");
    assert_eq!(problem["line"], 2);

    let (_, doctor) = json(&["doctor", "--json"]);
    assert_eq!(keys(&doctor), ["checks", "notes", "status"]);
    assert_eq!(keys(&doctor["checks"][0]), ["fix", "status", "what"]);
    for c in doctor["checks"].as_array().unwrap() {
        assert!(["ok", "warning", "error"].contains(&c["status"].as_str().unwrap()));
    }

    let (_, show) = json(&["show", "local-env", "--json"]);
    assert_eq!(
        keys(&show),
        ["chain", "launch-error", "name", "notes", "source", "values"]
    );
    let (_, explain) = json(&["explain", "local-env", "--json"]);
    assert_eq!(
        keys(&explain),
        ["decisions", "layers", "profile", "removed", "warnings"]
    );

    let (code, plan) = json(&["render", "local-env", "--json"]);
    assert_eq!(code, Some(0));
    assert_eq!(plan, json(&["render", "local-env", "--format", "json"]).1);
    let out = env.run(&["render", "local-env", "--json", "--format", "text"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out).1);
}

/// `script` runs `args` with stdout and stderr on a terminal, and returns what the
/// terminal showed.
fn on_terminal(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> String {
    let script = require("script (util-linux)", common::which("script")).unwrap();
    // A terminal of a real size (`script` gives its terminal none).
    let line = [
        "stty cols 120 rows 40;".to_owned(),
        clp_bin().display().to_string(),
    ]
    .into_iter()
    .chain(args.iter().map(|a| format!("'{a}'")))
    .collect::<Vec<_>>()
    .join(" ");
    let out = Command::new(script)
        .args(["-qefc", &line, "/dev/null"])
        .env_clear()
        .env("HOME", &env.home)
        .env("PATH", &env.path_var)
        .env("SHELL", "/bin/sh")
        .env("TERM", "xterm-256color")
        .envs(vars.iter().copied())
        .current_dir(&env.project)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    text(&out).0
}

#[test]
fn colours_only_on_a_terminal_and_never_with_no_color() {
    let env = Env::new();
    env.profile("broken", "[backend]\nurl = 3\n");
    let esc = '\u{1b}';
    for args in [
        &["check", "broken"][..],
        &["show", "no-such-profile"][..],
        &["--no-such-flag"][..],
    ] {
        // Control: on a terminal, `error:` is red.
        let shown = on_terminal(&env, args, &[]);
        assert!(shown.contains("error:"), "{shown}");
        assert!(shown.contains(esc), "{args:?} on a terminal: {shown:?}");
        for vars in [&[("NO_COLOR", "1")][..], &[("TERM", "dumb")][..]] {
            let shown = on_terminal(&env, args, vars);
            assert!(shown.contains("error:"), "{shown}");
            assert!(!shown.contains(esc), "{args:?} {vars:?}: {shown:?}");
        }
        // Not a terminal: plain.
        let out = env.run(args);
        let (stdout, stderr) = text(&out);
        assert!(stderr.contains("error:"), "{stderr}");
        assert!(!stdout.contains(esc) && !stderr.contains(esc), "{stderr:?}");
    }
}

/// A backend that loads for a while, then is ready.
fn loading_backend() -> (Backend, String) {
    let backend = Backend::start(Config {
        health: HealthMode::Loading,
        ..Config::default()
    })
    .unwrap();
    let url = format!("backend.url={}", backend.url());
    (backend, url)
}

/// Runs `run` while `backend` turns ready after `delay`.
fn ready_after<T>(backend: &Backend, delay: Duration, run: impl FnOnce() -> T) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(delay);
            backend.set_health(HealthMode::Ok);
        });
        run()
    })
}

#[test]
fn waiting_is_a_spinner_on_a_terminal_and_one_line_elsewhere() {
    let env = Env::new();
    let waiting = "waiting for the backend at";

    // Not a terminal: one line, no dots, no cursor movement.
    let args = |url: &str| -> Vec<String> {
        let mut a = vec!["--set", url, "--set", "backend.wait=20"];
        a.extend(["run", "local-env", "--", "true"]);
        a.into_iter().map(String::from).collect()
    };
    let (backend, url) = loading_backend();
    let wait = Duration::from_millis(1500);
    let out: Output = ready_after(&backend, wait, || {
        env.clp().args(args(&url)).output().unwrap()
    });
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let line = format!(
        "{waiting} `{}/health` (loading its model) ready\n",
        backend.url()
    );
    assert!(stderr.contains(&line), "{stderr:?}");
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );

    // A terminal: a spinner that redraws the line, then the same line once done.
    let (backend, url) = loading_backend();
    let shown = ready_after(&backend, wait, || {
        let a = args(&url);
        on_terminal(&env, &a.iter().map(String::as_str).collect::<Vec<_>>(), &[])
    });
    let line = format!(
        "{waiting} `{}/health` (loading its model) ready\r\n",
        backend.url()
    );
    assert!(shown.ends_with(&line), "{shown:?}");
    let redraws = shown.matches(waiting).count();
    assert!(redraws > 3, "a spinner redraws the line: {shown:?}");
    assert!(shown.contains('\u{1b}'), "{shown:?}");

    // A model switch that takes a while spins too, and its line stays.
    let backend = Backend::start(Config::default()).unwrap();
    let url = format!("backend.url={}", backend.url());
    let args = [
        "--set",
        &url,
        "--set",
        "backend.switch={ command = \"sleep 1.5\" }",
        "run",
        "local-env",
        "--",
        "true",
    ];
    let step = "switching the backend's model: sleep 1.5";
    let shown = on_terminal(&env, &args, &[]);
    assert!(shown.matches(step).count() > 3, "{shown:?}");
    let out = env.run(&args);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches(step).count(), 1, "{stderr:?}");
}

/// A command whose reader has gone (`clp render NAME --json | head -c1`) ends quietly,
/// killed by SIGPIPE as other Unix tools are, never with a panic on stderr. The reader's
/// end is closed before clp starts, so every write fails. Control: the same commands
/// with a reader print their output.
#[test]
fn a_closed_stdout_ends_printing_commands_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let env = Env::new();
    let commands: [&[&str]; 5] = [
        &["render", "local-env", "--json"],
        &["schema"],
        &["show", "local-glm"],
        &["list"],
        &["use", "local-env", "--dry-run"],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut c = env.clp();
        c.args(args).stdout(writer).stderr(Stdio::piped());
        let out = c.output().unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(
            out.status.signal(),
            Some(13),
            "{args:?}: {:?} {stderr}",
            out.status
        );
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
        let out = env.run(args);
        assert!(
            out.status.success() && !out.stdout.is_empty(),
            "control {args:?}"
        );
    }
}
