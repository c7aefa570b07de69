//! The plan as text and files: `clp render`, `--dry-run` and the snapshot tests print
//! these. `--portable` renders as an ordinary user and replaces what differs between
//! machines with placeholders.

use std::path::{Path, PathBuf};

use crate::host::Host;
use crate::plan::{
    EnvPlan, LaunchPlan, LinkAction, PlannedFile, PlannedLink, Preflight, WritePolicy,
    SETTINGS_FILE,
};
use crate::policy::HIDDEN;
use crate::profile::{Secret, Switch};

/// The uid and gid a portable render made by root stands in for the user with; the
/// render shows `{uid}` and `{gid}` in their place.
const PORTABLE_ID: u32 = 1000;

/// The host a portable render is made against: this machine as an ordinary user sees it.
///
/// Run by root (a dotfiles repository's CI in a container), a launch would take root's
/// own path (a staging sandbox, `setpriv`, a rootful engine's flags), or refuse when no
/// unprivileged user is at hand. A portable render describes the profile, not who renders
/// it, so root renders with an unprivileged stand-in identity and gets, byte for byte,
/// what a user gets.
pub fn portable_host(host: &Host) -> Host {
    let mut host = host.clone();
    if host.uid == 0 {
        host.uid = PORTABLE_ID;
        host.gid = PORTABLE_ID;
        host.cwd_owner = (PORTABLE_ID, PORTABLE_ID);
        // Where a user without `$XDG_RUNTIME_DIR` keeps it; shown as `{runtime}`.
        host.runtime_dir = PathBuf::from(format!("/dev/shm/clp-{PORTABLE_ID}"));
    }
    host
}

/// What is this machine's and this user's in a plan, and the placeholder for each.
struct Placeholders {
    /// (text, placeholder), longest text first, so `/home/u/.local/state/clp` wins over
    /// `/home/u`.
    pairs: Vec<(String, String)>,
    uid: String,
    gid: String,
    user: String,
}

impl Placeholders {
    fn new(plan: &LaunchPlan, host: &Host) -> Placeholders {
        let mut pairs: Vec<(String, String)> = host
            .programs
            .iter()
            .map(|(name, path)| (path.display().to_string(), format!("{{bin:{name}}}")))
            .collect();
        pairs.push((plan.cwd.display().to_string(), "{workspace}".into()));
        pairs.push((host.state_dir.display().to_string(), "{state}".into()));
        // `/run/user/<uid>/clp` or `/run/clp`: where the session dirs go, per machine.
        pairs.push((host.runtime_dir.display().to_string(), "{runtime}".into()));
        pairs.push((host.home.display().to_string(), "{home}".into()));
        pairs.retain(|(from, _)| !from.is_empty() && from != "/");
        pairs.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        Placeholders {
            pairs,
            uid: host.uid.to_string(),
            gid: host.gid.to_string(),
            user: host.user.clone(),
        }
    }

    /// Paths in any text.
    fn text(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for (from, to) in &self.pairs {
            out = out.replace(from.as_str(), to);
        }
        out
    }

    fn path(&self, p: &Path) -> PathBuf {
        PathBuf::from(self.text(&p.display().to_string()))
    }

    /// An argument: its paths, and the ids and user name it is or carries.
    fn arg(&self, a: &str) -> String {
        let s = self.text(a);
        if s == self.uid {
            "{uid}".into()
        } else if s == self.gid {
            "{gid}".into()
        } else if s == self.user {
            "{user}".into()
        } else {
            s.replace(&format!("{}:{}", self.uid, self.gid), "{uid}:{gid}")
                .replace(&format!("--uid={}", self.uid), "--uid={uid}")
        }
    }
}

/// Replaces machine- and user-specific parts of a plan with placeholders, so renders
/// compare equal across machines: `{home}`, `{state}`, `{runtime}`, `{workspace}`,
/// `{uid}`, `{gid}`, `{user}`, and `{bin:NAME}` for resolved program paths.
pub fn portable(plan: &LaunchPlan, host: &Host) -> LaunchPlan {
    let ph = Placeholders::new(plan, host);
    let path = |p: &PathBuf| ph.path(p);
    LaunchPlan {
        profile: plan.profile.clone(),
        level: plan.level,
        // The argv says what the boundary is; the mounts' numeric user would differ.
        boundary: None,
        // The hidden directories are policy, not this machine: `--tmpfs /root` stays even
        // when root's home is `/root` (its home is mounted on top).
        argv: plan
            .argv
            .iter()
            .enumerate()
            .map(
                |(i, a)| match i.checked_sub(1).map(|p| plan.argv[p].as_str()) {
                    Some("--tmpfs") if HIDDEN.contains(&a.as_str()) => a.clone(),
                    _ => ph.arg(a),
                },
            )
            .collect(),
        env: EnvPlan {
            set: plan
                .env
                .set
                .iter()
                .map(|(k, v)| (k.clone(), ph.text(v)))
                .collect(),
            ..plan.env.clone()
        },
        cwd: path(&plan.cwd),
        dirs: plan.dirs.iter().map(path).collect(),
        files: plan
            .files
            .iter()
            .map(|f| PlannedFile {
                path: path(&f.path),
                contents: ph.text(&f.contents),
                ..f.clone()
            })
            .collect(),
        links: plan
            .links
            .iter()
            .map(|l| PlannedLink {
                link: path(&l.link),
                target: path(&l.target),
                action: l.action,
            })
            .collect(),
        preflight: plan.preflight.clone(),
        notes: plan.notes.iter().map(|n| ph.text(n)).collect(),
        // Numeric ids differ between machines; the argv carries `{uid}` instead.
        owner: None,
        session_dir: plan.session_dir.as_ref().map(path),
        ide: plan.ide.clone().map(|mut v| {
            v.real = path(&v.real);
            v.view = path(&v.view);
            v
        }),
        network: plan.network.clone().map(|mut n| {
            n.log = path(&n.log);
            n.helper_prefix = n.helper_prefix.iter().map(|a| ph.text(a)).collect();
            n
        }),
    }
}

