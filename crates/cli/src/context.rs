//! What every command starts from: the host, the profiles that can be named and the
//! `--set` overrides; and loading one profile with the host facts its launch needs.

use clp_core::host::detect;
use clp_core::{resolve, Catalog, Error, Host, Loaded, Override, Profile, SearchPath};

use crate::args::GlobalArgs;
use crate::failure::Failure;

pub struct Ctx {
    pub host: Host,
    pub catalog: Catalog,
    pub overrides: Vec<Override>,
}

impl Ctx {
    pub fn new(g: &GlobalArgs) -> Result<Ctx, Failure> {
        let host = detect::detect(&[]).map_err(|e| Error::host(e.to_string()))?;
        if let Some(dir) = g.profiles_dir.as_ref().filter(|d| !d.is_dir()) {
            let message = format!("`--profiles-dir {}` is not a directory", dir.display());
            return Err(Error::usage(message).into());
        }
        let catalog = Catalog::new(SearchPath {
            user: Some(host.profiles_dir.clone()),
            extra: g.profiles_dir.clone(),
        });
        let overrides = g
            .set
            .iter()
            .map(|s| Override::parse(s).map_err(|e| Error::usage(format!("--set: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Ctx {
            host,
            catalog,
            overrides,
        })
    }

    /// Loads and resolves `name`, then looks up what rendering it needs from the machine.
    pub fn profile(&mut self, name: &str) -> Result<(Loaded, Profile), Failure> {
        let loaded = self.catalog.load(name, &self.overrides)?;
        let profile = resolve(&loaded, &self.host)?;
        let needs = clp_core::render::needs(&profile, &self.host);
        detect::gather(&mut self.host, &needs);
        Ok((loaded, profile))
    }
}
