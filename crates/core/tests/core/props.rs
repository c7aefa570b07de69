//! Property tests: whatever a profile file holds, loading it never panics and ends in a
//! profile or in diagnostics with a file and a line; every profile that loads renders a
//! settings.json Claude Code's schema accepts and an argv that survives shell quoting;
//! and the portable render depends on the profile alone, not on the machine.
//!
//! Two generators: TOML text (random characters, and token soup made of TOML syntax and
//! the profile's own keys), and profiles with a random value in every field (plausible
//! values, hostile strings, wrong types), whose field list is checked against the schema
//! so a new key cannot be left out.
//!
//! CI runs proptest's default of 256 cases per property. To run millions locally:
//!
//! ```text
//! PROPTEST_CASES=1000000 cargo test --release -p clp-core --test core props
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use clp_core::host::{FsView, HostUser};
use clp_core::layer::{check_text, Layer};
use clp_core::plan::SETTINGS_FILE;
use clp_core::render::render_use;
use clp_core::report::portable;
use clp_core::source::{Origin, Source};
use clp_core::{resolve, Catalog, Host, LoadError, SearchPath};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// The generated profile, as the file `prop.toml` in `host`'s profile dir (where its
/// relative paths resolve).
fn source_on(host: &Host, text: &str) -> Source {
    Source {
        name: "prop".into(),
        origin: Origin::File,
        path: host.profiles_dir.join("prop.toml"),
        text: text.to_owned(),
    }
}

/// Loads the profile `source` (and the built-ins it may extend).
fn load(source: Source) -> Result<clp_core::Loaded, LoadError> {
    let mut catalog = Catalog::new(SearchPath::default());
    catalog.insert(source.clone());
    catalog.load_source(source, &[])
}

fn config() -> ProptestConfig {
    ProptestConfig {
        // A failing case is printed, shrunk; nothing is written into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- hosts ---------------------------------------------------------------------------

/// A second machine that differs from [`Host::fixture`] in everything a portable render
/// hides: the user, the ids, the home, the working dir, where programs are.
fn other_host() -> Host {
    let mut h = Host::fixture();
    let home = PathBuf::from("/home/alice");
    h.uid = 1001;
    h.gid = 1001;
    h.user = "alice".into();
    h.env.insert("HOME".into(), "/home/alice".into());
    h.env.insert("USER".into(), "alice".into());
    h.cwd = home.join("project");
    h.state_dir = home.join(".local/state/clp");
    h.runtime_dir = PathBuf::from("/run/user/1001/clp");
    h.profiles_dir = home.join(".config/clp/profiles");
    for (name, path) in h.programs.iter_mut() {
        *path = PathBuf::from("/opt/bin").join(name);
    }
    h.program_targets = h.programs.clone();
    h.cwd_owner = (1001, 1001);
    h.users = [(
        "alice".to_owned(),
        HostUser {
            uid: 1001,
            gid: 1001,
            name: "alice".into(),
        },
    )]
    .into_iter()
    .collect();
    h.existing = [".git", ".git/hooks", ".git/config"]
        .iter()
        .map(|p| home.join("project").join(p))
        .chain([home.join(".claude/ide")])
        .collect();
    h.files = [home.join("project/.git/config")].into_iter().collect();
    h.fs = FsView::Fixed(BTreeMap::new());
    h.home = home;
    h
}

/// What differs between the two hosts; a value holding one of these would legitimately
/// render differently (a path written into one machine's home), so generated values
/// avoid them.
const HOST_WORDS: &[&str] = &[
    "user", "alice", "1000", "1001", "/home", "/usr/bin", "/opt/bin", "/run",
];

// ---- the referee ---------------------------------------------------------------------

/// Claude Code's settings schema, from the conformance fixtures (skipped when absent,
/// a failure under `CLP_REQUIRE_ALL=1`).
fn referee() -> Option<&'static jsonschema::Validator> {
    static V: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    V.get_or_init(|| {
        let dir = std::env::var_os("CLP_CONFORMANCE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
            });
        let file = dir.join("claude-code-settings.schema.json");
        let Ok(text) = std::fs::read_to_string(&file) else {
            if std::env::var("CLP_REQUIRE_ALL").as_deref() == Ok("1") {
                panic!("{} missing (CLP_REQUIRE_ALL=1)", file.display());
            }
            eprintln!("SKIPPED: the settings referee: {} missing", file.display());
            return None;
        };
        let schema: Value = serde_json::from_str(&text).unwrap();
        Some(clp_core::schema::settings_validator(&schema).unwrap())
    })
    .as_ref()
}