/// The plan as the files `clp render --out` writes: `settings.json`, `env`, `argv`.
pub fn render_files(plan: &LaunchPlan) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(settings) = plan
        .files
        .iter()
        .find(|f| f.path.file_name().is_some_and(|n| n == SETTINGS_FILE))
    {
        out.push((SETTINGS_FILE.to_owned(), settings.contents.clone()));
    }
    out.push(("env".to_owned(), env_text(&plan.env)));
    let mut argv = plan.argv.join("\n");
    argv.push('\n');
    out.push(("argv".to_owned(), argv));
    out
}

/// The environment as sorted `KEY=VALUE` lines, after comments saying what is inherited.
pub fn env_text(env: &EnvPlan) -> String {
    let mut text = String::new();
    if env.inherit {
        text.push_str("# inherits the parent environment, except:\n");
        for u in &env.unset {
            text.push_str(&format!("# unset {u}\n"));
        }
    } else {
        text.push_str("# starts empty; copied from the parent when set:\n");
        for p in &env.pass {
            text.push_str(&format!("# pass {p}\n"));
        }
    }
    let mut lines: Vec<String> = env
        .set
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(env.secrets.iter().map(|(k, s)| {
            format!(
                "{k}=<{}>",
                match s {
                    Secret::Env(v) => format!("from ${v}"),
                    Secret::Command(c) => format!("from `{c}`"),
                    Secret::Literal(_) => "literal".into(),
                }
            )
        }))
        .collect();
    lines.sort();
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    text
}

/// The plan as one text, every part under a `==== name ====` header.
pub fn plan_text(plan: &LaunchPlan) -> String {
    let mut text = String::new();
    for (name, body) in render_files(plan) {
        text.push_str(&format!("==== {name} ====\n{body}"));
    }
    text.push_str(&format!("==== cwd ====\n{}\n", plan.cwd.display()));
    let mut files = String::new();
    for d in &plan.dirs {
        files.push_str(&format!("dir  {}\n", d.display()));
    }
    for f in &plan.files {
        let how = match f.policy {
            WritePolicy::Replace => "write",
            WritePolicy::CreateIfMissing => "seed",
            WritePolicy::MountPoint => "point",
        };
        files.push_str(&format!("{how} {} ({:o})\n", f.path.display(), f.mode));
    }
    for l in &plan.links {
        let how = match l.action {
            LinkAction::Create => "link",
            LinkAction::Remove => "unlink",
        };
        files.push_str(&format!(
            "{how} {} -> {}\n",
            l.link.display(),
            l.target.display()
        ));
    }
    if let Some(dir) = &plan.session_dir {
        files.push_str(&format!("session {} (removed at exit)\n", dir.display()));
    }
    if let Some(ide) = &plan.ide {
        files.push_str(&format!(
            "mirror {} -> {} (kept current)\n",
            ide.real.display(),
            ide.view.display()
        ));
    }
    text.push_str(&format!("==== files ====\n{files}"));
    if !plan.preflight.is_empty() {
        text.push_str("==== preflight ====\n");
        for p in &plan.preflight {
            text.push_str(&match p {
                Preflight::Health { url, wait } => format!("health GET {url} (wait {wait}s)\n"),
                Preflight::Switch { switch } => match switch {
                    Switch::Command(c) => format!("switch `{c}`\n"),
                    Switch::Request { method, url, body } => format!(
                        "switch {} {url}{}\n",
                        method.as_str(),
                        body.as_ref().map(|b| format!(" {b}")).unwrap_or_default()
                    ),
                },
                Preflight::Model {
                    url,
                    model,
                    required,
                } => format!(
                    "model  GET {url} lists `{model}`{}\n",
                    if *required { " (wait for it)" } else { "" }
                ),
                Preflight::Program { name, install } => {
                    format!("needs  {name} (install: {install})\n")
                }
                Preflight::Context { base, declared, .. } => match declared {
                    Some(d) => format!("context GET {base}/props (warn if it has less than {d})\n"),
                    None => format!("context GET {base}/props (the session's context)\n"),
                },
            });
        }
    }
    if !plan.notes.is_empty() {
        text.push_str("==== notes ====\n");
        for n in &plan.notes {
            text.push_str(&format!("{n}\n"));
        }
    }
    text
}
