//! Key paths (`permissions.allow[2]`) as users write them, and "did you mean" suggestions.
//!
//! Diagnostics, provenance and `--set` all name keys; this is the one way they are spelt.

use std::ops::Range;

use serde_json::Value;
use toml_edit::{Document, Item};

use crate::diag::line_col;

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Formats a key path the way users write it: `permissions.allow[2]`.
pub fn dotted(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Parses a dotted key (`backend.url`) into a path.
pub fn parse_dotted(key: &str) -> Vec<Seg> {
    key.split('.').map(|k| Seg::Key(k.to_owned())).collect()
}

/// Converts a JSON pointer (`/permissions/allow/0`) into a key path.
pub fn pointer_to_path(pointer: &str) -> Vec<Seg> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .map(|s| match s.parse::<usize>() {
            Ok(i) => Seg::Index(i),
            Err(_) => Seg::Key(s),
        })
        .collect()
}

/// The value at `path` in `value`, if there is one.
pub fn value_at<'a>(value: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, seg| match seg {
        Seg::Key(k) => v.get(k),
        Seg::Index(i) => v.get(i),
    })
}

/// The closest of `candidates` to `name`, if close enough to be a typo.
pub fn did_you_mean<'a, S: AsRef<str>>(name: &str, candidates: &'a [S]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(name, c.as_ref()), c.as_ref()))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A parsed profile file that can say where each key is.
pub struct Spans {
    text: String,
    doc: Option<Document<String>>,
}

impl Spans {
    /// Parses `text` for locating keys; a file that is not TOML locates everything at 1:1.
    pub fn parse(text: &str) -> Spans {
        Spans {
            text: text.to_owned(),
            doc: Document::parse(text.to_owned()).ok(),
        }
    }
}

/// Which part of a key/value pair to point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The key itself (unknown keys).
    Key,
    /// The value (wrong types and values).
    Value,
}

impl Spans {
    /// The (line, column) of `path`, falling back to the nearest enclosing key that exists.
    pub fn locate(&self, path: &[Seg], part: Part) -> (usize, usize) {
        let Some(doc) = &self.doc else {
            return (1, 1);
        };
        let mut node = Node::Item(doc.as_item());
        let mut best: Option<Range<usize>> = None;
        for (i, seg) in path.iter().enumerate() {
            let want_key = i + 1 == path.len() && part == Part::Key;
            let keyed = |kv| keyed(want_key, kv);
            let found = match (seg, node) {
                (Seg::Key(k), Node::Item(item)) => item
                    .as_table_like()
                    .and_then(|t| t.get_key_value(k))
                    .map(keyed),
                (Seg::Key(k), Node::Value(toml_edit::Value::InlineTable(t))) => {
                    t.get_key_value(k).map(keyed)
                }
                (Seg::Key(k), Node::Table(t)) => t.get_key_value(k).map(keyed),
                (Seg::Index(n), Node::Item(Item::Value(toml_edit::Value::Array(a))))
                | (Seg::Index(n), Node::Value(toml_edit::Value::Array(a))) => {
                    a.get(*n).map(|v| (v.span(), Node::Value(v)))
                }
                (Seg::Index(n), Node::Item(Item::ArrayOfTables(a))) => {
                    a.get(*n).map(|t| (t.span(), Node::Table(t)))
                }
                _ => None,
            };
            let next = found.map(|(span, next)| {
                if span.is_some() {
                    best = span;
                }
                next
            });
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        best.map_or((1, 1), |span| line_col(&self.text, span.start))
    }
}

/// A key's span (its name's, or its value's) and its value, to walk on from.
fn keyed<'a>(
    want_key: bool,
    (key, item): (&'a toml_edit::Key, &'a Item),
) -> (Option<Range<usize>>, Node<'a>) {
    let span = if want_key {
        key.span()
    } else {
        item.span().or_else(|| key.span())
    };
    (span, Node::Item(item))
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Value(&'a toml_edit::Value),
    Table(&'a toml_edit::Table),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_through_their_spellings() {
        let path = pointer_to_path("/permissions/allow/2");
        assert_eq!(dotted(&path), "permissions.allow[2]");
        assert_eq!(parse_dotted("backend.url").len(), 2);
        assert_eq!(
            did_you_mean("bakend", &["backend", "model"]),
            Some("backend")
        );
        assert_eq!(did_you_mean("zzz", &["backend", "model"]), None);
    }
}
