//! The code's layout, checked: no import cycle between modules, handlers
//! that never touch the schema, one module writing each table. README's
//! Development section states the rules; these tests keep them true.
//!
//! The module graph is read from the source: every `use crate::…`,
//! `super::…` and inline `crate::…` path, resolved to the module that
//! defines the item (through `pub use` re-exports). A `mod` declaration is
//! not an edge; using a child's item is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One source file as a module: `auth::login` for `src/auth/login.rs`.
struct Module {
    name: String,
    source: String,
}

/// This crate's `src`, or another tree's (`QUESTLINE_STRUCTURE_SRC`), to
/// print an earlier commit's figures with the same checker.
fn src_dir() -> PathBuf {
    match std::env::var_os("QUESTLINE_STRUCTURE_SRC") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    }
}

fn modules() -> Vec<Module> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = src_dir();
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let rel = path.strip_prefix(&root).unwrap().with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts == ["lib"] || parts == ["main"] {
                return None;
            }
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            // Unit tests beside the code are not part of its dependencies
            // (and their `super` is the file itself); they come last.
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            // Full-line comments only: a `//` inside a string (a URL) is code.
            let source = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
            Some(Module { name: parts.join("::"), source })
        })
        .collect()
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands `a::{b, c::{d, e}}` (the text after `use`) into full paths.
fn expand_use(text: &str) -> Vec<Vec<String>> {
    fn split_top(s: &str) -> Vec<&str> {
        let (mut depth, mut start, mut out) = (0, 0, Vec::new());
        for (i, c) in s.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(&s[start..]);
        out
    }
    // `x as y` names x: drop the rename, then the whitespace.
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut kept = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if words[i] == "as" && i + 1 < words.len() {
            // The new name may carry the `,` or `}` that follows it.
            kept.push(words[i + 1].trim_start_matches(|c: char| is_ident(c)));
            i += 2;
        } else {
            kept.push(words[i]);
            i += 1;
        }
    }
    let text: String = kept.concat();
    let mut out = Vec::new();
    for part in split_top(&text).into_iter().filter(|p| !p.is_empty()) {
        match part.find('{') {
            Some(i) => {
                let prefix: Vec<String> = part[..i].split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect();
                for rest in expand_use(&part[i + 1..part.len() - 1]) {
                    out.push(prefix.iter().cloned().chain(rest).collect());
                }
            }
            None => {
                out.push(part.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect());
            }
        }
    }
    out
}

/// Every `use` statement's text (after `use`, before `;`), with whether it
/// is a `pub use`.
fn use_statements(source: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    for (i, _) in source.match_indices("use ") {
        let line_start = source[..i].rfind('\n').map_or(0, |n| n + 1);
        let lead = source[line_start..i].trim();
        if !(lead.is_empty() || lead.starts_with("pub")) {
            continue;
        }
        if let Some(end) = source[i..].find(';') {
            out.push((!lead.is_empty(), source[i + 4..i + end].to_owned()));
        }
    }
    out
}

/// Inline paths starting with `crate::` or `super::`.
fn inline_paths(source: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = source[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            if source[..at].chars().last().is_some_and(|c| is_ident(c) || c == ':') {
                continue;
            }
            let path: String = source[at..].chars().take_while(|c| is_ident(*c) || *c == ':').collect::<String>();
            out.push(path.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect());
        }
    }
    out
}

struct Graph {
    edges: BTreeMap<String, BTreeSet<String>>,
}

