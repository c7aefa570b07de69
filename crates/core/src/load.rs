//! Finding profiles and merging their layers (reads profile files; nothing else).
//!
//! Lowest to highest: the built-ins compiled into the binary, the user's profile dir,
//! `--profiles-dir`, then `--set` overrides. A file with a built-in's name replaces the
//! built-in. `extends` chains are followed through the same search, and the chain is
//! merged with figment, so every value keeps the layer it came from (`clp show`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Provider};
use serde::Serialize;
use serde_json::Value;

use crate::builtin::BUILTINS;
use crate::diag::{Diagnostic, Diagnostics};
use crate::model::RawProfile;
use crate::validate::{check_text, check_value, dotted, parse_dotted, Part, Seg, Spans};

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
    /// A file named on the command line (`clp check FILE`).
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
}

/// Why profiles could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No profile of that name anywhere.
    #[error("no profile named `{name}`")]
    NotFound {
        /// The name asked for.
        name: String,
        /// The closest known name.
        suggestion: Option<String>,
        /// Every known name.
        known: Vec<String>,
    },
    /// One or more profiles are invalid.
    #[error("{0}")]
    Invalid(Diagnostics),
    /// A profile dir or file could not be read.
    #[error("cannot read `{}`", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// The directories profiles are searched in, besides the built-ins.
#[derive(Debug, Clone, Default)]
pub struct SearchPath {
    /// The user's profile dir (it need not exist).
    pub user: Option<PathBuf>,
    /// `--profiles-dir`, searched before the user dir.
    pub extra: Option<PathBuf>,
}

/// Every profile that can be named, the highest-precedence file for each name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: BTreeMap<String, Entry>,
}

/// A named profile and the lower-precedence files it shadows.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The file that defines the name.
    pub source: Source,
    /// Files of the same name it replaces, lowest first.
    pub shadows: Vec<Source>,
}

impl Catalog {
    /// Reads the built-ins and every `*.toml` in the search path's directories.
    pub fn discover(search: &SearchPath) -> Result<Catalog, LoadError> {
        let mut catalog = Catalog::default();
        for (name, path, text) in BUILTINS {
            catalog.insert(Source {
                name: (*name).to_owned(),
                origin: Origin::BuiltIn,
                path: PathBuf::from(path),
                text: (*text).to_owned(),
            });
        }
        for (dir, origin) in [(&search.user, Origin::User), (&search.extra, Origin::Dir)] {
            let Some(dir) = dir else { continue };
            for source in read_dir(dir, origin)? {
                catalog.insert(source);
            }
        }
        Ok(catalog)
    }

    /// Adds a file; it replaces (shadows) an entry of the same name.
    pub fn insert(&mut self, source: Source) {
        match self.entries.get_mut(&source.name) {
            Some(entry) => {
                let old = std::mem::replace(&mut entry.source, source);
                entry.shadows.push(old);
            }
            None => {
                self.entries.insert(
                    source.name.clone(),
                    Entry {
                        source,
                        shadows: Vec::new(),
                    },
                );
            }
        }
    }

    /// Every profile, by name.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Every profile name.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// The file that defines `name`.
    pub fn get(&self, name: &str) -> Result<&Source, LoadError> {
        self.entries
            .get(name)
            .map(|e| &e.source)
            .ok_or_else(|| self.not_found(name))
    }

    fn not_found(&self, name: &str) -> LoadError {
        let known = self.names();
        LoadError::NotFound {
            suggestion: crate::validate::did_you_mean(name, &known).map(str::to_owned),
            name: name.to_owned(),
            known,
        }
    }

    /// Loads `name`: checks each file of its `extends` chain, merges them with the
    /// overrides on top, and returns the merged layer or every problem found.
    pub fn load(&self, name: &str, overrides: &[Override]) -> Result<Loaded, LoadError> {
        let source = self.get(name)?.clone();
        self.load_source(source, overrides)
    }

