//! Loading profiles through the CLI: the four layers, inheritance, `--set`, paths, `list`,
//! `show`, `check`, `init`.

use crate::common::{text, Env};

#[test]
fn list_shows_the_builtins_with_level_backend_and_source() {
    let env = Env::new();
    let out = env.run(&["list"]);
    assert!(out.status.success());
    insta::assert_snapshot!("list_builtins", text(&out).0);

    let out = env.run(&["list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "local-container",
            "local-env",
            "local-glm",
            "local-gpt-oss",
            "local-qwen",
            "oauth"
        ]
    );
}

#[test]
fn show_each_builtin() {
    let env = Env::new();
    for name in [
        "oauth",
        "local-glm",
        "local-qwen",
        "local-gpt-oss",
        "local-env",
        "local-container",
    ] {
        let out = env.run(&["show", name, "--set", "isolation.user=nobody"]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        // The host decides two notes: whether clp runs as root, and which engine exists.
        let stable: String = env
            .scrub(&stdout)
            .lines()
            .filter(|l| !l.starts_with("note: clp runs as root"))
            .map(|l| {
                l.replace("(docker, image", "(ENGINE, image")
                    .replace("(podman, image", "(ENGINE, image")
                    + "\n"
            })
            .collect();
        insta::assert_snapshot!(format!("show_{name}"), stable);
    }
}

#[test]
fn user_profile_replaces_builtin_and_profiles_dir_beats_user_dir() {
    let env = Env::new();
    env.profile(
        "local-glm",
        "description = \"mine\"\n[isolation]\nlevel = \"A\"\n",
    );
    let out = env.run(&["show", "local-glm"]);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("description = \"mine\""), "{stdout}");
    assert!(stdout.contains("level    A (env)"), "{stdout}");
    // A replacement is whole: nothing of the built-in remains.
    assert!(stdout.contains("backend.url = (unset)"), "{stdout}");

    let extra = env.write(
        "extra/local-glm.toml",
        "description = \"from --profiles-dir\"\n",
    );
    let dir = extra.parent().unwrap().to_str().unwrap();
    let out = env.run(&["--profiles-dir", dir, "show", "local-glm"]);
    assert!(text(&out).0.contains("\"from --profiles-dir\""));

    // And --set beats every file.
    let out = env.run(&[
        "--profiles-dir",
        dir,
        "--set",
        "description=cli",
        "show",
        "local-glm",
    ]);
    let (stdout, _) = text(&out);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("description ="))
        .unwrap();
    assert!(
        line.contains("\"cli\"") && line.ends_with("# --set description=cli"),
        "{line}"
    );

    // CLP_PROFILES_DIR moves the user dir; XDG_CONFIG_HOME too.
    let moved = env.write("moved/local-env.toml", "description = \"moved\"\n");
    let out = env
        .clp()
        .env("CLP_PROFILES_DIR", moved.parent().unwrap())
        .args(["show", "local-env"])
        .output()
        .unwrap();
    assert!(text(&out).0.contains("\"moved\""));
    env.write("xdg/clp/profiles/local-env.toml", "description = \"xdg\"\n");
    let out = env
        .clp()
        .env("XDG_CONFIG_HOME", env.home.join("xdg"))
        .args(["show", "local-env"])
        .output()
        .unwrap();
    assert!(text(&out).0.contains("\"xdg\""));
}

#[test]
fn extends_chains_merge_child_over_parent_with_provenance() {
    let env = Env::new();
    let base = env.profile(
        "base",
        "extends = \"local-env\"\n[model]\ndefault = \"base-model\"\ncontext = 16384\n[permissions]\nallow = [\"Read\"]\n",
    );
    env.profile(
        "child",
        "extends = \"base\"\ndescription = \"child\"\n[model]\ndefault = \"child-model\"\n[permissions]\nallow = [\"Edit\"]\n",
    );
    let out = env.run(&["show", "child"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("extends  child -> base -> local-env"),
        "{stdout}"
    );
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap()
            .to_owned()
    };
    assert!(line("model.default =").contains("\"child-model\""));
    assert!(line("model.default =").contains("child.toml:4"));
    assert!(line("model.context =").contains("16384"));
    assert!(line("model.context =").contains(&format!("{}:4", base.display())));
    // Lists replace the parent's list.
    assert!(line("permissions.allow =").contains("[\"Edit\"]"));
    assert!(line("backend.url =").contains("built-in profiles/local-env.toml"));
}

