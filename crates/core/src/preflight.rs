//! Before exec: the programs a plan needs, and the backend (network I/O): ask it to
//! switch models when the profile says how, wait while it loads (or is not up yet) for
//! up to `backend.wait` seconds, fail when it stays down, and warn (or, after a switch,
//! wait) when the profile's model is not served.
//!
//! Progress and warnings are events for the caller to show; nothing here prints.

use std::time::{Duration, Instant};

use crate::error::Error;
use crate::host::Host;
use crate::plan::{LaunchPlan, Preflight};
use crate::probe::{self, Health};
use crate::profile::Switch;

/// Something the user should see while the preflight runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Still waiting for `what`; shown as one line that grows while it repeats.
    Waiting(String),
    /// The wait shown last is over: `ready` says whether it ended well.
    Done {
        /// Whether the awaited thing is there.
        ready: bool,
    },
    /// A step worth a line of its own (a model switch).
    Step(String),
    /// A warning, with a hint.
    Warning {
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },
}

/// The programs the plan needs, each present on the host, before anything is written.
pub fn check_programs(plan: &LaunchPlan, host: &Host) -> Result<(), Error> {
    for p in &plan.preflight {
        if let Preflight::Program { name, install } = p {
            if host.program(name).is_none() {
                return Err(Error::host(format!(
                    "`{name}` is not installed (profile `{}` needs it)",
                    plan.profile
                ))
                .hint(install.clone()));
            }
        }
    }
    Ok(())
}

const SKIP: &str = "or skip this check with `--no-check`";

/// What the backend said about itself, for the launch's rendering (see
/// [`Facts::apply`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The context a request may use, when the server says.
    pub context: Option<u32>,
}

impl Facts {
    /// `profile` with what the server said where the profile is silent: the context
    /// (`model.context`) when the profile does not set it. `None` when nothing changes.
    pub fn apply(&self, profile: &crate::Profile) -> Option<crate::Profile> {
        let context = self.context.filter(|_| profile.model.context.is_none())?;
        let mut p = profile.clone();
        p.model.context = Some(context);
        Some(p)
    }
}

/// Runs the plan's backend checks, reporting progress through `events`; returns what
/// the backend said about itself.
pub fn run(plan: &LaunchPlan, events: &mut dyn FnMut(Event)) -> Result<Facts, Error> {
    let mut facts = Facts::default();
    let mut deadline = Instant::now();
    for p in &plan.preflight {
        match p {
            Preflight::Switch { switch } => switch_model(switch, events)?,
            Preflight::Health { url, wait } => {
                deadline = Instant::now() + Duration::from_secs((*wait).into());
                wait_healthy(url, *wait, deadline, events)?;
            }
            Preflight::Model {
                url,
                model,
                required,
            } => wait_model(url, model, *required, deadline, events)?,
            Preflight::Context {
                base,
                models,
                model,
                declared,
            } => {
                facts.context =
                    probe::server_context(base, models, model.as_deref(), Duration::from_secs(2));
                if let Some(warning) = context_warning(*declared, facts.context) {
                    events(warning);
                }
            }
            Preflight::Program { .. } => {}
        }
    }
    Ok(facts)
}

/// A warning when the profile declares more context than the server has, or when the
/// server's is too small for Claude Code to compact in time.
fn context_warning(declared: Option<u32>, served: Option<u32>) -> Option<Event> {
    let served = served?;
    let budget = crate::context::budget(declared.unwrap_or(served).min(served));
    if budget.room == 0 {
        return crate::context::note(&budget).map(|message| Event::Warning {
            message,
            hint: None,
        });
    }
    let declared = declared?;
    (declared > served).then(|| Event::Warning {
        message: format!(
            "`model.context` is {declared} tokens but the server's context is {served}: \
             Claude Code would send requests the server refuses before it compacts"
        ),
        hint: Some(format!(
            "set `model.context = {served}` (or leave it out: clp then asks the server), or \
             restart llama-server with `-c {declared}`"
        )),
    })
}