// ---- what must hold for one file -----------------------------------------------------

/// How far a profile got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A located problem in the file.
    Invalid,
    /// Loaded, but a rule about the whole profile refused it.
    Refused,
    /// Resolved, but this host cannot launch it.
    Unlaunchable,
    /// Rendered, and every property of the render held.
    Rendered,
}

/// Loads `text` as the profile `prop` and checks every property on the way.
fn check_everything(text: &str) -> Result<Outcome, TestCaseError> {
    let host = Host::fixture();
    let source = source_on(&host, text);
    let label = source.label();

    // One file: the launch path's quick check and the located check agree, and every
    // diagnostic has a line and a column in the file.
    let checked = check_text(&label, text);
    for d in &checked.diagnostics {
        prop_assert!(d.origin == label && d.line >= 1 && d.column >= 1, "{d:?}");
    }
    let fast = Layer::read(source.clone()).is_ok();
    prop_assert_eq!(
        fast,
        checked.diagnostics.is_empty(),
        "fast and located checks disagree"
    );

    let loaded = match load(source) {
        Ok(l) => l,
        Err(LoadError::Invalid(d)) => {
            prop_assert!(!d.is_empty());
            for d in &d.0 {
                prop_assert!(!d.origin.is_empty() && d.line >= 1, "unlocated: {d:?}");
            }
            return Ok(Outcome::Invalid);
        }
        Err(other) => return Err(TestCaseError::fail(format!("not a diagnostic: {other}"))),
    };
    let profile = match resolve(&loaded, &host) {
        Ok(p) => p,
        Err(d) => {
            prop_assert!(!d.is_empty());
            for d in &d.0 {
                prop_assert!(!d.origin.is_empty(), "no origin: {d:?}");
            }
            return Ok(Outcome::Refused);
        }
    };
    let plan = match render_use(&profile, &host, &[]) {
        Ok(p) => p,
        // A profile the host cannot launch (no user to run as, say) says why; it is not
        // a crash. Only a failure of clp itself would be `Os`.
        Err(e) => {
            prop_assert!(e.kind != clp_core::Kind::Os, "{e}");
            return Ok(Outcome::Unlaunchable);
        }
    };

    // settings.json: Claude Code's schema accepts it.
    if let Some(v) = referee() {
        for f in plan
            .files
            .iter()
            .filter(|f| f.path.ends_with(SETTINGS_FILE))
        {
            let json: Value = serde_json::from_str(&f.contents)
                .map_err(|e| TestCaseError::fail(format!("settings.json: {e}")))?;
            let errors: Vec<String> = v.iter_errors(&json).map(|e| e.to_string()).collect();
            prop_assert!(
                errors.is_empty(),
                "settings.json rejected: {errors:?}\n{json:#}"
            );
        }
    }

    // Nothing the plan hands to the OS (argv, environment, paths, files) holds a NUL:
    // the launch would fail with an OS error instead of a located one.
    let json = serde_json::to_string(&plan).unwrap();
    prop_assert!(!json.contains("\\u0000"), "a NUL in the plan: {json}");

    // argv: every element survives shell quoting.
    let joined = shlex::try_join(plan.argv.iter().map(String::as_str))
        .map_err(|e| TestCaseError::fail(format!("argv cannot be quoted: {e}")))?;
    let split = shlex::split(&joined);
    prop_assert_eq!(split.as_ref(), Some(&plan.argv));

    // The portable render is a function of the profile alone (for a profile that names
    // nothing of either machine).
    if mentions_a_host(&serde_json::to_value(&loaded.raw).unwrap()) {
        return Ok(Outcome::Rendered);
    }
    let other = other_host();
    let theirs = load(source_on(&other, text))
        .map_err(|e| TestCaseError::fail(format!("loads here, not there: {e}")))?;
    let theirs = resolve(&theirs, &other)
        .map_err(|d| TestCaseError::fail(format!("resolves here, not there: {d}")))?;
    let theirs = render_use(&theirs, &other, &[])
        .map_err(|e| TestCaseError::fail(format!("renders here, not there: {e}")))?;
    let pretty = |p| serde_json::to_string_pretty(&p).unwrap();
    let (a, b) = (
        pretty(portable(&plan, &host)),
        pretty(portable(&theirs, &other)),
    );
    let differ: Vec<String> = a
        .lines()
        .zip(b.lines())
        .filter(|(x, y)| x != y)
        .map(|(x, y)| format!("{x}\n  vs {y}"))
        .collect();
    prop_assert!(
        a == b,
        "the portable render differs between two machines:\n{}",
        differ.join("\n")
    );
    Ok(Outcome::Rendered)
}