fn graph(mods: &[Module]) -> Graph {
    let names: BTreeSet<String> = mods.iter().map(|m| m.name.clone()).collect();
    let absolute = |module: &str, path: &[String]| -> Option<Vec<String>> {
        let mut base: Vec<String> = module.split("::").map(str::to_owned).collect();
        let mut rest = path;
        match rest.first().map(String::as_str) {
            Some("crate") => {
                base.clear();
                rest = &rest[1..];
            }
            Some("super") => {
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
            }
            Some("self") => rest = &rest[1..],
            Some(first) if names.contains(&format!("{module}::{first}")) => {}
            _ => return None,
        }
        Some(base.into_iter().chain(rest.iter().cloned()).collect())
    };
    let longest = |path: &[String]| -> Option<(String, usize)> {
        (1..=path.len()).rev().map(|k| (path[..k].join("::"), k)).find(|(name, _)| names.contains(name))
    };
    // Re-exports: (module, name) -> the module that defines it.
    let mut aliases: BTreeMap<(String, String), String> = BTreeMap::new();
    for m in mods {
        for (public, text) in use_statements(&m.source) {
            if !public {
                continue;
            }
            for path in expand_use(&text) {
                if let (Some(abs), Some(item)) = (absolute(&m.name, &path), path.last()) {
                    if let Some((target, _)) = longest(&abs) {
                        aliases.insert((m.name.clone(), item.clone()), target);
                    }
                }
            }
        }
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in mods {
        let mut paths: Vec<Vec<String>> =
            use_statements(&m.source).into_iter().flat_map(|(_, text)| expand_use(&text)).collect();
        paths.extend(inline_paths(&m.source));
        for path in paths {
            let Some(abs) = absolute(&m.name, &path) else { continue };
            let Some((mut target, used)) = longest(&abs) else { continue };
            if let Some(next) = abs.get(used) {
                if let Some(real) = aliases.get(&(target.clone(), next.clone())) {
                    target = real.clone();
                }
            }
            if target != m.name {
                edges.entry(m.name.clone()).or_default().insert(target);
            }
        }
    }
    Graph { edges }
}

/// Strongly connected components of more than one module (Tarjan).
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(ws) = s.g.edges.get(v) {
            for w in ws {
                if !s.index.contains_key(w.as_str()) {
                    visit(s, w);
                    let lw = s.low[w.as_str()];
                    s.low.entry(v).and_modify(|l| *l = (*l).min(lw));
                } else if s.on_stack.contains(w.as_str()) {
                    let iw = s.index[w.as_str()];
                    s.low.entry(v).and_modify(|l| *l = (*l).min(iw));
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                comp.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    let nodes: Vec<&str> = g.edges.keys().map(String::as_str).collect();
    for v in nodes {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let mods = modules();
    let g = graph(&mods);
    let found = cycles(&g);
    let edges: usize = g.edges.values().map(BTreeSet::len).sum();
    println!("{} modules, {} dependencies between them, {} cycle(s)", mods.len(), edges, found.len());
    let report: Vec<String> = found
        .iter()
        .map(|comp| {
            let lines: Vec<String> = comp
                .iter()
                .map(|m| {
                    let inside: Vec<&str> =
                        g.edges[m].iter().filter(|t| comp.contains(t)).map(String::as_str).collect();
                    format!("    {m} -> {}", inside.join(", "))
                })
                .collect();
            format!("cycle among {} modules:\n{}", comp.len(), lines.join("\n"))
        })
        .collect();
    assert!(found.is_empty(), "{}", report.join("\n"));
}

#[test]
fn the_checker_sees_a_cycle_when_there_is_one() {
    let m = |name: &str, source: &str| Module { name: name.into(), source: source.into() };
    let mods = [
        m("a", "use crate::b::{self, Thing};\nfn f() { crate::c::go(); }"),
        m("b", "pub struct Thing;\nuse super::c;"),
        m("c", "pub use crate::d::go;"),
        m("d", "use crate::a::f;\npub fn go() {}"),
    ];
    // a -> b -> c -> d -> a, where a's use of `c::go` is really of `d`.
    let expected: Vec<String> = ["a", "b", "c", "d"].into_iter().map(String::from).collect();
    assert_eq!(cycles(&graph(&mods)), vec![expected]);
    let acyclic = [m("a", "use crate::b::Thing;"), m("b", "pub struct Thing;")];
    assert!(cycles(&graph(&acyclic)).is_empty());
}

/// Modules that serve pages: they register routes.
fn is_handler_module(m: &Module) -> bool {
    m.source.contains("web::resource(") || m.source.contains("HttpResponse")
}

#[test]
fn no_handler_module_touches_the_schema_or_holds_sql() {
    let offenders: Vec<String> = modules()
        .iter()
        .filter(|m| is_handler_module(m) && m.name != "schema")
        .filter(|m| {
            ["crate::schema", "sql_query(", "insert_into(", "diesel::update(", "diesel::delete("]
                .iter()
                .any(|needle| m.source.contains(needle))
        })
        .map(|m| m.name.clone())
        .collect();
    assert!(offenders.is_empty(), "handler modules with SQL: {offenders:?}");
}

#[test]
fn no_function_needs_a_too_many_arguments_exemption() {
    let offenders: Vec<String> =
        modules().iter().filter(|m| m.source.contains("too_many_arguments")).map(|m| m.name.clone()).collect();
    assert!(offenders.is_empty(), "{offenders:?}");
}

/// The tables a module writes, by the statements that write them.
fn tables_written(source: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for start in ["insert_into(", "diesel::update(", "diesel::delete("] {
        for (i, _) in source.match_indices(start) {
            let name: String = source[i + start.len()..].chars().take_while(|c| is_ident(*c)).collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    for start in ["INSERT INTO ", "UPDATE ", "DELETE FROM "] {
        for (i, _) in source.match_indices(start) {
            let name: String = source[i + start.len()..].chars().take_while(|c| is_ident(*c)).collect();
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn each_table_is_written_by_one_module() {
    let mods = modules();
    let schema = mods.iter().find(|m| m.name == "schema").expect("src/schema.rs");
    let tables: BTreeSet<String> = schema
        .source
        .lines()
        .filter_map(|l| l.trim().strip_suffix('{'))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|t| t.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(str::to_owned)
        .collect();
    let mut writers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in mods.iter().filter(|m| m.name != "schema") {
        for t in tables_written(&m.source).into_iter().filter(|t| tables.contains(t)) {
            writers.entry(t).or_default().insert(m.name.clone());
        }
    }
    for (table, by) in &writers {
        println!("{table:<24} {}", by.iter().cloned().collect::<Vec<_>>().join(", "));
    }
    let shared: Vec<String> =
        writers.iter().filter(|(_, by)| by.len() > 1).map(|(t, by)| format!("{t}: {by:?}")).collect();
    assert!(shared.is_empty(), "tables written from more than one module:\n{}", shared.join("\n"));
}

#[test]
fn no_template_is_handed_a_row_that_carries_secrets() {
    let mut offenders = Vec::new();
    for m in modules() {
        for (i, _) in m.source.match_indices("#[derive(Template)]") {
            let body = &m.source[i..];
            let end = body.find("\n}").unwrap_or(body.len());
            let fields = &body[..end];
            if [": User,", "<User>", "CurrentUser"].iter().any(|t| fields.contains(t)) {
                offenders.push(m.name.clone());
            }
        }
    }
    assert!(offenders.is_empty(), "templates given the User row: {offenders:?}");
}
