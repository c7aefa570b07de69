//! Where profiles come from: the built-ins compiled into the binary, the user's profile
//! dir and `--profiles-dir`. Reads profile files and nothing else.
//!
//! A launch reads only what it names: [`Catalog::find`] looks for `<name>.toml` in each
//! directory (highest precedence first) and falls back to the built-in, so a thousand
//! profiles in the directory cost nothing. Listing ([`Catalog::list`]) reads everything,
//! and a file that cannot be read is one more problem to report, never a reason for an
//! unrelated profile to fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::builtin::BUILTINS;
use crate::diag::Diagnostic;
use crate::error::LoadError;
use crate::keypath::did_you_mean;
use crate::model::profile_name_problem;

/// Where a profile file comes from, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// Shipped in `profiles/` and compiled into the binary.
    BuiltIn,
    /// The user's profile dir.
    User,
    /// A `--profiles-dir` given on the command line.
    Dir,
    /// A file named on the command line (`clp check FILE`), or one made in memory.
    File,
}

/// One profile file.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    /// Profile name: the file stem.
    pub name: String,
    /// Where it comes from.
    pub origin: Origin,
    /// The file on disk; for built-ins, the path in the repository (`profiles/NAME.toml`).
    pub path: PathBuf,
    /// The file's text.
    #[serde(skip)]
    pub text: String,
}

impl Source {
    /// How diagnostics and `clp show` name the file.
    pub fn label(&self) -> String {
        match self.origin {
            Origin::BuiltIn => format!("built-in {}", self.path.display()),
            _ => self.path.display().to_string(),
        }
    }

    /// The directory relative paths in the file resolve against (none for built-ins).
    pub fn dir(&self) -> Option<&Path> {
        match self.origin {
            Origin::BuiltIn => None,
            _ => self.path.parent(),
        }
    }

    /// The built-in profile `name`, if there is one.
    pub fn builtin(name: &str) -> Option<Source> {
        BUILTINS
            .iter()
            .find(|b| b.0 == name)
            .map(|(n, path, text)| Source {
                name: (*n).to_owned(),
                origin: Origin::BuiltIn,
                path: PathBuf::from(path),
                text: (*text).to_owned(),
            })
    }
}

/// The directories profiles are searched in, besides the built-ins.
#[derive(Debug, Clone, Default)]
pub struct SearchPath {
    /// The user's profile dir (it need not exist).
    pub user: Option<PathBuf>,
    /// `--profiles-dir`, searched before the user dir.
    pub extra: Option<PathBuf>,
}

/// The profiles that can be named: the search path, plus files made in memory (by
/// `clp init` before it writes one, or by tests), which win over everything.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    search: SearchPath,
    memory: BTreeMap<String, Source>,
}

/// A named profile and the lower-precedence files it shadows.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The file that defines the name.
    pub source: Source,
    /// Files of the same name it replaces, lowest first.
    pub shadows: Vec<Source>,
}

/// Every profile found, and the files that could not be read.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// By name.
    pub entries: Vec<Entry>,
    /// One per unreadable file or directory, located at the file.
    pub problems: Vec<Diagnostic>,
}

impl Catalog {
    /// A catalog over `search`; reads nothing yet.
    pub fn new(search: SearchPath) -> Catalog {
        Catalog {
            search,
            memory: BTreeMap::new(),
        }
    }

    /// Adds a file made in memory; it replaces any file of the same name.
    pub fn insert(&mut self, source: Source) {
        self.memory.insert(source.name.clone(), source);
    }

    /// The directories, highest precedence first.
    fn dirs(&self) -> impl Iterator<Item = (&Path, Origin)> {
        [
            (self.search.extra.as_deref(), Origin::Dir),
            (self.search.user.as_deref(), Origin::User),
        ]
        .into_iter()
        .filter_map(|(d, o)| Some((d?, o)))
    }

    /// The file that defines `name`: reads that one file and nothing else.
    pub fn find(&self, name: &str) -> Result<Source, LoadError> {
        if let Some(s) = self.memory.get(name) {
            return Ok(s.clone());
        }
        if profile_name_problem(name).is_none() {
            for (dir, origin) in self.dirs() {
                let path = dir.join(format!("{name}.toml"));
                match path.symlink_metadata() {
                    Ok(_) => return read_file(&path, origin),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(LoadError::Io { path, source: e }),
                }
            }
            if let Some(s) = Source::builtin(name) {
                return Ok(s);
            }
        }
        Err(self.not_found(name))
    }

