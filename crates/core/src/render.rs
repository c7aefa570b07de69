//! Rendering: `(Profile, Host) -> LaunchPlan`, a pure function.
//!
//! The plan holds everything a launch does (files to write, the child's environment, the
//! argv, the checks to run first), so `clp render`, `--dry-run` and snapshot tests see
//! exactly what `clp use` executes. The boundary of levels B and C comes from
//! [`crate::boundary`]; each level's arguments from [`crate::level`].

use std::collections::BTreeMap;
use std::path::Path;

use crate::boundary;
use crate::error::Error;
use crate::host::{Host, Needs};
use crate::level;
use crate::model::Level;
use crate::plan::{
    EnvPlan, LaunchPlan, LinkAction, PlannedFile, PlannedLink, Preflight, StatePaths, WritePolicy,
};
use crate::policy::{Tool, SCRUBBED, SCRUBBED_OAUTH};
use crate::profile::{Auth, Profile, Secret};
use crate::settings::{backend_env, render_settings, seed_claude_json, settings_text};

/// Renders the launch of Claude Code (`claude_args` are the user's extra arguments).
pub fn render_use(
    profile: &Profile,
    host: &Host,
    claude_args: &[String],
) -> Result<LaunchPlan, Error> {
    let mut argv = vec![claude_program(profile, host)];
    let mut plan = render_common(profile, host);
    if plan
        .files
        .iter()
        .any(|f| f.path == StatePaths::of(profile).settings)
    {
        argv.push("--settings".into());
        argv.push(StatePaths::of(profile).settings.display().to_string());
    }
    argv.extend(profile.claude.args.iter().cloned());
    argv.extend(claude_args.iter().cloned());
    plan.argv = argv;
    wrap(profile, host, plan)
}

/// Renders running `command` under the profile's environment and boundary.
pub fn render_run(profile: &Profile, host: &Host, command: &[String]) -> Result<LaunchPlan, Error> {
    let mut plan = render_common(profile, host);
    plan.argv = command.to_vec();
    wrap(profile, host, plan)
}

fn wrap(profile: &Profile, host: &Host, mut plan: LaunchPlan) -> Result<LaunchPlan, Error> {
    if profile.isolation.level == Level::Env {
        return Ok(plan);
    }
    let settings = plan
        .files
        .iter()
        .any(|f| f.path == StatePaths::of(profile).settings);
    let boundary = boundary::build(profile, host, settings)?;
    // Inside a boundary the updater cannot replace the install; it would only report
    // that it failed (the `oauth` profile included).
    plan.env
        .set
        .insert("DISABLE_AUTOUPDATER".into(), "1".into());
    plan.session_dir = Some(boundary.session.clone());
    plan.ide = Some(crate::plan::IdeView {
        real: host.main_claude_dir().join("ide"),
        view: boundary.session.join("ide"),
    });
    let (dirs, files) = boundary::mount_points(&boundary.mounts, host);
    plan.dirs.extend(dirs);
    plan.files.extend(files.into_iter().map(|path| PlannedFile {
        path,
        contents: String::new(),
        mode: 0o600,
        policy: WritePolicy::MountPoint,
    }));
    match profile.isolation.level {
        Level::Sandbox => level::sandbox::wrap(profile, host, boundary, plan),
        _ => level::container::wrap(profile, host, boundary, plan),
    }
}

/// What rendering `profile` needs to know about the machine: its Claude Code, the
/// programs its level runs, the user it names, and which of its optional mount sources
/// exist. Nothing else is looked up on the launch path.
pub fn needs(profile: &Profile, host: &Host) -> Needs {
    let tools: &[Tool] = match profile.isolation.level {
        Level::Env => &[],
        Level::Sandbox if host.uid == 0 => &[Tool::Bwrap, Tool::Socat, Tool::Setpriv],
        Level::Sandbox => &[Tool::Bwrap, Tool::Socat],
        Level::Container => &[Tool::Podman, Tool::Docker, Tool::Runc],
    };
    let mut programs = vec![profile.claude.command.clone()];
    programs.extend(tools.iter().map(|t| t.program().to_owned()));
    let (paths, lists) = boundary::probes(profile, host);
    Needs {
        programs,
        users: profile.isolation.user.iter().cloned().collect(),
        paths,
        lists,
        settings: vec![profile.isolation.config_dir.join("settings.json")],
    }
}