// ---- generators ----------------------------------------------------------------------

/// Pieces that break things: controls, quotes, path tricks, URL parts, near-keys.
const PIECES: &[&str] = &[
    "\0",
    "\u{1b}[2J",
    "\u{7f}",
    "\u{9b}",
    "\t",
    "\n",
    "\r\n",
    "\"",
    "'",
    "\\",
    "$HOME",
    "~",
    "~/",
    "..",
    "/",
    "./",
    "/v1",
    " ",
    "@",
    ":",
    "://",
    "*",
    "*.",
    "(",
    ")",
    "é",
    "\u{202e}",
    "sk-ant-",
    "http://127.0.0.1:8080",
    "https://example.com",
    "me:pw@",
    "Bash",
    "Bash(git *)",
    "glm",
    "-",
    "--",
    "=",
    "#",
    "[",
    "]",
    "{",
    "}",
    ",",
    "%",
    "!",
    "`",
    ";",
    "|",
    "&",
];

fn text() -> BoxedStrategy<String> {
    let piece = prop_oneof![
        proptest::sample::select(PIECES).prop_map(str::to_owned),
        "[a-z0-9._-]{1,8}",
        any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        proptest::collection::vec(piece, 0..5).prop_map(|v| v.concat()),
        ".{0,16}",
    ]
    .boxed()
}

fn any_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::from),
        prop_oneof![
            any::<i64>(),
            Just(0i64),
            Just(-1),
            Just(1024),
            Just(3600),
            Just(3601),
            Just(u32::MAX as i64 + 1)
        ]
        .prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z-]{1,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

fn strings(list: &'static [&'static str]) -> BoxedStrategy<Value> {
    proptest::sample::select(list).prop_map(Value::from).boxed()
}

fn array_of(item: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    proptest::collection::vec(item, 0..4)
        .prop_map(Value::Array)
        .boxed()
}

const URLS: &[&str] = &[
    "http://127.0.0.1:8080",
    "http://localhost:8080/",
    "https://api.example.com",
    "http://[::1]:9",
    "http://127.0.0.1:8080/v1",
    "http://me:pw@127.0.0.1:8080",
    "ftp://example.com",
    "127.0.0.1:8080",
];
const PATHS: &[&str] = &[
    "~/src/p",
    "~/a b",
    "/srv/p",
    "rel/dir",
    "~/..",
    "~",
    "/",
    "/tmp",
    "/etc",
    "~/.ssh",
    "~/src/../src/p",
    "$HOME/x",
    ".",
];
const RULES: &[&str] = &[
    "Bash",
    "Bash(git status)",
    "Read(./src/**)",
    "Edit(src/**)",
    "WebFetch(domain:example.com)",
    "mcp__server__tool",
    "Bash(",
    "",
];
const NAMES: &[&str] = &[
    "local-env",
    "local-glm",
    "local-container",
    "oauth",
    "missing",
    "prop",
];
const ENV_NAMES: &[&str] = &[
    "FOO",
    "_X1",
    "DISABLE_AUTOUPDATER",
    "ANTHROPIC_MODEL",
    "1BAD",
];
const HOSTS: &[&str] = &[
    "github.com",
    "*.npmjs.org",
    "pypi.org:443",
    "[::1]:8080",
    "a..b",
];