    /// Loads a profile from a file that need not be in the catalog (`clp check FILE`); its
    /// `extends` resolves through the catalog.
    pub fn load_source(&self, source: Source, overrides: &[Override]) -> Result<Loaded, LoadError> {
        let mut diagnostics = Vec::new();
        let mut chain: Vec<Layer> = Vec::new();
        let mut names = vec![source.name.clone()];
        let mut next = Some(source);
        while let Some(source) = next.take() {
            let checked = check_text(&source.label(), &source.text);
            diagnostics.extend(checked.diagnostics);
            let Some(value) = checked.value else { break };
            let parent = value
                .get("extends")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let layer = Layer {
                source,
                value,
                spans: checked.spans,
            };
            if let Some(parent) = parent {
                let (line, column) = layer.spans.locate(&parse_dotted("extends"), Part::Value);
                let at = |message: String, hint: Option<String>| Diagnostic {
                    origin: layer.source.label(),
                    line,
                    column,
                    key: "extends".into(),
                    message,
                    hint,
                };
                if names.contains(&parent) {
                    names.push(parent);
                    diagnostics.push(at(
                        format!("`extends` forms a cycle: {}", names.join(" -> ")),
                        Some("remove `extends` from one profile of the cycle".into()),
                    ));
                } else {
                    match self.get(&parent) {
                        Ok(p) => {
                            names.push(parent);
                            next = Some(p.clone());
                        }
                        Err(LoadError::NotFound { suggestion, .. }) => {
                            names.push(parent.clone());
                            diagnostics.push(at(
                                format!(
                                    "`extends` names `{parent}`, which does not exist (chain: {})",
                                    names.join(" -> ")
                                ),
                                suggestion.map(|s| format!("did you mean `{s}`?")),
                            ));
                        }
                        Err(other) => return Err(other),
                    }
                }
            }
            chain.push(layer);
        }
        for o in overrides {
            for (_, _, d) in check_value(&o.as_layer_value()) {
                diagnostics.push(Diagnostic {
                    origin: format!("--set {}", o.raw),
                    ..d
                });
            }
        }
        if !diagnostics.is_empty() {
            let mut d = Diagnostics(diagnostics);
            d.sort();
            return Err(LoadError::Invalid(d));
        }
        chain.reverse();
        let name = chain
            .last()
            .map(|l| l.source.name.clone())
            .unwrap_or_default();
        let mut figment = Figment::new();
        for layer in &chain {
            figment = figment.merge(layer);
        }
        for o in overrides {
            figment = figment.merge(o);
        }
        let raw: RawProfile = figment.extract().map_err(|e| {
            // The schema accepted every layer, so this is a schema/type mismatch in clp.
            LoadError::Invalid(Diagnostics(vec![Diagnostic {
                origin: chain.last().map(|l| l.source.label()).unwrap_or_default(),
                line: 0,
                column: 0,
                key: e.path.join("."),
                message: e.to_string(),
                hint: None,
            }]))
        })?;
        Ok(Loaded {
            name,
            chain,
            overrides: overrides.to_vec(),
            figment,
            raw,
        })
    }
}

fn read_dir(dir: &Path, origin: Origin) -> Result<Vec<Source>, LoadError> {
    let io = |source| LoadError::Io {
        path: dir.to_owned(),
        source,
    };
    let entries = match fs_err::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut sources = Vec::new();
    for entry in entries {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            sources.push(read_file(&path, origin)?);
        }
    }
    sources.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(sources)
}

/// Reads one profile file.
pub fn read_file(path: &Path, origin: Origin) -> Result<Source, LoadError> {
    let text = fs_err::read_to_string(path).map_err(|e| LoadError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    Ok(Source {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        origin,
        path,
        text,
    })
}

/// One checked file of an `extends` chain.
pub struct Layer {
    /// The file.
    pub source: Source,
    /// Its keys.
    pub value: Value,
    /// Where its keys are.
    pub spans: Spans,
}

impl Provider for &Layer {
    fn metadata(&self) -> Metadata {
        let meta = Metadata::named(self.source.label());
        match self.source.origin {
            Origin::BuiltIn => meta.source(figment::Source::Custom(self.source.label())),
            _ => meta.source(figment::Source::File(self.source.path.clone())),
        }
    }

    fn data(&self) -> Result<Map<figment::Profile, Dict>, figment::Error> {
        figment::providers::Serialized::defaults(&self.value).data()
    }
}

/// A `--set key.path=value` override.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The argument as given.
    pub raw: String,
    /// The key path.
    pub key: String,
    /// The value, parsed as TOML (a bare word is a string).
    pub value: Value,
}

