//! Profile problems with their location: `file:line:column`, the key path and a hint.
//!
//! Validation collects every problem of a file before reporting, so a user fixes a broken
//! profile in one pass instead of one serde error at a time.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// One problem in a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Where the problem is: a file path, `built-in profiles/NAME.toml` or `--set`.
    pub origin: String,
    /// 1-based line, or 0 when the problem has no place in a file.
    pub line: usize,
    /// 1-based column (in characters), or 0 when the problem has no place in a file.
    pub column: usize,
    /// Dotted key path (`backend.url`), empty for problems of the whole file.
    pub key: String,
    /// What is wrong, without a trailing period.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic without a location yet.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            origin: String::new(),
            line: 0,
            column: 0,
            key: key.into(),
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", printable(&self.origin))?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", printable(&self.key))?;
        }
        write!(f, ": {}", printable(&self.message))?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {}", printable(hint))?;
        }
        Ok(())
    }
}

/// `text` safe to print on one line of a terminal: control characters escaped (`\u{1b}`,
/// `\n`), and credentials hidden: the user and password of `scheme://user:password@host`
/// and of `user:password@host` become `***`. What a diagnostic quotes comes from a file
/// or a command line that may be hostile, or hold a secret by mistake.
pub fn printable(text: &str) -> String {
    let delimiter = |c: char| {
        c.is_whitespace() || matches!(c, '`' | '"' | '\'' | '[' | ']' | ',' | '=' | '(' | ')')
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(delimiter).unwrap_or(rest.len());
        let (token, tail) = rest.split_at(end);
        out.push_str(&hide_userinfo(token));
        let d = tail.chars().next().map_or(0, char::len_utf8);
        out.push_str(&tail[..d]);
        rest = &tail[d..];
    }
    if out.chars().any(char::is_control) {
        out = out
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
    }
    out
}

/// [`printable`] for text of several lines: each line escaped, the line breaks kept.
pub fn printable_lines(text: &str) -> String {
    let lines: Vec<String> = text.lines().map(printable).collect();
    lines.join("\n")
}

/// One word with the credentials of its authority (before the host's `@`) replaced by
/// `***`: any with a scheme, and `user:password` without one (an address like
/// `git@host` stays).
fn hide_userinfo(token: &str) -> std::borrow::Cow<'_, str> {
    let (start, scheme) = match token.find("://") {
        Some(i) => (i + 3, true),
        None => (0, false),
    };
    let authority = &token[start..];
    let authority = &authority[..authority.find('/').unwrap_or(authority.len())];
    match authority.rfind('@') {
        Some(at) if scheme || authority[..at].contains(':') => {
            format!("{}***{}", &token[..start], &token[start + at..]).into()
        }
        _ => token.into(),
    }
}

/// Every problem found in one or more profiles, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sorts by origin, then position, keeping the order of problems at the same place.
    pub fn sort(&mut self) {
        self.0
            .sort_by(|a, b| (&a.origin, a.line, a.column).cmp(&(&b.origin, b.line, b.column)));
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// A value short enough for a one-line message.
pub fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    };
    if s.chars().count() > 60 {
        format!("{}...`", s.chars().take(56).collect::<String>())
    } else {
        s
    }
}

/// Turns a byte offset in `text` into a 1-based (line, column in characters).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_controls_and_hides_credentials() {
        assert_eq!(printable("a\u{1b}[2Jb\0c\nd"), "a\\u{1b}[2Jb\\u{0}c\\nd");
        assert_eq!(
            printable("`http://user:s3cret@127.0.0.1:8080/x` and https://h/p@q"),
            "`http://***@127.0.0.1:8080/x` and https://h/p@q"
        );
        assert_eq!(printable("plain `text`"), "plain `text`");
        assert_eq!(
            printable("--set allow=[\"me:pw@example.com\", git@host]"),
            "--set allow=[\"***@example.com\", git@host]"
        );
    }

    #[test]
    fn line_col_counts_characters_from_one() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        // After the two-byte `é`, the `=` is the fourth character.
        assert_eq!(line_col(text, 10), (2, 4));
    }
}
