//! The committed `schemas/profile.schema.json` matches the Rust types, and every shipped
//! profile names it and validates.

use std::path::Path;

const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/profile.schema.json");

const REFERENCE_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/profile-reference.md"
);

/// Regenerate with `CLP_UPDATE_SCHEMA=1 cargo test -p clp-core --test core schema`.
#[test]
fn committed_reference_is_current() {
    check_generated(REFERENCE_PATH, &clp_core::schema::reference_markdown());
}

/// Regenerate with `CLP_UPDATE_SCHEMA=1 cargo test -p clp-core --test core schema`.
#[test]
fn committed_schema_is_current() {
    check_generated(SCHEMA_PATH, &clp_core::schema::profile_schema_text());
}

fn check_generated(path: &str, generated: &str) {
    if std::env::var("CLP_UPDATE_SCHEMA").as_deref() == Ok("1") {
        std::fs::write(path, generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if committed != generated {
        let mut diff = String::new();
        let (old, new): (Vec<_>, Vec<_>) =
            (committed.lines().collect(), generated.lines().collect());
        for i in 0..old.len().max(new.len()) {
            match (old.get(i), new.get(i)) {
                (Some(a), Some(b)) if a == b => {}
                (a, b) => {
                    if let Some(a) = a {
                        diff.push_str(&format!("-{:>5} {a}\n", i + 1));
                    }
                    if let Some(b) = b {
                        diff.push_str(&format!("+{:>5} {b}\n", i + 1));
                    }
                }
            }
        }
        panic!(
            "{path} is stale:\n{diff}\nregenerate it with:\n  \
             CLP_UPDATE_SCHEMA=1 cargo test -p clp-core --test core schema"
        );
    }
}

#[test]
fn every_shipped_profile_points_at_the_schema_and_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        crate::builtin_names().len(),
        "every file in profiles/ is a built-in"
    );
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("#:schema ../schemas/profile.schema.json\n"),
            "{} must start with the #:schema line",
            file.display()
        );
        let checked = clp_core::layer::check_text(&file.display().to_string(), &text);
        assert!(checked.diagnostics.is_empty(), "{:#?}", checked.diagnostics);
        let stem = file.file_stem().unwrap().to_str().unwrap();
        assert!(
            crate::builtin_names().contains(&stem),
            "{stem} is compiled in"
        );
    }
}

#[test]
fn level_aliases_are_in_the_schema() {
    let schema = clp_core::schema::profile_schema();
    let text = schema.to_string();
    for name in [
        "\"env\"",
        "\"sandbox\"",
        "\"container\"",
        "\"A\"",
        "\"B\"",
        "\"C\"",
    ] {
        assert!(text.contains(name), "{name} missing from the level enum");
    }
    // Doc comments become descriptions.
    assert!(text.contains("Base URL of the server"));
}

/// One Claude Code version everywhere: CI installs it, the container profile pins it,
/// `clp --version` names it.
#[test]
fn the_tested_claude_version_is_the_one_ci_installs_and_the_container_pins() {
    let v = clp_core::policy::TESTED_CLAUDE_VERSION;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(
        ci.contains(&format!("claude_version={v}\n")),
        ".ci/run installs {v}"
    );
    let container = std::fs::read_to_string(root.join("profiles/local-container.toml")).unwrap();
    assert!(
        container.contains(&format!("version = \"={v}\"")),
        "local-container pins {v}"
    );
}