/// Plausible values for `field`, or anything at all.
fn value_for(field: &str) -> BoxedStrategy<Value> {
    let plausible: BoxedStrategy<Value> = match field {
        "extends" => strings(NAMES),
        "alias" => prop_oneof!["[a-z][a-z0-9-]{0,8}".prop_map(Value::from)].boxed(),
        "auth.mode" => strings(&["oauth", "api-key", "auth-token"]),
        "auth.token" => strings(&["llamacpp", "sk-ant-api03-x", "t"]),
        "auth.token-env" | "auth.key-env" => strings(ENV_NAMES),
        "auth.token-command" | "auth.key-command" | "backend.switch.command" => {
            strings(&["pass show x", "echo t", "printf '%s' \"$X\""])
        }
        "backend.url" => strings(URLS),
        "backend.health" | "backend.models" => strings(&["/health", "/v1/models", "health"]),
        "backend.check" | "workspace.protect-git" | "workspace.trust" => {
            any::<bool>().prop_map(Value::from).boxed()
        }
        "backend.wait" => (0u32..4000).prop_map(Value::from).boxed(),
        "backend.switch.url" => strings(&["/models/load", "http://127.0.0.1:8081/switch", "x"]),
        "backend.switch.method" => strings(&["GET", "POST", "PUT", "DELETE"]),
        "backend.switch.body" => strings(&["{\"model\": \"m\"}", "", "not json"]),
        f if f.starts_with("model.") && f != "model.context" => {
            strings(&["glm-flash-q4", "qwen", "m"])
        }
        "model.context" => (0u32..20_000_000).prop_map(Value::from).boxed(),
        "isolation.level" => strings(&["env", "sandbox", "container", "A", "B", "C", "D"]),
        "isolation.config-dir" => strings(PATHS),
        "isolation.user" => strings(&["nobody", "0", "root", "65534"]),
        "network.mode" => strings(&["open", "allowlist", "offline"]),
        "network.allow" => array_of(strings(HOSTS)),
        "workspace.path" => strings(PATHS),
        "workspace.read-only" | "workspace.writable" => array_of(strings(PATHS)),
        "workspace.protect" => array_of(strings(&[".git", ".envrc", "../x", "/abs", "a/b"])),
        "permissions.allow" | "permissions.ask" | "permissions.deny" => array_of(strings(RULES)),
        "env" => proptest::collection::btree_map(
            proptest::sample::select(ENV_NAMES).prop_map(str::to_owned),
            text().prop_map(Value::from),
            0..3,
        )
        .prop_map(|m| Value::Object(m.into_iter().collect()))
        .boxed(),
        "claude.command" => strings(&["claude", "/opt/claude/bin/claude", "./claude"]),
        "claude.args" => array_of(text().prop_map(Value::from).boxed()),
        "claude.version" => strings(&[">=2.1.300", "=2.1.330", "latest", "2"]),
        "claude.share" => array_of(strings(&["CLAUDE.md", "agents", "settings.json", ".."])),
        "claude.settings" => {
            let keys = clp_core::schema::claude_settings_keys();
            proptest::collection::btree_map(proptest::sample::select(keys), any_value(), 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
                .boxed()
        }
        "container.engine" => strings(&["auto", "docker", "podman", "lxc"]),
        "container.image" => strings(&["localhost/clp-claude:2.1.330", "debian", "a b"]),
        _ => text().prop_map(Value::from).boxed(),
    };
    prop_oneof![
        6 => plausible,
        2 => text().prop_map(Value::from),
        2 => hostile(),
        1 => any_value(),
    ]
    .boxed()
}

/// Strings no program argument, variable or terminal should get, often.
fn hostile() -> BoxedStrategy<Value> {
    let s = proptest::sample::select(
        &[
            "a\0b",
            "\0",
            "\u{1b}[2J",
            "x\u{7}",
            "\u{9b}1m",
            "\u{7f}",
            "a\0",
            "\u{0}\u{1}",
        ][..],
    );
    prop_oneof![
        s.clone().prop_map(Value::from),
        proptest::collection::vec(s, 1..3)
            .prop_map(|v| Value::Array(v.into_iter().map(Value::from).collect())),
    ]
    .boxed()
}

/// Every leaf key of the profile schema, dotted.
fn schema_fields() -> Vec<String> {
    fn deref<'a>(schema: &'a Value, node: &'a Value) -> &'a Value {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) => schema
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("{r}")),
            None => node,
        }
    }
    fn walk(schema: &Value, node: &Value, path: &str, out: &mut Vec<String>) {
        let node = deref(schema, node);
        let node = node
            .get("anyOf")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .find(|n| n.get("type") != Some(&Value::from("null")))
            })
            .map(|n| deref(schema, n))
            .unwrap_or(node);
        match node.get("properties").and_then(Value::as_object) {
            Some(props) if path != "env" && path != "claude.settings" => {
                for (k, v) in props {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(schema, v, &p, out);
                }
            }
            _ => out.push(path.to_owned()),
        }
    }
    let schema = clp_core::schema::profile_schema();
    let mut out = Vec::new();
    walk(schema, schema, "", &mut out);
    out
}

