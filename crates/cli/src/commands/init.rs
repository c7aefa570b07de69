//! `clp init [NAME] --from TEMPLATE`: writes a new profile (and the schema beside it)
//! into the profile dir; never overwrites.

use std::process::ExitCode;

use clp_core::init::{new_profile, USER_SCHEMA_FILE};
use clp_core::Error;

use crate::args::GlobalArgs;
use crate::context::Ctx;
use crate::failure::Failure;

pub fn init(g: &GlobalArgs, name: Option<&str>, from: &str) -> Result<ExitCode, Failure> {
    let ctx = Ctx::new(g)?;
    let name = name.unwrap_or(from);
    let dir = g
        .profiles_dir
        .clone()
        .unwrap_or_else(|| ctx.host.profiles_dir.clone());
    let new = new_profile(&ctx.catalog, &dir, name, from)?;
    clp_core::apply::write_atomic(
        &dir.join(USER_SCHEMA_FILE),
        clp_core::schema::profile_schema_text().as_bytes(),
        0o644,
    )?;
    if !clp_core::apply::create_new(&new.path, new.text.as_bytes(), 0o644)? {
        return Err(Error::usage(format!("`{}` exists already", new.path.display())).into());
    }
    println!("{}", new.path.display());
    eprintln!("created `{}`; try `clp show {name}`", new.path.display());
    Ok(ExitCode::SUCCESS)
}