impl Override {
    /// Parses `key.path=value`. The value is read as a TOML value (`32768`, `true`,
    /// `["a", "b"]`, `"text"`); anything that is not valid TOML is taken as a string, so
    /// `--set isolation.level=B` works without quotes.
    pub fn parse(arg: &str) -> Result<Override, String> {
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("`{arg}` is not `key.path=value`"))?;
        let key = key.trim();
        let valid_key = !key.is_empty()
            && key.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        if !valid_key {
            return Err(format!("`{key}` is not a key path like `backend.url`"));
        }
        let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .and_then(|v| serde_json::to_value(v).ok())
            .unwrap_or_else(|| Value::String(value.to_owned()));
        Ok(Override {
            raw: arg.to_owned(),
            key: key.to_owned(),
            value: parsed,
        })
    }

    /// The override as a partial profile: `{"backend": {"url": ...}}`.
    pub fn as_layer_value(&self) -> Value {
        parse_dotted(&self.key)
            .into_iter()
            .rev()
            .fold(self.value.clone(), |inner, seg| match seg {
                Seg::Key(k) => Value::Object([(k, inner)].into_iter().collect()),
                Seg::Index(_) => inner,
            })
    }
}

impl Provider for &Override {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("--set {}", self.raw))
            .source(figment::Source::Custom("--set".into()))
    }

    fn data(&self) -> Result<Map<figment::Profile, Dict>, figment::Error> {
        figment::providers::Serialized::defaults(self.as_layer_value()).data()
    }
}

/// A profile's merged layer, with the files and overrides it came from.
pub struct Loaded {
    /// The profile's name.
    pub name: String,
    /// The `extends` chain, root ancestor first, the named profile last.
    pub chain: Vec<Layer>,
    /// The `--set` overrides applied on top.
    pub overrides: Vec<Override>,
    /// The merge, which knows where each value came from.
    pub figment: Figment,
    /// The merged values.
    pub raw: RawProfile,
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Provenance {
    /// A profile file, at a line.
    File {
        /// The file's label.
        origin: String,
        /// 1-based line.
        line: usize,
    },
    /// A `--set` override.
    Set {
        /// The argument.
        arg: String,
    },
    /// Not set anywhere: clp's default.
    Default,
    /// Not set anywhere: taken from another key.
    Derived {
        /// The key it follows.
        from: String,
    },
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Provenance::File { origin, line } => write!(f, "{origin}:{line}"),
            Provenance::Set { arg } => write!(f, "--set {arg}"),
            Provenance::Default => f.write_str("default"),
            Provenance::Derived { from } => write!(f, "default: same as {from}"),
        }
    }
}

impl Loaded {
    /// Where the value at `key` (dotted) came from.
    pub fn provenance(&self, key: &str) -> Provenance {
        let Some(meta) = self.figment.find_metadata(key) else {
            return Provenance::Default;
        };
        if let Some(o) = self
            .overrides
            .iter()
            .rev()
            .find(|o| meta.name == format!("--set {}", o.raw))
        {
            return Provenance::Set { arg: o.raw.clone() };
        }
        match self.chain.iter().find(|l| meta.name == l.source.label()) {
            Some(layer) => Provenance::File {
                origin: layer.source.label(),
                line: layer.spans.locate(&parse_dotted(key), Part::Value).0,
            },
            None => Provenance::Default,
        }
    }

    /// How specific the layer that set `key` is: the root ancestor is 0, the named
    /// profile `chain.len() - 1`, `--set` overrides above that. `None` when unset.
    pub fn rank(&self, key: &str) -> Option<usize> {
        let meta = self.figment.find_metadata(key)?;
        if let Some(i) = self
            .overrides
            .iter()
            .rposition(|o| meta.name == format!("--set {}", o.raw))
        {
            return Some(self.chain.len() + i);
        }
        self.chain
            .iter()
            .position(|l| meta.name == l.source.label())
    }

    /// The layer that set `key`, if a file did.
    pub fn defining_layer(&self, key: &str) -> Option<&Layer> {
        let meta = self.figment.find_metadata(key)?;
        self.chain.iter().find(|l| meta.name == l.source.label())
    }

    /// A diagnostic about `key` placed where the winning layer set it (or at the named
    /// profile's file when nothing set it).
    pub fn diagnostic_at(&self, key: &str, d: Diagnostic) -> Diagnostic {
        let path = parse_dotted(key);
        if let Some(layer) = self.defining_layer(key) {
            let (line, column) = layer.spans.locate(&path, Part::Value);
            return Diagnostic {
                origin: layer.source.label(),
                line,
                column,
                key: dotted(&path),
                ..d
            };
        }
        if let Provenance::Set { arg } = self.provenance(key) {
            return Diagnostic {
                origin: format!("--set {arg}"),
                ..d
            };
        }
        Diagnostic {
            origin: self
                .chain
                .last()
                .map(|l| l.source.label())
                .unwrap_or_default(),
            ..d
        }
    }

    /// The directory relative paths set at `key` resolve against.
    pub fn dir_of(&self, key: &str) -> Option<&Path> {
        self.defining_layer(key).and_then(|l| l.source.dir())
    }
}
