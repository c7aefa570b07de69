//! Merging a profile's `extends` chain and the `--set` overrides into one layer that
//! knows where each value came from (figment keeps the provenance; `clp show` prints it).

use std::path::Path;

use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Provider};
use serde::Serialize;
use serde_json::Value;

use crate::diag::{Diagnostic, Diagnostics};
use crate::error::LoadError;
use crate::keypath::{dotted, parse_dotted, Part, Seg};
use crate::layer::{check_value, valid_value, Layer};
use crate::model::{profile_name_problem, RawProfile};
use crate::source::{Catalog, Source};

impl Catalog {
    /// Loads `name`: checks each file of its `extends` chain, merges them with the
    /// overrides on top, and returns the merged layer or every problem found.
    pub fn load(&self, name: &str, overrides: &[Override]) -> Result<Loaded, LoadError> {
        let source = self.find(name)?;
        self.load_source(source, overrides)
    }

    /// Loads a profile from a file that need not be in the catalog (`clp check FILE`); its
    /// `extends` resolves through the catalog.
    pub fn load_source(&self, source: Source, overrides: &[Override]) -> Result<Loaded, LoadError> {
        let mut diagnostics = Vec::new();
        if let Some(problem) = profile_name_problem(&source.name) {
            // Its name becomes directories in clp's state: refused before anything
            // else, but the file's own problems are reported too.
            diagnostics.push(crate::source::bad_name(source.label(), problem));
        }
        let mut chain = self.chain(source, &mut diagnostics)?;
        for o in overrides
            .iter()
            .filter(|o| !valid_value(&o.as_layer_value()))
        {
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

    /// The `extends` chain from `source` up, named profile first; each file's problems,
    /// a cycle or a missing parent go to `diagnostics`.
    fn chain(
        &self,
        source: Source,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Result<Vec<Layer>, LoadError> {
        let mut chain: Vec<Layer> = Vec::new();
        let mut names = vec![source.name.clone()];
        let mut next = Some(source);
        while let Some(source) = next.take() {
            let layer = match Layer::read(source) {
                Ok(layer) => layer,
                Err(found) => {
                    diagnostics.extend(found);
                    break;
                }
            };
            if let Some(parent) = layer.extends().map(str::to_owned) {
                let (line, column) = layer.spans().locate(&parse_dotted("extends"), Part::Value);
                let at = |message: String, hint: Option<String>| Diagnostic {
                    origin: layer.source.label(),
                    line,
                    column,
                    key: "extends".into(),
                    message,
                    hint,
                };
                let cycle = names.contains(&parent);
                names.push(parent.clone());
                if names.len() > MAX_CHAIN {
                    diagnostics.push(at(
                        format!(
                            "the `extends` chain is longer than {MAX_CHAIN} profiles: {} -> ...",
                            names[..4].join(" -> ")
                        ),
                        Some("inherit from fewer levels of profiles".into()),
                    ));
                } else if cycle {
                    diagnostics.push(at(
                        format!("`extends` forms a cycle: {}", names.join(" -> ")),
                        Some("remove `extends` from one profile of the cycle".into()),
                    ));
                } else {
                    match self.find(&parent) {
                        Ok(p) => next = Some(p),
                        Err(LoadError::NotFound { suggestion, .. }) => diagnostics.push(at(
                            format!(
                                "`extends` names `{parent}`, which does not exist (chain: {})",
                                names.join(" -> ")
                            ),
                            suggestion.map(|s| format!("did you mean `{s}`?")),
                        )),
                        Err(other) => return Err(other),
                    }
                }
            }
            chain.push(layer);
        }
        Ok(chain)
    }
}

/// The most profiles an `extends` chain may have: far more than anyone writes, and a
/// bound on the work (and the output) a chain of hand-made or generated files can cause.
pub const MAX_CHAIN: usize = 32;

/// The most parts a `--set` key path may have: far more than any profile key has, and
/// few enough that a hostile argument cannot nest the override without bound.
pub const MAX_SET_DEPTH: usize = 32;

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
            return Err(format!(
                "`{}` is not a key path like `backend.url`",
                crate::diag::printable(key)
            ));
        }
        if key.split('.').count() > MAX_SET_DEPTH {
            return Err(format!(
                "the key path has more than {MAX_SET_DEPTH} parts; no profile key is that deep"
            ));
        }
        let parsed = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
            Ok(mut t) => t.remove("v").and_then(|v| serde_json::to_value(v).ok()),
            // Meant as TOML (an array, a table, a quoted string) but not valid: an error,
            // not a string that would only fail later, or not at all.
            Err(e) if value.trim_start().starts_with(['[', '{', '"', '\'']) => {
                return Err(format!(
                    "the value of `{key}` is not valid TOML: {}",
                    e.message().trim()
                ));
            }
            Err(_) => None,
        }
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
                line: layer.spans().locate(&parse_dotted(key), Part::Value).0,
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
            let (line, column) = layer.spans().locate(&path, Part::Value);
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
