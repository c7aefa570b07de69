//! What the commands over many profiles compute: `clp list` rows, `clp check` verdicts
//! and `clp shell-init` aliases, never failing on one broken file.

use std::path::Path;

use serde::Serialize;

use crate::diag::{Diagnostic, Diagnostics};
use crate::error::LoadError;
use crate::host::Host;
use crate::merge::Override;
use crate::model::Level;
use crate::profile::resolve;
use crate::source::{read_file, Catalog, Origin, Source};

/// One profile as `clp list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// Profile name.
    pub name: String,
    /// Its isolation level, when it loads.
    pub level: Option<&'static str>,
    /// Its backend URL, when it has one.
    pub backend: Option<String>,
    /// The file that defines it.
    pub source: String,
    /// What it is for.
    pub description: String,
    /// Whether it loads without problems.
    pub valid: bool,
    /// Its shell alias, when it declares one.
    #[serde(skip)]
    pub alias: Option<String>,
}

/// Every profile, and the files that could not be read.
pub fn rows(catalog: &Catalog) -> (Vec<Row>, Vec<Diagnostic>) {
    let listing = catalog.list();
    let rows = listing
        .entries
        .iter()
        .map(|entry| {
            let name = entry.source.name.clone();
            let loaded = catalog.load_source(entry.source.clone(), &[]).ok();
            let raw = loaded.as_ref().map(|l| &l.raw);
            Row {
                level: raw.map(|r| {
                    r.isolation
                        .as_ref()
                        .and_then(|i| i.level)
                        .unwrap_or(Level::Env)
                        .as_str()
                }),
                backend: raw
                    .and_then(|r| r.backend.as_ref())
                    .and_then(|b| b.url.as_ref())
                    .map(|u| u.to_string()),
                description: raw.and_then(|r| r.description.clone()).unwrap_or_default(),
                alias: raw.and_then(|r| r.alias.as_ref()).map(|a| a.to_string()),
                valid: loaded.is_some(),
                source: entry.source.label(),
                name,
            }
        })
        .collect();
    (rows, listing.problems)
}

/// Shell syntax for `clp shell-init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    /// bash.
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// One alias line per profile that declares one: `alias NAME='clp use PROFILE --'`.
/// Names and aliases are validated, but the target is quoted anyway: this text gets
/// `eval`ed.
pub fn shell_aliases(rows: &[Row], shell: Shell) -> Vec<String> {
    rows.iter()
        .filter(|r| r.valid)
        .filter_map(|r| {
            let alias = r.alias.as_ref()?;
            let target = format!("clp use {} --", r.name);
            let quoted = shlex::try_quote(&target).ok()?;
            Some(match shell {
                Shell::Bash | Shell::Zsh => format!("alias {alias}={quoted}"),
                Shell::Fish => format!("alias {alias} {quoted}"),
            })
        })
        .collect()
}

/// The rows as `clp list` prints them: NAME, LEVEL, BACKEND, SOURCE in aligned columns.
pub fn table(rows: &[Row]) -> String {
    let letter = |level: &str| match level {
        "sandbox" => 'B',
        "container" => 'C',
        _ => 'A',
    };
    let mut cells: Vec<[String; 4]> =
        vec![["NAME", "LEVEL", "BACKEND", "SOURCE"].map(String::from)];
    cells.extend(rows.iter().map(|r| {
        [
            r.name.clone(),
            match r.level {
                Some(l) => format!("{} {l}", letter(l)),
                None => "invalid".into(),
            },
            r.backend.clone().unwrap_or_else(|| "anthropic".into()),
            r.source.clone(),
        ]
    }));
    let mut widths = [0usize; 4];
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// What `clp` alone prints: each profile and what it is for, then the next steps.
pub fn overview(rows: &[Row]) -> String {
    let width = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::from("Profiles (`clp list` shows their level, backend and file):\n");
    for r in rows {
        let about = match (r.valid, r.description.as_str()) {
            (false, _) => format!("invalid: `clp check {}` says why", r.name),
            (true, "") => r.source.clone(),
            (true, d) => d.to_owned(),
        };
        out.push_str(&format!("  {:<width$}  {about}\n", r.name));
    }
    out.push_str(
        "\nNext:\n  \
         clp use PROFILE               start Claude Code under a profile\n  \
         clp show PROFILE              what it sets, and where each value comes from\n  \
         clp init NEW --from PROFILE   a profile of your own, starting from one of these\n  \
         clp --help                    every command\n",
    );
    out
}

/// One profile file as `clp check` judged it; `clp check --json` prints a list of them
/// as `{"name", "source", "problems": [diagnostic...]}`.
#[derive(Debug, Serialize)]
pub struct Checked {
    /// What the user named (a profile name, a file), or the profile's name.
    pub name: String,
    /// The file, as diagnostics name it (empty when it could not be read).
    #[serde(rename = "source")]
    pub label: String,
    /// Every problem found; empty when the profile is valid.
    pub problems: Diagnostics,
}

/// Checks the named profiles or files (every file of every profile when `targets` is
/// empty, shadowed ones included), with `overrides` on top, against `host`. One file's
/// problem never stops the others from being checked.
pub fn check(
    catalog: &Catalog,
    targets: &[String],
    overrides: &[Override],
    host: &Host,
) -> Result<Vec<Checked>, LoadError> {
    let mut sources: Vec<Result<Source, (String, Diagnostics)>> = Vec::new();
    if targets.is_empty() {
        let listing = catalog.list();
        for e in listing.entries {
            sources.extend(e.shadows.into_iter().map(Ok));
            sources.push(Ok(e.source));
        }
        for p in listing.problems {
            sources.push(Err((p.origin.clone(), Diagnostics(vec![p]))));
        }
    }
    for t in targets {
        let path = Path::new(t);
        let found = if t.ends_with(".toml") || t.contains('/') || path.is_file() {
            read_file(path, Origin::File)
        } else {
            catalog.find(t)
        };
        sources.push(match found.map_err(LoadError::into_diagnostics) {
            Ok(source) => Ok(source),
            Err(Ok(d)) => Err((t.clone(), d)),
            Err(Err(other)) => return Err(other),
        });
    }
    let mut out = Vec::new();
    for source in sources {
        let source = match source {
            Ok(s) => s,
            Err((name, problems)) => {
                out.push(Checked {
                    name,
                    label: String::new(),
                    problems,
                });
                continue;
            }
        };
        let (name, label) = (source.name.clone(), source.label());
        let problems = match catalog.load_source(source, overrides) {
            Ok(loaded) => resolve(&loaded, host).err().unwrap_or_default(),
            Err(e) => e.into_diagnostics()?,
        };
        out.push(Checked {
            name,
            label,
            problems,
        });
    }
    Ok(out)
}