/// Where the profile's Claude Code binary resolves, or its name when not found.
pub fn claude_program(profile: &Profile, host: &Host) -> String {
    host.program(&profile.claude.command)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| profile.claude.command.clone())
}

/// The plan without argv and without the level's wrapping.
fn render_common(profile: &Profile, host: &Host) -> LaunchPlan {
    let paths = StatePaths::of(profile);
    let mut plan = LaunchPlan {
        profile: profile.name.clone(),
        level: profile.isolation.level,
        boundary: None,
        argv: Vec::new(),
        env: render_env(profile, &paths),
        cwd: profile.workspace.path.clone(),
        dirs: Vec::new(),
        files: Vec::new(),
        links: Vec::new(),
        preflight: preflight(profile),
        notes: Vec::new(),
        owner: None,
        session_dir: None,
        ide: None,
        network: None,
    };
    plan.notes.extend(crate::network::note(profile));
    plan.notes.extend(context_note(profile));
    plan.network = crate::network::plan(profile, host);
    if let Some(net) = &plan.network {
        plan.env.set.extend(crate::network::env(net));
    }
    let mut settings = render_settings(profile);
    if let Some(line) = status_line(profile, host) {
        settings.insert("statusLine".into(), line);
    }
    let oauth_plain = profile.is_oauth() && profile.isolation.level == Level::Env;
    if !oauth_plain || settings.len() > 1 {
        plan.dirs.push(paths.root.clone());
        plan.files.push(PlannedFile {
            path: paths.settings.clone(),
            contents: settings_text(&settings),
            mode: 0o600,
            policy: WritePolicy::Replace,
        });
    }
    if !profile.is_oauth() {
        plan.dirs
            .extend([paths.tmp.clone(), paths.anthropic.clone()]);
        plan.dirs.push(profile.isolation.config_dir.clone());
        plan.files.push(PlannedFile {
            path: profile.isolation.config_dir.join(".claude.json"),
            contents: seed_claude_json(profile),
            mode: 0o600,
            policy: WritePolicy::CreateIfMissing,
        });
    }
    plan.links
        .extend(share_links(profile, host, &mut plan.notes));
    plan
}

/// The status line of a local session (`clp:local-glm [B offline] 127.0.0.1:8080
/// glm-flash-q4`): a `printf` that works inside any boundary. None for the `oauth`
/// profile (plain Claude Code), nor when the profile (`claude.settings`) or the profile's
/// config dir (`settings.json`) has a status line of its own.
fn status_line(profile: &Profile, host: &Host) -> Option<serde_json::Value> {
    let config = profile.isolation.config_dir.join("settings.json");
    let own = profile.claude.settings.contains_key("statusLine")
        || host
            .settings_keys
            .get(&config)
            .is_some_and(|k| k.iter().any(|k| k == "statusLine"));
    if profile.is_oauth() || own {
        return None;
    }
    let level = match profile.isolation.level {
        Level::Env => "A",
        Level::Sandbox => "B",
        Level::Container => "C",
    };
    let net = match profile.network.mode {
        crate::model::NetworkMode::Open => String::new(),
        mode => format!(" {}", crate::network::mode_name(mode)),
    };
    let mut text = format!("clp:{} [{level}{net}]", profile.name);
    if let Some(b) = &profile.backend {
        text.push_str(&format!(" {}:{}", b.url.host(), b.url.port()));
    }
    if let Some(m) = &profile.model.default {
        text.push_str(&format!(" {m}"));
    }
    let quoted = shlex::try_quote(&text).ok()?.into_owned();
    Some(serde_json::json!({
        "type": "command",
        "command": format!("printf '%s\n' {quoted}"),
        "padding": 0,
    }))
}

/// The links of the parts of the main install the profile shares: made at level A
/// (where Claude Code runs as the user, so read-only is not enforced), removed at B and
/// C (which mount the part read-only there instead).
fn share_links(profile: &Profile, host: &Host, notes: &mut Vec<String>) -> Vec<PlannedLink> {
    let action = if profile.isolation.level == Level::Env {
        LinkAction::Create
    } else {
        LinkAction::Remove
    };
    let mut links = Vec::new();
    for share in boundary::shares(profile, host) {
        match share {
            boundary::Share::Mounted { source, dest, .. } => links.push(PlannedLink {
                link: dest,
                target: source,
                action,
            }),
            boundary::Share::Skipped(why) => notes.push(why),
        }
    }
    if action == LinkAction::Create && !links.is_empty() {
        notes.push(
            "the shared parts of `~/.claude` are linked: at level A nothing stops Claude Code \
             writing to them (levels B and C mount them read-only)"
                .into(),
        );
    }
    links
}

