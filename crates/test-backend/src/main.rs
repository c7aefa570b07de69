//! The `clp-test-backend` binary: parses command-line flags into a
//! [`Config`], starts the backend, prints `listening on <url>` and serves
//! until killed.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clp_test_backend::{Backend, Config, HealthMode, ToolScript};
use serde_json::Value;

const USAGE: &str = "\
usage: clp-test-backend [--port N] [--reply TEXT] [--model ID]... [--log FILE]
                        [--bash-tool CMD | --tool NAME [--tool-input JSON]]
                        [--loading]

A fake Anthropic Messages API server on 127.0.0.1 for tests.
  --port N         port to bind (default: any free port)
  --reply TEXT     text of plain replies (default: pong)
  --model ID       model id listed by /v1/models (repeatable; default: glm-flash-q4)
  --log FILE       append each request to FILE as one JSON line
  --bash-tool CMD  answer the first turn with a Bash tool call running CMD,
                   then reply TOOL_RESULT:<output>
  --tool NAME      answer the first turn with a call of tool NAME when the
                   request offers it (else reply NO_TOOL:NAME), then reply
                   TOOL_RESULT:<output>
  --tool-input JSON
                   input object of the --tool call (default: {})
  --loading        answer every request 503 \"Loading model\" like llama-server";

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
    let mut config = Config::default();
    let mut models = Vec::new();
    let mut bash_tool = None;
    let mut tool = None;
    let mut tool_input = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--port" => {
                let v = value("--port")?;
                config.port = v.parse().map_err(|_| format!("bad port: {v}"))?;
            }
            "--reply" => config.reply_text = value("--reply")?,
            "--model" => models.push(value("--model")?),
            "--log" => config.log_file = Some(PathBuf::from(value("--log")?)),
            "--bash-tool" => bash_tool = Some(value("--bash-tool")?),
            "--tool" => tool = Some(value("--tool")?),
            "--tool-input" => {
                let v = value("--tool-input")?;
                let input: Value =
                    serde_json::from_str(&v).map_err(|e| format!("bad --tool-input: {e}"))?;
                if !input.is_object() {
                    return Err(format!("--tool-input must be a JSON object: {v}"));
                }
                tool_input = Some(input);
            }
            "--loading" => config.health = HealthMode::Loading,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    if !models.is_empty() {
        config.models = models;
    }
    config.script = match (bash_tool, tool, tool_input) {
        (Some(_), Some(_), _) => return Err("--bash-tool and --tool exclude each other".into()),
        (Some(command), None, None) => Some(ToolScript::Bash { command }),
        (_, None, Some(_)) => return Err("--tool-input needs --tool".into()),
        (None, Some(name), input) => Some(ToolScript::Tool {
            name,
            input: input.unwrap_or_else(|| Value::Object(Default::default())),
        }),
        (None, None, None) => None,
    };
    Ok(config)
}

fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("clp-test-backend: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let backend = match Backend::start(config) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("clp-test-backend: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", backend.url());
    let _ = out.flush();
    drop(out);
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_all_flags() {
        let c = parse_args(args(&[
            "--port",
            "1234",
            "--reply=hi",
            "--model",
            "a",
            "--model",
            "b",
            "--log",
            "/tmp/l",
            "--bash-tool",
            "echo x",
            "--loading",
        ]))
        .unwrap();
        assert_eq!(c.port, 1234);
        assert_eq!(c.reply_text, "hi");
        assert_eq!(c.models, vec!["a", "b"]);
        assert_eq!(c.log_file, Some(PathBuf::from("/tmp/l")));
        assert_eq!(
            c.script,
            Some(ToolScript::Bash {
                command: "echo x".into()
            })
        );
        assert_eq!(c.health, HealthMode::Loading);
    }

    #[test]
    fn parses_tool_flags() {
        let c = parse_args(args(&[
            "--tool",
            "mcp__ide__getDiagnostics",
            "--tool-input",
            r#"{"uri":"file:///w/a.rs"}"#,
        ]))
        .unwrap();
        assert_eq!(
            c.script,
            Some(ToolScript::Tool {
                name: "mcp__ide__getDiagnostics".into(),
                input: serde_json::json!({"uri": "file:///w/a.rs"}),
            })
        );
        let c = parse_args(args(&["--tool=X"])).unwrap();
        assert_eq!(
            c.script,
            Some(ToolScript::Tool {
                name: "X".into(),
                input: serde_json::json!({}),
            })
        );
        assert!(parse_args(args(&["--tool-input", "{}"])).is_err());
        assert!(parse_args(args(&["--tool", "X", "--tool-input", "[1]"])).is_err());
        assert!(parse_args(args(&["--tool", "X", "--tool-input", "{"])).is_err());
        assert!(parse_args(args(&["--tool", "X", "--bash-tool", "ls"])).is_err());
        assert!(parse_args(args(&["--bash-tool", "ls", "--tool-input", "{}"])).is_err());
    }

    #[test]
    fn defaults_and_errors() {
        assert_eq!(parse_args(args(&[])).unwrap(), Config::default());
        assert!(parse_args(args(&["--port"])).is_err());
        assert!(parse_args(args(&["--port", "x"])).is_err());
        assert!(parse_args(args(&["--bogus"])).is_err());
        assert_eq!(parse_args(args(&["--help"])), Err(String::new()));
    }
}