/// A profile with each field present or not, holding any value.
fn profile() -> impl Strategy<Value = Value> {
    let fields = schema_fields();
    let each: Vec<_> = fields
        .iter()
        .map(|f| proptest::option::weighted(0.3, value_for(f)))
        .collect();
    each.prop_map(move |values| {
        let mut root = Map::new();
        for (field, value) in fields.iter().zip(values) {
            if let Some(value) = value {
                insert(&mut root, field, value);
            }
        }
        Value::Object(root)
    })
}

/// Whether a string value anywhere in `v` names something of one host only.
fn mentions_a_host(v: &Value) -> bool {
    match v {
        Value::String(s) => HOST_WORDS.iter().any(|w| s.contains(w)),
        Value::Array(a) => a.iter().any(mentions_a_host),
        Value::Object(m) => m.values().any(mentions_a_host),
        _ => false,
    }
}

/// TOML-shaped text: syntax, the profile's keys and values, in any order.
fn token_soup() -> impl Strategy<Value = String> {
    let mut words: Vec<String> = schema_fields();
    words.extend(
        [
            "[",
            "]",
            "[[",
            "]]",
            "=",
            " = ",
            "\n",
            "\r\n",
            "\"",
            "'",
            "\"\"\"",
            "'''",
            "{",
            "}",
            ",",
            ".",
            "#",
            "true",
            "1",
            "-1",
            "1.5",
            "1979-05-27",
            "inf",
            "nan",
            "\\u0000",
            "\\",
            "[env]",
            "[backend]",
            "[claude.settings]",
            "\u{feff}",
            "\0",
            "é",
        ]
        .map(str::to_owned),
    );
    words.extend(
        URLS.iter()
            .chain(PATHS)
            .chain(NAMES)
            .map(|s| format!("\"{s}\"")),
    );
    proptest::collection::vec(proptest::sample::select(words), 0..40).prop_map(|w| w.concat())
}

/// Text a valid profile may hold anywhere: no control character but tab and line feed,
/// nothing of either host.
fn clean_text() -> BoxedStrategy<Value> {
    text()
        .prop_map(|t| {
            t.chars()
                .filter(|c| !c.is_control() || matches!(c, '\t' | '\n'))
                .collect::<String>()
        })
        .prop_filter("names a host, or looks like an API key", |t| {
            !HOST_WORDS.iter().any(|w| t.contains(w)) && !t.starts_with("sk-ant-")
        })
        .prop_map(Value::from)
        .boxed()
}

fn non_empty_text() -> BoxedStrategy<Value> {
    clean_text()
        .prop_filter("empty", |v| v.as_str() != Some(""))
        .boxed()
}

/// Settings Claude Code's schema accepts, to pass through `claude.settings`.
fn valid_settings() -> BoxedStrategy<Value> {
    let pair = prop_oneof![
        (1u32..400).prop_map(|n| ("cleanupPeriodDays", Value::from(n))),
        any::<bool>().prop_map(|b| ("includeCoAuthoredBy", Value::from(b))),
        non_empty_text().prop_map(|t| ("outputStyle", t)),
        proptest::collection::vec(non_empty_text(), 0..3)
            .prop_map(|v| ("companyAnnouncements", Value::Array(v))),
    ];
    proptest::collection::vec(pair, 0..3)
        .prop_map(|pairs| {
            Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        })
        .boxed()
}

