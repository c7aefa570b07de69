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
    include_str!("../../../schemas/claude-code-settings.schema.json");

/// The profile schema as a JSON value.
pub fn profile_schema() -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<RawProfile>();
    let mut value = serde_json::to_value(schema).expect("a schema serializes");
    drop_nulls(&mut value);
    if let Value::Object(map) = &mut value {
        map.insert("$id".into(), Value::String(PROFILE_SCHEMA_ID.into()));
    }
    value
}

/// The profile schema as the text of `schemas/profile.schema.json`.
pub fn profile_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&profile_schema()).expect("a schema serializes");
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
        jsonschema::validator_for(&profile_schema()).expect("the generated schema compiles")
    })
}

/// The compiled Claude Code settings schema.
pub fn claude_settings_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(CLAUDE_SETTINGS_SCHEMA).expect("the vendored schema is JSON");
        settings_validator(&schema).expect("the vendored schema compiles")
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