    fn not_found(&self, name: &str) -> LoadError {
        let known = self.names();
        LoadError::NotFound {
            suggestion: did_you_mean(name, &known).map(str::to_owned),
            name: name.to_owned(),
            known,
        }
    }

    /// Every profile name, from the directory listings (no file is read).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = BUILTINS.iter().map(|b| b.0.to_owned()).collect();
        names.extend(self.memory.keys().cloned());
        for (dir, _) in self.dirs() {
            names.extend(
                toml_files(dir)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| stem(&p))
                    .filter(|n| profile_name_problem(n).is_none()),
            );
        }
        names.sort();
        names.dedup();
        names
    }

    /// Every profile, reading every file; unreadable files become problems.
    pub fn list(&self) -> Listing {
        let mut by_name: BTreeMap<String, Entry> = BTreeMap::new();
        let mut add = |source: Source| match by_name.get_mut(&source.name) {
            Some(entry) => {
                let old = std::mem::replace(&mut entry.source, source);
                entry.shadows.push(old);
            }
            None => {
                by_name.insert(
                    source.name.clone(),
                    Entry {
                        source,
                        shadows: Vec::new(),
                    },
                );
            }
        };
        for name in BUILTINS.iter().map(|b| b.0) {
            add(Source::builtin(name).expect("a built-in"));
        }
        let mut problems = Vec::new();
        let mut dirs: Vec<_> = self.dirs().collect();
        dirs.reverse();
        for (dir, origin) in dirs {
            let files = match toml_files(dir) {
                Ok(files) => files,
                Err(e) => {
                    problems.push(io_problem(dir, &e));
                    continue;
                }
            };
            for path in files {
                if let Some(problem) = profile_name_problem(&stem(&path)) {
                    problems.push(bad_name(path.display().to_string(), problem));
                    continue;
                }
                match read_file(&path, origin).map_err(LoadError::into_diagnostics) {
                    Ok(source) => add(source),
                    Err(Ok(found)) => problems.extend(found.0),
                    Err(Err(other)) => problems.push(Diagnostic {
                        origin: path.display().to_string(),
                        ..Diagnostic::new("", other.to_string())
                    }),
                }
            }
        }
        for source in self.memory.values() {
            add(source.clone());
        }
        Listing {
            entries: by_name.into_values().collect(),
            problems,
        }
    }
}

/// A file whose name cannot be a profile's: never read, never launched.
pub fn bad_name(origin: String, problem: String) -> Diagnostic {
    Diagnostic {
        origin,
        ..Diagnostic::new("", problem)
            .with_hint("rename the file: its name without `.toml` is the profile's name")
    }
}

fn io_problem(path: &Path, e: &std::io::Error) -> Diagnostic {
    Diagnostic {
        origin: path.display().to_string(),
        ..Diagnostic::new("", format!("cannot read the file: {e}"))
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The `*.toml` entries of `dir`, sorted; a missing dir has none.
fn toml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The largest profile file clp reads: a profile is a few kilobytes, and a file of
/// megabytes is a mistake (a log or a binary named `*.toml`), not worth the memory.
pub const MAX_PROFILE_BYTES: u64 = 1 << 20;

/// Reads one profile file. Not a regular file (a directory, a FIFO, a device),
/// unreadable, larger than [`MAX_PROFILE_BYTES`] or not UTF-8: an error naming the path
/// (and, for a byte that is not UTF-8, its line and column), never a hang: the file is
/// opened without blocking and checked through the open descriptor, so a FIFO swapped in
/// after a check is never read.
pub fn read_file(path: &Path, origin: Origin) -> Result<Source, LoadError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;

    let io = |source| LoadError::Io {
        path: path.to_owned(),
        source,
    };
    let located = |line: usize, column: usize, message: String| {
        LoadError::Invalid(crate::diag::Diagnostics(vec![Diagnostic {
            origin: path.display().to_string(),
            line,
            column,
            ..Diagnostic::new("", message)
        }]))
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_PROFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_PROFILE_BYTES {
        return Err(located(
            0,
            0,
            format!(
                "larger than {} KiB: not a profile",
                MAX_PROFILE_BYTES / 1024
            ),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let before = std::str::from_utf8(&e.as_bytes()[..valid]).unwrap_or_default();
        let (line, column) = crate::diag::line_col(before, before.len());
        located(
            line,
            column,
            format!(
                "not UTF-8: byte 0x{:02x} at offset {valid}",
                e.as_bytes()[valid]
            ),
        )
    })?;
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    Ok(Source {
        name: stem(&path),
        origin,
        path,
        text,
    })
}
