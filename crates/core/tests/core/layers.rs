//! The direction of imports: no module of either crate imports a module that imports it
//! back (directly or around a cycle), the two levels never import each other, and no CLI
//! command imports another. A cycle fails with its path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name -> the crate modules it names (`crate::a::b` counts as `a::b` when
/// `a/b.rs` exists, else as `a`).
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let name = |p: &Path| -> String {
        let rel = p.strip_prefix(src).unwrap().with_extension("");
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .filter(|c| c != "mod")
            .collect();
        parts.join("::")
    };
    let modules: BTreeSet<String> = files.iter().map(|f| name(f)).collect();
    let mut out = BTreeMap::new();
    for f in &files {
        let me = name(f);
        if me == "main" || me == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        // Tests may reach anywhere, and comments (doc links) name without importing.
        let text: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut deps = BTreeSet::new();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            let path: Vec<&str> = rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or_default()
                .split("::")
                .collect();
            let two = path.iter().take(2).copied().collect::<Vec<_>>().join("::");
            let dep = if modules.contains(&two) {
                two
            } else {
                path[0].to_owned()
            };
            if modules.contains(&dep) && dep != me {
                deps.insert(dep);
            }
        }
        out.insert(me, deps);
    }
    out
}

/// A cycle in `g`, if there is one.
fn cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut c = stack[i..].to_vec();
            c.push(node.to_owned());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for dep in g.get(node).into_iter().flatten() {
            if let Some(c) = visit(g, dep, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(g, n, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_its_way_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for src in [root.join("src"), root.join("../cli/src")] {
        let g = graph(&src);
        if let Some(c) = cycle(&g) {
            panic!("import cycle in {}: {}", src.display(), c.join(" -> "));
        }
    }
}

#[test]
fn the_levels_and_the_commands_stay_apart() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let core = graph(&root.join("src"));
    assert!(!core["level::sandbox"].contains("level::container"));
    assert!(!core["level::container"].contains("level::sandbox"));
    let cli = graph(&root.join("../cli/src"));
    for (module, deps) in &cli {
        if module.starts_with("commands::") {
            let other: Vec<_> = deps.iter().filter(|d| d.starts_with("commands")).collect();
            assert!(other.is_empty(), "{module} imports {other:?}");
        }
    }
    // A control: the check sees an edge that exists.
    assert!(core["render"].contains("level::sandbox") || core["render"].contains("level"));
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let mut g = BTreeMap::new();
    g.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    g.insert("b".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(cycle(&g).unwrap(), ["a", "b", "a"]);
}