/// Values that break no rule of one file, for the fields where that is easy to say;
/// the whole-profile rules (credentials and mode, the workspace) still refuse some.
fn valid_value_for(field: &str) -> BoxedStrategy<Value> {
    match field {
        "description"
        | "model.default"
        | "model.opus"
        | "model.sonnet"
        | "model.haiku"
        | "container.image"
        | "backend.switch.body" => non_empty_text(),
        "extends" => strings(&["local-env", "local-glm", "local-container", "local-qwen"]),
        "alias" => "[a-z][a-z0-9-]{0,8}".prop_map(Value::from).boxed(),
        "auth.mode" | "auth.token-env" | "auth.token-command" | "auth.key-env"
        | "auth.key-command" => strings(&[]),
        "auth.token" => strings(&["llamacpp", "t0k3n"]),
        "backend.url" => strings(&[
            "http://127.0.0.1:8080",
            "http://localhost:8080/",
            "https://api.example.com",
            "http://[::1]:9",
            "http://127.0.0.1:8080/prefix",
        ]),
        "backend.health" | "backend.models" => "/[a-z0-9/._-]{0,12}".prop_map(Value::from).boxed(),
        "backend.switch.command" | "backend.switch.url" => strings(&[]),
        "backend.switch.method" => strings(&["GET", "POST", "PUT"]),
        "backend.wait" => (0u32..=3600).prop_map(Value::from).boxed(),
        "model.context" => (1024u32..=10_000_000).prop_map(Value::from).boxed(),
        "isolation.level" => strings(&["env", "sandbox", "container", "A", "B", "C"]),
        "isolation.config-dir" => strings(&["~/cfg/claude", "/srv/claude-cfg", "~/a b/c"]),
        "isolation.user" => strings(&[]),
        "network.mode" => strings(&["open", "allowlist", "offline"]),
        "network.allow" => array_of(strings(&["github.com", "*.npmjs.org", "pypi.org:443"])),
        "workspace.path" => strings(&["~/src/p", "/srv/p", "~/a b/p", "~/src/../src/p"]),
        "workspace.read-only" | "workspace.writable" => {
            array_of(strings(&["~/lib", "/srv/data", "~/a b/c", "~/src/p/sub"]))
        }
        "workspace.protect" => array_of(strings(&[".git", ".envrc", "a b/c", "Makefile"])),
        "permissions.allow" | "permissions.ask" | "permissions.deny" => array_of(strings(&[
            "Bash",
            "Bash(git status)",
            "Read(./src/**)",
            "Edit(src/**)",
            "WebFetch(domain:example.com)",
        ])),
        "env" => proptest::collection::btree_map("[A-Z][A-Z0-9_]{0,6}", clean_text(), 0..3)
            .prop_filter("managed", |m| {
                m.keys()
                    .all(|k| !clp_core::policy::MANAGED_ENV.contains(&k.as_str()))
            })
            .prop_map(|m| Value::Object(m.into_iter().collect()))
            .boxed(),
        "claude.command" => strings(&["claude", "/opt/claude/bin/claude"]),
        "claude.args" => array_of(clean_text()),
        "claude.version" => strings(&[">=2.1.300", "=2.1.330", "^2"]),
        "claude.settings" => valid_settings(),
        "container.engine" => strings(&["auto", "docker", "podman"]),
        "claude.share" => array_of(strings(&[
            "CLAUDE.md",
            "agents",
            "skills",
            "commands",
            "output-styles",
        ])),
        "backend.check" | "workspace.protect-git" | "workspace.trust" => {
            any::<bool>().prop_map(Value::from).boxed()
        }
        other => panic!("no valid values for `{other}`: add them here"),
    }
}