fn preflight(profile: &Profile) -> Vec<Preflight> {
    let mut checks = Vec::new();
    if let Some(backend) = profile.backend.as_ref().filter(|b| b.check) {
        if let Some(switch) = &backend.switch {
            checks.push(Preflight::Switch {
                switch: switch.clone(),
            });
        }
        checks.push(Preflight::Health {
            url: backend.url.join(&backend.health),
            wait: backend.wait,
        });
        let models = backend
            .models
            .clone()
            .or_else(|| backend.switch.as_ref().map(|_| "/v1/models".to_owned()));
        if let (Some(models), Some(model)) = (&models, &profile.model.default) {
            checks.push(Preflight::Model {
                url: backend.url.join(models),
                model: model.clone(),
                required: backend.switch.is_some(),
            });
        }
        checks.push(Preflight::Context {
            base: backend.url.as_str().to_owned(),
            models: backend.url.join(models.as_deref().unwrap_or("/v1/models")),
            model: profile.model.default.clone(),
            declared: profile.model.context,
        });
    }
    checks
}

/// What the session's context will be, when it is worth saying.
fn context_note(profile: &Profile) -> Option<String> {
    match profile.model.context {
        Some(c) => crate::context::note(&crate::context::budget(c)),
        None if profile.backend.as_ref().is_some_and(|b| b.check) && !profile.is_oauth() => Some(
            "the session's context (`model.context`) is asked from the server at launch \
                 (llama-server's `n_ctx`)"
                .into(),
        ),
        None => None,
    }
}

/// The child's environment.
fn render_env(profile: &Profile, paths: &StatePaths) -> EnvPlan {
    let mut env = EnvPlan {
        inherit: true,
        unset: Vec::new(),
        pass: Vec::new(),
        set: BTreeMap::new(),
        secrets: BTreeMap::new(),
    };
    if profile.is_oauth() {
        env.unset = SCRUBBED_OAUTH.iter().map(|s| s.to_string()).collect();
        if !profile.isolation.main_config {
            env.set.insert(
                "CLAUDE_CONFIG_DIR".into(),
                profile.isolation.config_dir.display().to_string(),
            );
        }
    } else {
        env.unset = SCRUBBED.iter().map(|s| s.to_string()).collect();
        env.set.extend(backend_env(profile));
        let set = |env: &mut EnvPlan, k: &str, v: &Path| {
            env.set.insert(k.into(), v.display().to_string());
        };
        set(&mut env, "CLAUDE_CONFIG_DIR", &profile.isolation.config_dir);
        set(&mut env, "TMPDIR", &paths.tmp);
        set(&mut env, "ANTHROPIC_CONFIG_DIR", &paths.anthropic);
        // Its "Resume this session with:" line names `clp --resume <id>`, which finds the
        // profile whose store holds the session (plain `claude --resume` would not).
        env.set
            .insert("CLAUDE_CODE_RESUME_HINT_COMMAND".into(), "clp".into());
        // Claude Code's auto-updater would reinstall the normal install's npm package
        // (seen: `npm install -g @anthropic-ai/claude-code@NEXT` as the user).
        env.set.insert("DISABLE_AUTOUPDATER".into(), "1".into());
        match &profile.auth {
            Auth::AuthToken {
                from: Secret::Literal(t),
            } => {
                env.set.insert("ANTHROPIC_AUTH_TOKEN".into(), t.clone());
            }
            Auth::AuthToken { from } => {
                env.secrets
                    .insert("ANTHROPIC_AUTH_TOKEN".into(), from.clone());
            }
            Auth::ApiKey {
                from: from @ Secret::Env(_),
            } => {
                env.secrets.insert("ANTHROPIC_API_KEY".into(), from.clone());
            }
            Auth::ApiKey { .. } | Auth::Oauth => {}
        }
    }
    for (k, v) in &profile.env {
        env.set.insert(k.clone(), v.clone());
    }
    env
}
