//! Backend preflight with the test server: loading, down, wrong model, switching errors.
//! (The same states against the real llama-server are in `llama`.)

use std::time::Duration;

use clp_test_backend::{Backend, Config, HealthMode};

use crate::common::{text, Env};

fn env_for(backend: &Backend) -> (Env, String) {
    let env = Env::new();
    (env, format!("backend.url={}", backend.url()))
}

#[test]
fn a_loading_backend_is_waited_for_with_progress() {
    let backend = Backend::start(Config {
        health: HealthMode::Loading,
        ..Config::default()
    })
    .unwrap();
    let (env, url) = env_for(&backend);
    let child = crate::common::Guarded::spawn(
        env.clp()
            .args([
                "--set",
                &url,
                "--set",
                "backend.wait=20",
                "run",
                "local-env",
                "--",
                "true",
            ])
            .stderr(std::process::Stdio::piped()),
    );
    std::thread::sleep(Duration::from_millis(1500));
    backend.set_health(HealthMode::Ok);
    let out = child.wait_with_output();
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "waiting for the backend at `{}/health` (loading its model)",
            backend.url()
        )),
        "{stderr}"
    );
    assert!(stderr.contains(" ready"), "{stderr}");
}

#[test]
fn a_backend_still_loading_after_the_wait_is_an_error() {
    let backend = Backend::start(Config {
        health: HealthMode::Loading,
        ..Config::default()
    })
    .unwrap();
    let (env, url) = env_for(&backend);
    let out = env.run(&["--set", &url, "run", "local-env", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let (_, stderr) = text(&out);
    assert!(stderr.contains("is still loading its model"), "{stderr}");
    assert!(
        stderr.contains("`backend.wait`") && stderr.contains("--no-check"),
        "{stderr}"
    );
}

#[test]
fn a_model_the_backend_does_not_serve_is_a_warning_naming_what_it_serves() {
    let backend = Backend::start(Config {
        models: vec!["qwen3-coder-q4".into(), "gpt-oss-20b".into()],
        ..Config::default()
    })
    .unwrap();
    let (env, url) = env_for(&backend);
    let out = env.run(&["--set", &url, "run", "local-env", "--", "true"]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: the backend does not list the model `glm-flash-q4`; it serves: gpt-oss-20b, qwen3-coder-q4"),
        "{stderr}"
    );
    assert!(stderr.contains("--alias"), "{stderr}");
}

#[test]
fn switching_errors_are_clear() {
    let backend = Backend::start(Config::default()).unwrap();
    let (env, url) = env_for(&backend);
    // A command that fails.
    let out = env.run(&[
        "--set",
        &url,
        "--set",
        "backend.switch={ command = \"exit 3\" }",
        "run",
        "local-env",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("the switch command `exit 3` failed"),
        "{}",
        text(&out).1
    );
    // A request the server refuses (the test server has no such endpoint).
    let out = env.run(&[
        "--set",
        &url,
        "--set",
        "backend.switch={ url = \"/models/load\", body = '{\"model\": \"x\"}' }",
        "run",
        "local-env",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains(&format!(
            "the switch request POST `{}/models/load` failed: HTTP 404",
            backend.url()
        )),
        "{stderr}"
    );
    // A switch that never brings the model: wait, then say what is served.
    let out = env.run(&[
        "--set",
        &url,
        "--set",
        "backend.switch={ command = \"true\" }",
        "--set",
        "backend.wait=1",
        "--set",
        "model.default=never-served",
        "run",
        "local-env",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("the backend did not switch to `never-served`; it serves: glm-flash-q4"),
        "{stderr}"
    );
}

#[test]
fn switch_needs_exactly_one_of_command_and_url() {
    let env = Env::new();
    let out = env.run(&[
        "--set",
        "backend.switch={ method = \"POST\" }",
        "check",
        "local-env",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out)
            .1
            .contains("`backend.switch`: give `command` or `url`"),
        "{}",
        text(&out).1
    );
}