#[test]
fn extends_cycle_and_missing_parent_name_the_chain() {
    let env = Env::new();
    env.profile("a", "extends = \"b\"\n");
    env.profile("b", "\nextends = \"c\"\n");
    env.profile("c", "extends = \"a\"\n");
    let out = env.run(&["show", "a"]);
    assert_eq!(out.status.code(), Some(2));
    let (_, stderr) = text(&out);
    assert!(stderr.contains("cycle: a -> b -> c -> a"), "{stderr}");
    assert!(stderr.contains("c.toml:1:11: `extends`"), "{stderr}");

    env.profile("orphan", "description = \"x\"\nextends = \"local-glmm\"\n");
    let out = env.run(&["check", "orphan"]);
    assert_eq!(out.status.code(), Some(2));
    let (_, stderr) = text(&out);
    assert!(stderr.contains("orphan.toml:2:11: `extends`: `extends` names `local-glmm`, which does not exist (chain: orphan -> local-glmm)"), "{stderr}");
    assert!(stderr.contains("did you mean `local-glm`?"), "{stderr}");
}

#[test]
fn set_values_parse_as_toml_or_strings() {
    let env = Env::new();
    let out = env.run(&[
        "--set",
        "model.context=65536",
        "--set",
        "isolation.level=A",
        "--set",
        "network.allow=[\"github.com\", \"*.pypi.org\"]",
        "--set",
        "description=two words",
        "--set",
        "workspace.protect=[\".envrc\", \"Makefile\"]",
        "show",
        "local-glm",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("model.context = 65536"));
    assert!(stdout.contains("isolation.level = \"env\""));
    assert!(stdout.contains("network.allow = [\"github.com\", \"*.pypi.org\"]"));
    assert!(stdout.contains("description = \"two words\""));
    assert!(stdout.contains("workspace.protect = [\".envrc\", \"Makefile\"]"));

    // Bad keys and bad values are errors naming the --set.
    let out = env.run(&["--set", "model.contxt=1", "show", "local-glm"]);
    assert_eq!(out.status.code(), Some(2));
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("--set model.contxt=1: `model.contxt`: unknown key `contxt`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `context`?"), "{stderr}");
    let out = env.run(&["--set", "model.context=big", "show", "local-glm"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("expected an integer, found a string"));
    let out = env.run(&["--set", "nonsense", "show", "local-glm"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("is not `key.path=value`"));
}

#[test]
fn paths_resolve_against_home_and_the_defining_file() {
    let env = Env::new();
    let file = env.profile(
        "paths",
        "extends = \"local-env\"\n[workspace]\npath = \"../../../project\"\nread-only = [\"~/lib\", \"../../../rel/dir\", \"/abs\"]\n[isolation]\nconfig-dir = \"~/.claude-local\"\n",
    );
    assert!(file.parent().unwrap().ends_with(".config/clp/profiles"));
    let out = env.run(&["show", "paths"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let home = env.home.display().to_string();
    assert!(
        stdout.contains(&format!("workspace.path = \"{home}/project\"")),
        "{stdout}"
    );
    // `../../../rel/dir` is relative to the profile's own directory.
    assert!(stdout.contains(&format!(
        "workspace.read-only = [\"{home}/lib\", \"{home}/rel/dir\", \"/abs\"]"
    )));
    assert!(stdout.contains(&format!("isolation.config-dir = \"{home}/.claude-local\"")));
}

#[test]
fn unknown_profile_suggests_a_name() {
    let env = Env::new();
    let out = env.run(&["show", "local-glmm"]);
    assert_eq!(out.status.code(), Some(2));
    let (_, stderr) = text(&out);
    assert_eq!(
        stderr,
        "error: no profile named `local-glmm`\n  hint: did you mean `local-glm`?\n"
    );
}

#[test]
fn check_all_reports_every_broken_file_and_exits_2() {
    let env = Env::new();
    let out = env.run(&["check"]);
    assert!(out.status.success(), "{}", text(&out).1);
    env.profile(
        "broken",
        "[backend]\nurl = \"http://127.0.0.1:8080/v1\"\n[isolation]\nlevel = \"D\"\n",
    );
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains("invalid  broken"));
    assert!(
        stderr.contains("broken.toml:2:7: `backend.url`: the base URL ends in `/v1`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("broken.toml:4:9: `isolation.level`"),
        "{stderr}"
    );
    assert!(stderr.contains("2 problems found"), "{stderr}");
}

#[test]
fn init_writes_a_valid_profile_and_never_overwrites() {
    let env = Env::new();
    let out = env.run(&["init", "my-glm", "--from", "local-qwen"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let path = env.home.join(".config/clp/profiles/my-glm.toml");
    assert_eq!(stdout.trim(), path.display().to_string());
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.starts_with("#:schema ./profile.schema.json\n"));
    assert!(env
        .home
        .join(".config/clp/profiles/profile.schema.json")
        .is_file());
    assert!(env.run(&["check", "my-glm"]).status.success());

    std::fs::write(&path, "description = \"edited\"\n").unwrap();
    let out = env.run(&["init", "my-glm"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("exists already"));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "description = \"edited\"\n"
    );

    // A profile that would not load is not written.
    let out = env.run(&["init", "local-glm", "--from", "local-qwen"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("cycle"));
    assert!(!env
        .home
        .join(".config/clp/profiles/local-glm.toml")
        .exists());
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let env = Env::new();
    let out = env.run(&["schema"]);
    let committed =
        std::fs::read_to_string(crate::common::repo().join("schemas/profile.schema.json")).unwrap();
    assert_eq!(text(&out).0, committed);
}

#[test]
fn shell_init_defines_the_aliases() {
    let env = Env::new();
    let out = env.run(&["shell-init", "bash"]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("alias claude-local='clp use local-env --'"),
        "{stdout}"
    );
    assert!(
        stdout.contains("alias claude-glm='clp use local-glm --'"),
        "{stdout}"
    );
}

/// A child's credential source replaces the parent's, whichever key each uses.
#[test]
fn a_childs_credential_source_replaces_the_parents() {
    let env = Env::new();
    env.profile(
        "secret-proxy",
        "extends = \"local-glm\"\n[auth]\ntoken-env = \"MY_PROXY_TOKEN\"\n",
    );
    let out = env.run(&["show", "secret-proxy"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("auth.token-env = \"MY_PROXY_TOKEN\""),
        "{stdout}"
    );
    assert!(!stdout.contains("auth.token ="), "{stdout}");
    let out = env.run(&["render", "secret-proxy", "--set", "isolation.level=A"]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("ANTHROPIC_AUTH_TOKEN=<from $MY_PROXY_TOKEN>"),
        "{stdout}"
    );
    assert!(!stdout.contains("llamacpp"), "{stdout}");
}

#[test]
fn completions_and_image_print_what_they_say() {
    let env = Env::new();
    let out = env.run(&["completions", "bash"]);
    assert!(out.status.success());
    assert!(
        text(&out).0.contains("complete -F _clp"),
        "{}",
        text(&out).0
    );
    let out = env.run(&["image", "local-container"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("@anthropic-ai/claude-code@2.1.330"),
        "{stdout}"
    );
    assert!(
        stderr.contains("build -t localhost/clp-claude:2.1.330"),
        "{stderr}"
    );
}