fn wait_healthy(
    url: &str,
    wait: u32,
    deadline: Instant,
    events: &mut dyn FnMut(Event),
) -> Result<(), Error> {
    loop {
        let state = probe::health(url, Duration::from_secs(2));
        let waiting = match &state {
            Health::Ready => {
                events(Event::Done { ready: true });
                return Ok(());
            }
            Health::Loading => "loading its model",
            Health::Unreachable(_) => "not answering yet",
            Health::Status(_) => "",
        };
        if !waiting.is_empty() && Instant::now() < deadline {
            events(Event::Waiting(format!(
                "waiting for the backend at `{url}` ({waiting})"
            )));
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        events(Event::Done { ready: false });
        let waited = if wait > 0 {
            format!(" after waiting {wait}s")
        } else {
            String::new()
        };
        return Err(match state {
            Health::Loading => Error::host(format!(
                "the backend at `{url}` is still loading its model{waited}"
            ))
            .hint(format!(
                "wait and retry, set `backend.wait` to the seconds to wait, {SKIP}"
            )),
            Health::Status(code) => {
                Error::host(format!("the backend at `{url}` answered HTTP {code}"))
                    .hint(format!("check the server's log, {SKIP}"))
            }
            Health::Unreachable(why) => Error::host(format!(
                "the backend at `{url}` is unreachable{waited}: {why}"
            ))
            .hint(format!(
                "start llama-server (or fix `backend.url`), set `backend.wait` to wait for \
                 it, {SKIP}"
            )),
            Health::Ready => unreachable!("returned above"),
        });
    }
}

fn wait_model(
    url: &str,
    model: &str,
    required: bool,
    deadline: Instant,
    events: &mut dyn FnMut(Event),
) -> Result<(), Error> {
    loop {
        match probe::models(url, Duration::from_secs(2)) {
            Ok(ids) if ids.iter().any(|i| i == model) => {
                events(Event::Done { ready: true });
                return Ok(());
            }
            _ if required && Instant::now() < deadline => {
                events(Event::Waiting(format!(
                    "waiting for the backend to serve `{model}`"
                )));
                std::thread::sleep(Duration::from_millis(500));
            }
            Ok(ids) => {
                events(Event::Done { ready: false });
                let served = if ids.is_empty() {
                    "nothing".into()
                } else {
                    ids.join(", ")
                };
                if required {
                    return Err(Error::host(format!(
                        "the backend did not switch to `{model}`; it serves: {served}"
                    ))
                    .hint(format!(
                        "check `backend.switch`, raise `backend.wait`, {SKIP}"
                    )));
                }
                events(Event::Warning {
                    message: format!(
                        "the backend does not list the model `{model}`; it serves: {served}"
                    ),
                    hint: Some("model names must match llama-server's `--alias`".into()),
                });
                return Ok(());
            }
            Err(e) => {
                events(Event::Done { ready: false });
                if required {
                    return Err(Error::host(format!(
                        "cannot list the backend's models at `{url}`: {e}"
                    ))
                    .hint(SKIP));
                }
                events(Event::Warning {
                    message: format!("cannot list the backend's models at `{url}`: {e}"),
                    hint: None,
                });
                return Ok(());
            }
        }
    }
}

/// Asks the backend to serve the profile's model.
fn switch_model(switch: &Switch, events: &mut dyn FnMut(Event)) -> Result<(), Error> {
    match switch {
        Switch::Command(cmd) => {
            events(Event::Step(format!("switching the backend's model: {cmd}")));
            let status = std::process::Command::new("sh")
                .args(["-c", cmd])
                .stdin(std::process::Stdio::null())
                .status()
                .map_err(|e| {
                    Error::new(crate::Kind::Os, format!("cannot run `{cmd}`")).caused_by(e)
                })?;
            if !status.success() {
                return Err(
                    Error::host(format!("the switch command `{cmd}` failed ({status})"))
                        .hint("fix `backend.switch.command`, or skip with `--no-check`"),
                );
            }
        }
        Switch::Request { method, url, body } => {
            let method = method.as_str();
            events(Event::Step(format!(
                "switching the backend's model: {method} {url}"
            )));
            probe::request(method, url, body.as_deref(), Duration::from_secs(30)).map_err(|e| {
                Error::host(format!("the switch request {method} `{url}` failed: {e}"))
                    .hint("fix `backend.switch`, or skip with `--no-check`")
            })?;
        }
    }
    Ok(())
}
