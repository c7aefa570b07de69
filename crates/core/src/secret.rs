//! Fetching a plan's secrets at launch: from the parent environment or by running the
//! profile's credential command. Their values never reach a rendered file or argv.

use std::collections::BTreeMap;

use crate::error::{Error, Kind};
use crate::host::Host;

use crate::plan::LaunchPlan;
use crate::profile::Secret;

/// The value of each of the plan's secret variables.
pub fn fetch(plan: &LaunchPlan, host: &Host) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for (var, secret) in &plan.env.secrets {
        let value = match secret {
            Secret::Literal(v) => v.clone(),
            Secret::Env(name) => host.var(name).map(str::to_owned).ok_or_else(|| {
                Error::host(format!(
                    "`{name}` is not set (profile `{}` reads its credential from it)",
                    plan.profile
                ))
                .hint(format!("export {name}=... before launching"))
            })?,
            Secret::Command(cmd) => run(cmd)?,
        };
        out.insert(var.clone(), value);
    }
    Ok(out)
}

/// Runs a credential command; its output, trimmed, is the secret.
fn run(cmd: &str) -> Result<String, Error> {
    let output = std::process::Command::new("sh")
        .args(["-c", cmd])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| Error::new(Kind::Os, format!("cannot run `{cmd}`")).caused_by(e))?;
    if !output.status.success() {
        return Err(Error::host(format!(
            "the credential command `{cmd}` failed ({})",
            output.status
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
