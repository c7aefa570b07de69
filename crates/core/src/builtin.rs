//! The shipped profiles in `profiles/`, compiled into the binary.
//!
//! They are ordinary profile files: the same schema and tests cover them as user files,
//! and a user file of the same name replaces one.

macro_rules! builtin {
    ($name:literal) => {
        (
            $name,
            concat!("profiles/", $name, ".toml"),
            include_str!(concat!("../profiles/", $name, ".toml")),
        )
    };
}

/// (name, repository path, text) of every built-in profile.
pub const BUILTINS: &[(&str, &str, &str)] = &[
    builtin!("local-container"),
    builtin!("local-env"),
    builtin!("local-glm"),
    builtin!("local-gpt-oss"),
    builtin!("local-qwen"),
    builtin!("oauth"),
];
