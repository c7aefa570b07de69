//! The profile corpus: every file under `fixtures/invalid/` must fail `clp check` with
//! exit code 2 and the problems its header announces, and every file under
//! `fixtures/valid/` must pass.
//!
//! An invalid fixture says what it expects in comment lines at its top:
//!
//! ```text
//! # expect: 10:7 backend.url                       (line:column and key path)
//! # expect: 8:29 -                                 (no key: a TOML syntax error)
//! # expect: -:- workspace.path                     (no place in the file)
//! # expect: 3:11 extends in invalid-partners/x.toml  (reported in another file)
//! # profiles-dir: invalid-partners                 (pass `--profiles-dir DIR`)
//! # cwd: home                                      (run from HOME, not the project)
//! ```
//!
//! One `# expect:` line per problem, and `clp check` must report no others. The messages
//! themselves are pinned by one snapshot of the whole corpus (`invalid_corpus`).

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{text, Env};

/// `crates/cli/tests/fixtures`, without a trailing separator.
fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The `*.toml` files of a fixture dir, sorted by name.
fn toml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// One announced problem.
#[derive(Debug)]
struct Expect {
    /// The file it is reported in, relative to the fixtures dir; `None` for the fixture.
    file: Option<String>,
    /// `(line, column)`, or `None` when the problem has no place in a file.
    at: Option<(usize, usize)>,
    /// The key path, or `None` for problems of the whole file.
    key: Option<String>,
}

impl Expect {
    /// Parses what follows `# expect:`: `LINE:COL KEY [in FILE]`, `-:-` for no place and
    /// `-` for no key.
    fn parse(spec: &str) -> Option<Expect> {
        let words: Vec<&str> = spec.split_whitespace().collect();
        let (at, key, file) = match words[..] {
            [at, key] => (at, key, None),
            [at, key, "in", file] => (at, key, Some(file.to_owned())),
            _ => return None,
        };
        let at = match at {
            "-:-" => None,
            _ => {
                let (line, column) = at.split_once(':')?;
                Some((line.parse().ok()?, column.parse().ok()?))
            }
        };
        let key = (key != "-").then(|| key.to_owned());
        Some(Expect { file, at, key })
    }

    /// The start of the `error:` line that reports this problem.
    fn prefix(&self, fixture: &Path) -> String {
        let file = match &self.file {
            Some(rel) => fixtures_dir().join(rel),
            None => fixture.to_owned(),
        };
        let mut out = format!("error: {}", file.display());
        if let Some((line, column)) = self.at {
            out.push_str(&format!(":{line}:{column}"));
        }
        out.push_str(": ");
        if let Some(key) = &self.key {
            out.push_str(&format!("`{key}`: "));
        }
        out
    }
}

/// An invalid fixture and how to run it.
#[derive(Debug)]
struct Fixture {
    path: PathBuf,
    expects: Vec<Expect>,
    profiles_dir: Option<PathBuf>,
    cwd_home: bool,
}

impl Fixture {
    fn read(path: &Path) -> Fixture {
        let text = std::fs::read_to_string(path).unwrap();
        let mut fixture = Fixture {
            path: path.to_owned(),
            expects: Vec::new(),
            profiles_dir: None,
            cwd_home: false,
        };
        for line in text.lines().take_while(|l| l.starts_with('#')) {
            if let Some(rest) = line.strip_prefix("# expect:") {
                fixture
                    .expects
                    .push(Expect::parse(rest).unwrap_or_else(|| bad_header(path, line)));
            } else if let Some(dir) = line.strip_prefix("# profiles-dir:") {
                fixture.profiles_dir = Some(fixtures_dir().join(dir.trim()));
            } else if let Some(cwd) = line.strip_prefix("# cwd:") {
                fixture.cwd_home = match cwd.trim() {
                    "home" => true,
                    "project" => false,
                    _ => bad_header(path, line),
                };
            }
        }
        assert!(
            !fixture.expects.is_empty(),
            "{}: no `# expect:` line",
            path.display()
        );
        fixture
    }

