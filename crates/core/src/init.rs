//! `clp init`: a new profile file made from a built-in, checked before it is written, and
//! never outside the profile dir.

use std::path::{Path, PathBuf};

use crate::builtin::BUILTINS;
use crate::error::{Error, LoadError};
use crate::keypath::did_you_mean;
use crate::model::profile_name_problem;
use crate::source::{Catalog, Origin, Source};

/// The name of the schema file `clp init` keeps beside the user's profiles.
pub const USER_SCHEMA_FILE: &str = "profile.schema.json";

/// A profile file to create: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProfile {
    /// `<dir>/<name>.toml`.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

/// The new profile `name` in `dir`, copied from the built-in `from` and checked with its
/// inheritance. Refuses a name that is not a plain file name and a file that exists.
pub fn new_profile(
    catalog: &Catalog,
    dir: &Path,
    name: &str,
    from: &str,
) -> Result<NewProfile, InitError> {
    let Some((_, _, template)) = BUILTINS.iter().find(|(n, _, _)| *n == from) else {
        let names: Vec<&str> = BUILTINS.iter().map(|b| b.0).collect();
        let hint = match did_you_mean(from, &names) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("built-ins: {}", names.join(", ")),
        };
        return Err(Error::usage(format!("no built-in profile named `{from}`"))
            .hint(hint)
            .into());
    };
    // The loader's rule: a name it would refuse is never written (and so never a path
    // outside `dir`).
    if let Some(problem) = profile_name_problem(name) {
        return Err(Error::usage(problem).into());
    }
    let path = dir.join(format!("{name}.toml"));
    if path.symlink_metadata().is_ok() {
        return Err(Error::usage(format!("`{}` exists already", path.display()))
            .hint("clp init never overwrites a profile: edit it, or pick another name")
            .into());
    }
    let mut text = format!("#:schema ./{USER_SCHEMA_FILE}\n");
    text.push_str(&format!("# Created by `clp init {name} --from {from}`.\n"));
    for line in template.lines().filter(|l| !l.starts_with("#:schema")) {
        text.push_str(line);
        text.push('\n');
    }
    let source = Source {
        name: name.to_owned(),
        origin: Origin::User,
        path: path.clone(),
        text: text.clone(),
    };
    let mut catalog = catalog.clone();
    catalog.insert(source.clone());
    catalog.load_source(source, &[])?;
    Ok(NewProfile { path, text })
}

/// Why `clp init` refused.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A wrong name or an existing file.
    #[error(transparent)]
    Usage(#[from] Error),
    /// The new profile would not load.
    #[error(transparent)]
    Load(#[from] LoadError),
}
