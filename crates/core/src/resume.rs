//! Resuming a session by its id: which profile's session store holds it, and the
//! directory it ran in. Claude Code keeps each transcript at
//! `<config dir>/projects/<the cwd, mangled>/<id>.jsonl`. Reads the stores (I/O).

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::host::Host;
use crate::merge::Override;
use crate::source::Catalog;

/// Where a session lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The profile whose config dir holds it.
    pub profile: String,
    /// The directory the session ran in, as its transcript says.
    pub cwd: Option<PathBuf>,
}

/// Checks that `id` looks like a session id (a UUID: hex digits and dashes), so that it
/// can name a file.
pub fn check_id(id: &str) -> Result<(), Error> {
    let ok = (8..=64).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        && !id.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "`{id}` is not a Claude Code session id (a UUID such as \
             `01b04298-5c3e-4d6f-9a7b-0c1d2e3f4a5b`)"
        )))
    }
}

/// Every profile's session store: its name and config dir (the default one when the
/// profile does not resolve here, say for a workspace this directory cannot be), the
/// `oauth` profile's `~/.claude` last.
pub fn stores(catalog: &Catalog, overrides: &[Override], host: &Host) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = catalog
        .names()
        .into_iter()
        .filter_map(|name| {
            let loaded = catalog.load(&name, overrides).ok()?;
            let config = match crate::resolve(&loaded, host) {
                Ok(p) if p.isolation.main_config => return None,
                Ok(p) => p.isolation.config_dir,
                Err(_) => host.state_dir.join(&name).join("claude"),
            };
            Some((name, config))
        })
        .collect();
    out.dedup_by(|a, b| a.1 == b.1);
    out
}

/// The first of `stores` (profile name, config dir) whose `projects/*/` holds `id`.
///
/// A boundary session writes its own store: a `projects` dir or a project dir there that
/// is a symbolic link (to the main install's `~/.claude/projects`, say) would make this
/// profile claim another's session, so links are not followed, at any level.
pub fn find(id: &str, stores: &[(String, PathBuf)]) -> Option<Found> {
    let file = format!("{id}.jsonl");
    let real_dir = |p: &Path| p.symlink_metadata().is_ok_and(|m| m.is_dir());
    for (profile, config) in stores {
        let projects = config.join("projects");
        if !real_dir(config) || !real_dir(&projects) {
            continue;
        }
        let Ok(projects) = std::fs::read_dir(projects) else {
            continue;
        };
        for project in projects.flatten() {
            if !project.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let transcript = project.path().join(&file);
            if transcript.symlink_metadata().is_ok_and(|m| m.is_file()) {
                return Some(Found {
                    profile: profile.clone(),
                    cwd: transcript_cwd(&transcript),
                });
            }
        }
    }
    None
}

/// The `cwd` the transcript's first entries record (bounded read).
fn transcript_cwd(path: &Path) -> Option<PathBuf> {
    use std::io::{BufRead, Read};
    let file = std::fs::File::open(path).ok()?;
    std::io::BufReader::new(file.take(1 << 20))
        .lines()
        .take(50)
        .map_while(Result::ok)
        .find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(&line).ok()?;
            let cwd = v.get("cwd")?.as_str()?;
            Some(PathBuf::from(cwd)).filter(|p| p.is_absolute())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuids_only() {
        assert!(check_id("01b04298-5c3e-4d6f-9a7b-0c1d2e3f4a5b").is_ok());
        for bad in ["", "../x", "abc", "-rf", "01b04298/../x", "zzzzzzzzzz"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn finds_the_store_and_the_cwd() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        let id = "01b04298-5c3e-4d6f-9a7b-0c1d2e3f4a5b";
        std::fs::create_dir_all(b.join("projects/-w")).unwrap();
        std::fs::write(
            b.join(format!("projects/-w/{id}.jsonl")),
            "{\"type\":\"summary\"}\n{\"cwd\":\"/w\",\"type\":\"user\"}\n",
        )
        .unwrap();
        let stores = [("a".to_owned(), a), ("b".to_owned(), b)];
        assert_eq!(
            find(id, &stores),
            Some(Found {
                profile: "b".into(),
                cwd: Some(PathBuf::from("/w"))
            })
        );
        assert_eq!(find("01b04298-0000-0000-0000-000000000000", &stores), None);
    }

    #[test]
    fn a_store_never_claims_a_session_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main");
        let id = "01b04298-5c3e-4d6f-9a7b-0c1d2e3f4a5b";
        std::fs::create_dir_all(main.join("projects/-w")).unwrap();
        std::fs::write(main.join(format!("projects/-w/{id}.jsonl")), "{}\n").unwrap();
        // A session of `box` planted links in its own store: a project dir, and (in a
        // second store) the whole `projects` dir.
        let boxed = dir.path().join("box");
        std::fs::create_dir_all(boxed.join("projects")).unwrap();
        std::os::unix::fs::symlink(main.join("projects/-w"), boxed.join("projects/-w")).unwrap();
        let other = dir.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::os::unix::fs::symlink(main.join("projects"), other.join("projects")).unwrap();
        let stores = [
            ("box".to_owned(), boxed),
            ("other".to_owned(), other),
            ("oauth".to_owned(), main),
        ];
        assert_eq!(find(id, &stores).map(|f| f.profile), Some("oauth".into()));
        // Control: without the oauth store, nothing is found (the links lead nowhere).
        assert_eq!(find(id, &stores[..2]), None);
    }
}
