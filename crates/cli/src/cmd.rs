//! The commands that read profiles: `list`, `show`, `check`, `schema`, `init`,
//! `shell-init`, `image`, `completions`; and the context they share.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clp_core::explain::{explain, toml_value};
use clp_core::host::{detect, Host, KNOWN_PROGRAMS};
use clp_core::load::{read_file, Origin, Source};
use clp_core::model::Level;
use clp_core::{resolve, Catalog, Diagnostics, Loaded, Override, Profile, SearchPath};
use serde_json::json;

use crate::args::{GlobalArgs, ShellKind};
use crate::failure::Failure;

/// The host, the profiles that can be named and the `--set` overrides.
pub struct Ctx {
    pub host: Host,
    pub catalog: Catalog,
    pub overrides: Vec<Override>,
}

impl Ctx {
    pub fn new(g: &GlobalArgs) -> Result<Ctx, Failure> {
        let host = detect::detect(KNOWN_PROGRAMS).map_err(|e| Failure::Os(e.to_string()))?;
        let extra = match &g.profiles_dir {
            Some(dir) if !dir.is_dir() => {
                return Err(Failure::user(
                    format!("`--profiles-dir {}` is not a directory", dir.display()),
                    None,
                ))
            }
            other => other.clone(),
        };
        let catalog = Catalog::discover(&SearchPath {
            user: Some(host.profiles_dir.clone()),
            extra,
        })?;
        let overrides = g
            .set
            .iter()
            .map(|s| Override::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Failure::user(format!("--set: {e}"), None))?;
        Ok(Ctx {
            host,
            catalog,
            overrides,
        })
    }

    /// Loads and resolves `name`, then looks up what rendering it needs from the machine.
    pub fn profile(&mut self, name: &str) -> Result<(Loaded, Profile), Failure> {
        let loaded = self.catalog.load(name, &self.overrides)?;
        self.finish(loaded)
    }

    pub fn finish(&mut self, loaded: Loaded) -> Result<(Loaded, Profile), Failure> {
        let profile = resolve(&loaded, &self.host)?;
        detect::locate(&mut self.host, &profile.claude.command);
        if let Some(user) = &profile.isolation.user {
            detect::locate_user(&mut self.host, user);
        }
        let ws = &profile.workspace.path;
        detect::probe_paths(
            &mut self.host,
            &[ws.join(".git/hooks"), ws.join(".git/config")],
        );
        Ok((loaded, profile))
    }
}