    fn name(&self) -> String {
        self.path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    fn stem(&self) -> String {
        self.path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    /// `clp [--profiles-dir DIR] check FILE`, from the project dir (or HOME).
    fn check(&self, env: &Env) -> Output {
        let mut cmd = env.clp();
        if self.cwd_home {
            cmd.current_dir(&env.home);
        }
        if let Some(dir) = &self.profiles_dir {
            cmd.arg("--profiles-dir").arg(dir);
        }
        cmd.arg("check").arg(&self.path).output().unwrap()
    }

    /// Everything wrong with `clp check`'s answer for this fixture.
    fn problems(&self, out: &Output) -> Vec<String> {
        let (stdout, stderr) = text(out);
        let mut problems = Vec::new();
        if out.status.code() != Some(2) {
            problems.push(format!("exit code {:?}, expected 2", out.status.code()));
        }
        if stderr.contains("panicked") {
            problems.push("clp panicked".into());
        }
        let verdict = format!("invalid  {}  (", self.stem());
        if !stdout.contains(&verdict) {
            problems.push(format!("stdout lacks `{verdict}`"));
        }
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        for e in &self.expects {
            let prefix = e.prefix(&self.path);
            // A problem without a key must not have one in the output either.
            let found = errors.iter().any(|l| {
                l.starts_with(&prefix) && (e.key.is_some() || !l[prefix.len()..].starts_with('`'))
            });
            if !found {
                problems.push(format!("no line starts with `{prefix}`"));
            }
        }
        if errors.len() != self.expects.len() {
            problems.push(format!(
                "{} problems reported, {} expected",
                errors.len(),
                self.expects.len()
            ));
        }
        let n = self.expects.len();
        let summary = format!(
            "{n} problem{} found; 0 profiles valid",
            if n == 1 { "" } else { "s" }
        );
        if !stderr.contains(&summary) {
            problems.push(format!("stderr lacks the summary `{summary}`"));
        }
        problems
    }
}

fn bad_header(path: &Path, line: &str) -> ! {
    panic!("{}: bad header line `{line}`", path.display())
}

/// The output with the temporary and repository paths replaced by stable names.
fn scrub(env: &Env, text: &str) -> String {
    env.scrub(&text.replace(&fixtures_dir().display().to_string(), "[FIXTURES]"))
}

#[test]
fn every_invalid_profile_fails_check_where_it_says() {
    let env = Env::new();
    let files = toml_files("invalid");
    assert!(files.len() >= 45, "only {} invalid fixtures", files.len());

    let mut failures = Vec::new();
    let mut snapshot = String::new();
    for path in &files {
        let fixture = Fixture::read(path);
        let out = fixture.check(&env);
        let problems = fixture.problems(&out);
        let (_, stderr) = text(&out);
        if !problems.is_empty() {
            failures.push(format!(
                "{}:\n  {}\n--- stderr:\n{stderr}",
                fixture.name(),
                problems.join("\n  ")
            ));
        }
        snapshot.push_str(&format!("==== {} ====\n", fixture.name()));
        snapshot.push_str(&scrub(&env, &stderr));
        if !snapshot.ends_with('\n') {
            snapshot.push('\n');
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} invalid fixtures misbehave:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    insta::assert_snapshot!("invalid_corpus", snapshot);
}

#[test]
fn many_problems_are_reported_at_once() {
    let fixture = Fixture::read(&fixtures_dir().join("invalid/many_problems.toml"));
    assert!(fixture.expects.len() >= 5);
    let env = Env::new();
    let out = fixture.check(&env);
    let problems = fixture.problems(&out);
    assert!(problems.is_empty(), "{problems:#?}\n{}", text(&out).1);
    // In file order, so a user can fix them top to bottom.
    let (_, stderr) = text(&out);
    let lines: Vec<usize> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("error: "))
        .map(|l| {
            let rest = &l[l.find(".toml:").unwrap() + ".toml:".len()..];
            rest.split(':').next().unwrap().parse().unwrap()
        })
        .collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
}

#[test]
fn every_valid_profile_passes_check() {
    let env = Env::new();
    let files = toml_files("valid");
    assert!(files.len() >= 8, "only {} valid fixtures", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let out = env.clp().arg("check").arg(path).output().unwrap();
        let (stdout, stderr) = text(&out);
        let stem = path.file_stem().unwrap().to_string_lossy();
        let verdict = format!("ok       {stem}  (");
        if out.status.code() != Some(0) || !stdout.contains(&verdict) || !stderr.is_empty() {
            failures.push(format!(
                "{}: exit code {:?}\n--- stdout:\n{stdout}--- stderr:\n{stderr}",
                path.display(),
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // All at once, too: one `clp check` over the whole directory.
    let out = env.clp().arg("check").args(&files).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        files.len()
    );
}
