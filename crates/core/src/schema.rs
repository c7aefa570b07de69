//! The profile JSON Schema, generated from [`RawProfile`], and Claude Code's settings schema.
//!
//! `schemas/profile.schema.json` is this module's output, committed so editors can
//! complete keys; a test fails with the diff when the types and the file drift apart.
//! Claude Code's own settings schema (SchemaStore's, vendored under `schemas/`) checks the
//! settings.json clp renders and the raw `claude.settings` a profile adds.

use std::sync::OnceLock;

use serde_json::Value;

use crate::model::RawProfile;

/// The schema's `$id`.
pub const PROFILE_SCHEMA_ID: &str = "https://clp.dev/schemas/profile.schema.json";

/// Claude Code's settings schema (SchemaStore, Apache-2.0), as vendored in `schemas/`.
pub const CLAUDE_SETTINGS_SCHEMA: &str =
    include_str!("../schemas/claude-code-settings.schema.json");

/// The profile schema as a JSON value, generated once per process.
pub fn profile_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let schema = schemars::generate::SchemaSettings::draft2020_12()
            .into_generator()
            .into_root_schema_for::<RawProfile>();
        let mut value = serde_json::to_value(schema).expect("a schema serializes");
        drop_nulls(&mut value);
        if let Value::Object(map) = &mut value {
            map.insert("$id".into(), Value::String(PROFILE_SCHEMA_ID.into()));
        }
        value
    })
}

/// Claude Code's settings schema as a JSON value, parsed once per process.
fn claude_settings_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::from_str(CLAUDE_SETTINGS_SCHEMA).expect("the vendored schema is JSON")
    })
}

/// The profile schema as the text of `schemas/profile.schema.json`.
pub fn profile_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(profile_schema()).expect("a schema serializes");
    text.push('\n');
    text
}

/// TOML has no null, so the `null` alternatives schemars emits for `Option` fields only
/// blur the errors ("not valid under any of the schemas") and the completions.
fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.pop().expect("one type");
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(any)) = map.get("anyOf") {
                let rest: Vec<Value> = any
                    .iter()
                    .filter(|s| s.get("type").and_then(Value::as_str) != Some("null"))
                    .cloned()
                    .collect();
                if rest.len() == 1 {
                    map.remove("anyOf");
                    if let Value::Object(inner) = &rest[0] {
                        for (k, v) in inner {
                            map.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                }
            }
            // Enums whose variants carry doc comments come out as `oneOf` of `const`s,
            // which validators report as "not valid under any of the schemas"; an `enum`
            // says which values are allowed.
            if let Some(Value::Array(one)) = map.get("oneOf") {
                let consts: Option<Vec<Value>> =
                    one.iter().map(|v| v.get("const").cloned()).collect();
                if let Some(consts) = consts {
                    map.remove("oneOf");
                    map.insert("enum".into(), Value::Array(consts));
                    map.entry("type")
                        .or_insert_with(|| Value::String("string".into()));
                }
            }
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// The compiled profile schema.
pub fn profile_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::validator_for(profile_schema()).expect("the generated schema compiles")
    })
}

/// The compiled Claude Code settings schema.
pub fn claude_settings_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        settings_validator(claude_settings_schema()).expect("the vendored schema compiles")
    })
}

/// Compiles a Claude Code settings schema the way clp validates settings: draft-07 as the
/// file declares, offline (no remote `$ref`s), formats not asserted.
pub fn settings_validator(
    schema: &Value,
) -> Result<jsonschema::Validator, jsonschema::ValidationError<'static>> {
    jsonschema::options().build(schema)
}

/// Every problem in a settings value, as (JSON pointer, message).
pub fn settings_errors(settings: &Value) -> Vec<(String, String)> {
    claude_settings_validator()
        .iter_errors(settings)
        .map(|e| (e.instance_path().as_str().to_owned(), e.to_string()))
        .collect()
}

/// The profile reference (`docs/profile-reference.md`), generated from the schema so the
/// manual and the validator cannot disagree.
pub fn reference_markdown() -> String {
    let schema = profile_schema();
    let mut out = String::from(
        "# Profile reference\n\n\
         Generated from `schemas/profile.schema.json` (itself generated from the Rust types); \
         do not edit by hand. Regenerate with \
         `CLP_UPDATE_SCHEMA=1 cargo test -p clp-core --test core schema`.\n\n\
         Every key is optional. Keys are kebab-case; unknown keys are errors.\n",
    );
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return out;
    };
    let mut top =
        String::from("\n## Top-level keys\n\n| key | type | description |\n| --- | --- | --- |\n");
    let mut tables = String::new();
    for (key, prop) in props {
        let node = resolve_ref(schema, prop);
        if node.get("properties").is_some() {
            tables.push_str(&format!("\n## `[{key}]`\n\n{}\n\n", describe(prop, node)));
            tables.push_str("| key | type | description |\n| --- | --- | --- |\n");
            for (sub, sprop) in node["properties"].as_object().into_iter().flatten() {
                let snode = resolve_ref(schema, sprop);
                tables.push_str(&format!(
                    "| `{key}.{sub}` | {} | {} |\n",
                    type_name(snode),
                    cell(&describe(sprop, snode))
                ));
            }
        } else {
            top.push_str(&format!(
                "| `{key}` | {} | {} |\n",
                type_name(node),
                cell(&describe(prop, node))
            ));
        }
    }
    out.push_str(&top);
    out.push_str(&tables);
    out
}

pub(crate) fn resolve_ref<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    node.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|p| root.pointer(p))
        .unwrap_or(node)
}

fn describe(prop: &Value, node: &Value) -> String {
    prop.get("description")
        .or_else(|| node.get("description"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn type_name(node: &Value) -> String {
    if let Some(values) = node.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .filter_map(Value::as_str)
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(" \\| ");
    }
    if let Some(one) = node.get("oneOf").and_then(Value::as_array) {
        return one
            .iter()
            .filter_map(|v| {
                v.get("const")
                    .or_else(|| v.get("enum").and_then(|e| e.get(0)))
            })
            .filter_map(Value::as_str)
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(" \\| ");
    }
    match node.get("type").and_then(Value::as_str) {
        Some("array") => format!(
            "list of {}",
            node.get("items")
                .map(type_name)
                .unwrap_or_else(|| "values".into())
        ),
        Some("object") => "table".into(),
        Some(t) => t.into(),
        None => "value".into(),
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace("\n\n", "<br><br>")
        .replace('\n', " ")
}

/// The top-level keys Claude Code's settings schema knows.
pub fn claude_settings_keys() -> Vec<String> {
    claude_settings_schema()
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}