pub fn list(g: &GlobalArgs, json_out: bool) -> Result<ExitCode, Failure> {
    let ctx = Ctx::new(g)?;
    let mut rows = Vec::new();
    for entry in ctx.catalog.entries() {
        let name = &entry.source.name;
        let (level, backend, description, valid) = match ctx.catalog.load(name, &[]) {
            Ok(l) => {
                let level = l
                    .raw
                    .isolation
                    .as_ref()
                    .and_then(|i| i.level)
                    .unwrap_or(Level::Env);
                let backend = l.raw.backend.as_ref().and_then(|b| b.url.clone());
                (
                    Some(level),
                    backend,
                    l.raw.description.clone().unwrap_or_default(),
                    true,
                )
            }
            Err(_) => (None, None, String::new(), false),
        };
        rows.push((
            name.clone(),
            level,
            backend,
            entry.source.label(),
            description,
            valid,
        ));
    }
    if json_out {
        let out: Vec<_> = rows
            .iter()
            .map(|(name, level, backend, source, description, valid)| {
                json!({
                    "name": name,
                    "level": level.map(|l| l.as_str()),
                    "backend": backend,
                    "source": source,
                    "description": description,
                    "valid": valid,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<[String; 4]> = rows
        .iter()
        .map(|(name, level, backend, source, _, valid)| {
            [
                name.clone(),
                match level {
                    Some(l) => format!("{} {}", l.letter(), l.as_str()),
                    None if !valid => "invalid".into(),
                    None => "-".into(),
                },
                backend.clone().unwrap_or_else(|| "anthropic".into()),
                source.clone(),
            ]
        })
        .collect();
    print_table(&["NAME", "LEVEL", "BACKEND", "SOURCE"], &table);
    if rows.iter().any(|r| !r.5) {
        eprintln!("some profiles are invalid: `clp check` shows why");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

pub fn show(g: &GlobalArgs, name: &str, json_out: bool) -> Result<ExitCode, Failure> {
    let mut ctx = Ctx::new(g)?;
    let (loaded, profile) = ctx.profile(name)?;
    let rows = explain(&profile, &loaded);
    let chain: Vec<String> = loaded
        .chain
        .iter()
        .rev()
        .map(|l| l.source.name.clone())
        .collect();
    let plan = clp_core::render::render_use(&profile, &ctx.host, &[]);
    if json_out {
        let out = json!({
            "name": profile.name,
            "source": loaded.chain.last().map(|l| l.source.label()),
            "chain": chain,
            "values": rows,
            "notes": plan.as_ref().map(|p| p.notes.clone()).unwrap_or_default(),
            "launch-error": plan.as_ref().err().map(|e| e.to_string()),
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
        return Ok(ExitCode::SUCCESS);
    }
    println!("profile  {}", profile.name);
    if let Some(l) = loaded.chain.last() {
        println!("file     {}", l.source.label());
    }
    if chain.len() > 1 {
        println!("extends  {}", chain.join(" -> "));
    }
    let level = profile.isolation.level;
    println!("level    {} ({})", level.letter(), level.as_str());
    println!();
    let cells: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                format!("{} = {}", r.key, toml_value(&r.value)),
                r.from.to_string(),
            )
        })
        .collect();
    let width = cells.iter().map(|c| c.0.chars().count()).max().unwrap_or(0);
    for (kv, from) in cells {
        println!("{kv:<width$}  # {from}");
    }
    match plan {
        Ok(plan) if !plan.notes.is_empty() => {
            println!();
            for n in plan.notes {
                println!("note: {n}");
            }
        }
        Ok(_) => {}
        Err(e) => {
            println!();
            println!("cannot launch here: {}", e.message);
            if let Some(h) = e.hint {
                println!("  hint: {h}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn check(g: &GlobalArgs, targets: &[String]) -> Result<ExitCode, Failure> {
    let mut ctx = Ctx::new(g)?;
    let mut sources: Vec<Source> = Vec::new();
    let mut problems = Diagnostics::default();
    if targets.is_empty() {
        for e in ctx.catalog.entries() {
            sources.extend(e.shadows.iter().cloned());
            sources.push(e.source.clone());
        }
    } else {
        for t in targets {
            let path = Path::new(t);
            if t.ends_with(".toml") || t.contains('/') || path.is_file() {
                match read_file(path, Origin::File) {
                    Ok(source) => sources.push(source),
                    // An unreadable file is one more problem; the other targets still count.
                    Err(clp_core::LoadError::Io { path, source }) => {
                        println!("invalid  {t}");
                        problems.0.push(clp_core::Diagnostic {
                            origin: path.display().to_string(),
                            ..clp_core::Diagnostic::new(
                                "",
                                format!("cannot read the file: {source}"),
                            )
                        });
                    }
                    Err(other) => return Err(other.into()),
                }
            } else {
                sources.push(ctx.catalog.get(t)?.clone());
            }
        }
    }
    let mut ok = 0;
    for source in sources {
        let label = source.label();
        let name = source.name.clone();
        let result = ctx
            .catalog
            .load_source(source, &ctx.overrides)
            .map_err(Failure::from)
            .and_then(|loaded| ctx.finish(loaded));
        match result {
            Ok(_) => {
                ok += 1;
                println!("ok       {name}  ({label})");
            }
            Err(Failure::Profile(d)) => {
                println!("invalid  {name}  ({label})");
                problems.0.extend(d.0);
            }
            Err(other) => return Err(other),
        }
    }
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    problems.0.dedup();
    let count = problems.0.len();
    eprintln!("{}", Failure::Profile(problems));
    eprintln!(
        "{count} problem{} found; {ok} profile{} valid",
        if count == 1 { "" } else { "s" },
        if ok == 1 { "" } else { "s" }
    );
    Ok(ExitCode::from(2))
}

pub fn schema() -> Result<ExitCode, Failure> {
    print!("{}", clp_core::schema::profile_schema_text());
    Ok(ExitCode::SUCCESS)
}

/// The name of the schema file `clp init` keeps beside the user's profiles.
const USER_SCHEMA_FILE: &str = "profile.schema.json";

pub fn init(g: &GlobalArgs, name: Option<&str>, from: &str) -> Result<ExitCode, Failure> {
    let ctx = Ctx::new(g)?;
    let Some((_, _, template)) = clp_core::builtin::BUILTINS
        .iter()
        .find(|(n, _, _)| *n == from)
    else {
        let names: Vec<&str> = clp_core::builtin::BUILTINS.iter().map(|b| b.0).collect();
        return Err(Failure::user(
            format!("no built-in profile named `{from}`"),
            Some(match clp_core::validate::did_you_mean(from, &names) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("built-ins: {}", names.join(", ")),
            }),
        ));
    };
    let name = name.unwrap_or(from);
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.starts_with('-');
    if !valid_name {
        return Err(Failure::user(
            format!("`{name}` is not a profile name"),
            Some("use letters, digits, `-` and `_`".into()),
        ));
    }
    let dir = g
        .profiles_dir
        .clone()
        .unwrap_or_else(|| ctx.host.profiles_dir.clone());
    let path: PathBuf = dir.join(format!("{name}.toml"));
    if path.exists() {
        return Err(Failure::user(
            format!("`{}` exists already", path.display()),
            Some("clp init never overwrites a profile: edit it, or pick another name".into()),
        ));
    }
    let mut text = String::new();
    text.push_str(&format!("#:schema ./{USER_SCHEMA_FILE}\n"));
    text.push_str(&format!("# Created by `clp init {name} --from {from}`.\n"));
    for line in template.lines().filter(|l| !l.starts_with("#:schema")) {
        text.push_str(line);
        text.push('\n');
    }
    // Check the new profile, inheritance included, before writing it.
    let source = Source {
        name: name.to_owned(),
        origin: Origin::User,
        path: path.clone(),
        text: text.clone(),
    };
    let mut catalog = ctx.catalog.clone();
    catalog.insert(source.clone());
    catalog.load_source(source, &[])?;
    clp_core::apply::write_atomic(
        &dir.join(USER_SCHEMA_FILE),
        clp_core::schema::profile_schema_text().as_bytes(),
        0o644,
    )?;
    if !clp_core::apply::create_new(&path, text.as_bytes(), 0o644)? {
        return Err(Failure::user(
            format!("`{}` exists already", path.display()),
            None,
        ));
    }
    println!("{}", path.display());
    eprintln!("created `{}`; try `clp show {name}`", path.display());
    Ok(ExitCode::SUCCESS)
}

pub fn shell_init(g: &GlobalArgs, shell: ShellKind) -> Result<ExitCode, Failure> {
    let ctx = Ctx::new(g)?;
    for entry in ctx.catalog.entries() {
        let Ok(loaded) = ctx.catalog.load(&entry.source.name, &[]) else {
            continue;
        };
        let Some(alias) = loaded.raw.alias.as_deref() else {
            continue;
        };
        // Names and aliases are validated, but quote anyway: this text gets `eval`ed.
        let target = format!("clp use {} --", entry.source.name);
        let quoted = shlex::try_quote(&target).map_err(|e| Failure::Os(e.to_string()))?;
        match shell {
            ShellKind::Bash | ShellKind::Zsh => println!("alias {alias}={quoted}"),
            ShellKind::Fish => println!("alias {alias} {quoted}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn image(g: &GlobalArgs, name: &str) -> Result<ExitCode, Failure> {
    let mut ctx = Ctx::new(g)?;
    let (_, profile) = ctx.profile(name)?;
    let engine = match clp_core::container::engine(&profile, &ctx.host) {
        clp_core::model::Engine::Docker => "docker",
        _ => "podman",
    };
    print!("{}", clp_core::container::containerfile(&profile));
    eprintln!(
        "build it with:\n  clp image {name} | {engine} build -t {} -f - .",
        profile.container.image
    );
    Ok(ExitCode::SUCCESS)
}

pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode, Failure> {
    use clap::CommandFactory;
    let mut cmd = crate::args::Cli::command();
    clap_complete::generate(shell, &mut cmd, "clp", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
