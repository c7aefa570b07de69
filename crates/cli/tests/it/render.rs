//! `clp render`: the files a dotfiles repo snapshots, stable across machines with
//! `--portable`; and `--dry-run`, which writes nothing.

use crate::common::{text, Env};

#[test]
fn render_out_writes_settings_env_and_argv() {
    let env = Env::new();
    let out_dir = env.dir.path().join("rendered");
    let out = env.run(&["render", "local-env", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["argv", "env", "settings.json"]);
    let settings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("settings.json")).unwrap())
            .unwrap();
    assert_eq!(
        settings["env"]["ANTHROPIC_BASE_URL"],
        "http://127.0.0.1:8080"
    );
    assert_eq!(settings["permissions"]["ask"][0], "Bash");
    let env_file = std::fs::read_to_string(out_dir.join("env")).unwrap();
    let vars: Vec<&str> = env_file.lines().filter(|l| !l.starts_with('#')).collect();
    let mut sorted = vars.clone();
    sorted.sort();
    assert_eq!(vars, sorted, "env is sorted");
    assert!(vars.contains(&"ANTHROPIC_AUTH_TOKEN=llamacpp"));
    assert!(vars.contains(&"ANTHROPIC_API_KEY="));
    // Rendering writes nothing else: no state dir appears.
    assert!(!env.home.join(".local/state/clp").exists());
}

#[test]
fn portable_renders_are_identical_across_machines() {
    let render = |env: &Env, name: &str| {
        let out = env.run(&[
            "--set",
            "isolation.user=nobody",
            "render",
            name,
            "--portable",
        ]);
        assert!(out.status.success(), "{}", text(&out).1);
        // The test homes live in random temp dirs (`/tmp/clp-it-XXXXXX/home`), whose parent
        // shows up as a mount point to create; a real `/home/NAME` needs none.
        let tmp = env.dir.path().display().to_string();
        text(&out).0.replace(&tmp, "/tmp/clp-it-XXXXXX")
    };
    let (a, b) = (Env::new(), Env::new());
    for name in ["local-env", "local-glm", "local-container", "oauth"] {
        let (ra, rb) = (render(&a, name), render(&b, name));
        assert_eq!(ra, rb, "{name} differs between two homes");
        assert!(!ra.contains(&a.home.display().to_string()), "{name}: {ra}");
        assert!(ra.contains("{state}") || name == "oauth", "{name}: {ra}");
    }
}

#[test]
fn render_json_is_the_plan() {
    let env = Env::new();
    let out = env.run(&["render", "local-env", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["profile"], "local-env");
    assert_eq!(plan["level"], "env");
    assert_eq!(plan["env"]["set"]["ANTHROPIC_MODEL"], "glm-flash-q4");
    assert!(plan["argv"][1] == "--settings");
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let env = Env::new();
    let before = env.snapshot_tree();
    let out = env.run(&["use", "local-env", "--dry-run", "--", "-p", "hi"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("==== argv ====\n"), "{stdout}");
    assert!(stdout.contains("==== preflight ====\nhealth GET http://127.0.0.1:8080/health (wait 0s)\nmodel  GET http://127.0.0.1:8080/v1/models lists `glm-flash-q4`\ncontext GET http://127.0.0.1:8080/props (warn if it has less than 32768)\n==== notes ====\n"), "{stdout}");
    assert!(stdout.contains("\n-p\nhi\n"), "{stdout}");
    assert_eq!(before, env.snapshot_tree());
}

/// A missing bubblewrap or container engine is exit 2 with the install command, before
/// anything is written.
#[test]
fn a_missing_boundary_program_names_its_install_command() {
    let mut env = Env::new();
    env.path_var = env.dir.path().join("empty-bin").display().to_string();
    for (profile, program, install) in [
        ("local-glm", "bwrap", "apt-get install bubblewrap"),
        ("local-container", "podman", "apt-get install podman"),
    ] {
        let out = env.run(&[
            "--set",
            "isolation.user=nobody",
            "run",
            profile,
            "--no-check",
            "--",
            "true",
        ]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("`{program}` is not installed")),
            "{stderr}"
        );
        assert!(stderr.contains(install), "{stderr}");
    }
    assert!(!env.home.join(".local/state/clp").exists());
}

/// `render --portable` by root (a dotfiles repository's CI in a container) renders, and
/// prints byte for byte what the user's `render --portable` prints, for every shipped
/// profile: a portable render describes the profile, not who renders it. Control: without
/// `--portable`, root's render of a sandboxed profile refuses, the user's does not.
#[test]
fn portable_render_as_root_is_the_users() {
    use crate::sandbox::{shared_copy, test_user};
    if !nix::unistd::getuid().is_root() {
        eprintln!("SKIPPED: rendering as root needs root");
        return;
    }
    let Some(user) = test_user() else { return };
    let clp = shared_copy(&crate::common::clp_bin(), "clp");
    let (root_env, user_env) = (Env::new(), Env::new());
    for entry in walkdir::WalkDir::new(user_env.dir.path()) {
        let path = entry.unwrap().into_path();
        std::os::unix::fs::lchown(&path, Some(user.uid), Some(user.gid)).unwrap();
    }
    let run = |env: &Env, as_user: bool, args: &[&str]| {
        let mut cmd = if as_user {
            let mut c = std::process::Command::new("setpriv");
            c.arg(format!("--reuid={}", user.uid))
                .arg(format!("--regid={}", user.gid))
                .args(["--clear-groups", "--"])
                .arg(&clp);
            c
        } else {
            std::process::Command::new(&clp)
        };
        // The same PATH for both, which both can read: programs resolve alike.
        cmd.args(args)
            .env_clear()
            .env("HOME", &env.home)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .current_dir(&env.project)
            .output()
            .unwrap()
    };
    for name in crate::common::BUILTINS {
        let args = ["render", name, "--portable"];
        let (by_root, by_user) = (run(&root_env, false, &args), run(&user_env, true, &args));
        assert!(by_root.status.success(), "{name}: {}", text(&by_root).1);
        assert!(by_user.status.success(), "{name}: {}", text(&by_user).1);
        assert!(
            by_root.stdout == by_user.stdout,
            "{name}:\n--- root\n{}\n--- user\n{}",
            text(&by_root).0,
            text(&by_user).0
        );
        let shown = text(&by_root).0;
        for env in [&root_env, &user_env] {
            let tmp = env.dir.path().display().to_string();
            assert!(!shown.contains(&tmp), "{name}: {shown}");
        }
        assert!(!shown.contains("/dev/shm/clp-"), "{name}: {shown}");
    }
    let refused = run(&root_env, false, &["render", "local-glm"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused).1);
    assert!(text(&refused).1.contains("clp runs as root"));
    assert!(run(&user_env, true, &["render", "local-glm"])
        .status
        .success());
}