/// A profile that extends a shipped one and sets some fields to valid values.
fn valid_profile() -> impl Strategy<Value = Value> {
    let fields: Vec<String> = schema_fields()
        .into_iter()
        .filter(|f| !(f.starts_with("auth.") || f.starts_with("backend.switch.")))
        .filter(|f| f != "isolation.user")
        .collect();
    let each: Vec<_> = fields
        .iter()
        .map(|f| {
            let p = if f == "extends" { 0.999 } else { 0.25 };
            proptest::option::weighted(p, valid_value_for(f))
        })
        .collect();
    let switch = proptest::option::weighted(
        0.2,
        prop_oneof![
            strings(&["/models/load", "http://127.0.0.1:8081/switch"])
                .prop_map(|u| serde_json::json!({ "url": u })),
            Just(serde_json::json!({ "command": "true" })),
        ],
    );
    (each, switch).prop_map(move |(values, switch)| {
        let mut root = Map::new();
        for (field, value) in fields.iter().zip(values) {
            let Some(value) = value else { continue };
            insert(&mut root, field, value);
        }
        if let Some(s) = switch {
            insert(&mut root, "backend.switch", s);
        }
        Value::Object(root)
    })
}

fn insert(root: &mut Map<String, Value>, field: &str, value: Value) {
    let parts: Vec<&str> = field.split('.').collect();
    let mut table = root;
    for p in &parts[..parts.len() - 1] {
        table = table
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .unwrap();
    }
    table.insert(parts[parts.len() - 1].to_owned(), value);
}

// ---- the properties ------------------------------------------------------------------

/// The generator covers every field the schema has (a new key must be added here).
#[test]
fn every_schema_field_is_generated() {
    let fields = schema_fields();
    assert!(fields.len() > 40, "{fields:?}");
    for f in &fields {
        assert!(f.split('.').all(|p| !p.is_empty()), "{f}");
    }
    for f in [
        "backend.switch.url",
        "claude.settings",
        "env",
        "workspace.protect",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} missing: {fields:?}");
    }
}

proptest! {
    #![proptest_config(config())]

    /// Random characters.
    #[test]
    fn any_text_is_a_profile_or_located(text in ".{0,200}") {
        check_everything(&text)?;
    }

    /// TOML syntax and the profile's own words in random order.
    #[test]
    fn token_soup_is_a_profile_or_located(text in token_soup()) {
        check_everything(&text)?;
    }

    /// A value of any kind in every field, written as TOML.
    #[test]
    fn any_value_in_every_field(doc in profile()) {
        let text = toml::to_string(&doc).map_err(|e| TestCaseError::reject(e.to_string()))?;
        check_everything(&text)?;
    }

    /// A valid profile with one to three fields set to anything (hostile strings, wrong
    /// types): so that a bad value meets an otherwise launchable profile, and either is
    /// reported at its place or renders with every property holding.
    #[test]
    fn a_valid_profile_with_any_value_in_some_fields(doc in valid_with_any_values()) {
        let text = toml::to_string(&doc).map_err(|e| TestCaseError::reject(e.to_string()))?;
        check_everything(&text)?;
    }
}

/// A valid profile with a few fields replaced by values of any kind.
fn valid_with_any_values() -> impl Strategy<Value = Value> {
    let field = proptest::sample::select(schema_fields())
        .prop_flat_map(|f| (Just(f.clone()), value_for(&f)));
    (valid_profile(), proptest::collection::vec(field, 1..4)).prop_map(|(mut doc, changes)| {
        for (field, value) in changes {
            insert(doc.as_object_mut().unwrap(), &field, value);
        }
        doc
    })
}

/// Valid profiles, counted: most of them must get through to a render, or the
/// properties above would hold of nothing (the control for the generator itself).
#[test]
fn valid_profiles_render_and_their_renders_hold() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let counts: [AtomicUsize; 4] = Default::default();
    let mut runner = proptest::test_runner::TestRunner::new(config());
    let cases = runner.config().cases as usize;
    let result = runner.run(&valid_profile(), |doc| {
        let text = toml::to_string(&doc).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let outcome = check_everything(&text)?;
        counts[outcome as usize].fetch_add(1, Ordering::Relaxed);
        prop_assert!(
            outcome != Outcome::Invalid,
            "a valid profile is invalid:\n{text}"
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let [_, refused, unlaunchable, rendered] = counts.map(|c| c.into_inner());
    eprintln!("rendered {rendered}, refused {refused}, unlaunchable {unlaunchable}");
    assert!(
        rendered * 2 >= cases,
        "only {rendered} of {cases} valid profiles rendered ({refused} refused, \
         {unlaunchable} unlaunchable)"
    );
}
