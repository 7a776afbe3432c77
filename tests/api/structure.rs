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

/// One source file as a module: `auth::sign_in` for `src/auth/sign_in.rs`.
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
    let root = src_dir();
    crate::helpers::rust_files(&root)
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
    use_spans(source).into_iter().map(|(public, span)| (public, source[span.start + 4..span.end].to_owned())).collect()
}

/// Where each `use` statement stands: from `use` to before its `;`, and
/// whether it is a `pub use`.
fn use_spans(source: &str) -> Vec<(bool, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    for (i, _) in source.match_indices("use ") {
        let line_start = source[..i].rfind('\n').map_or(0, |n| n + 1);
        let lead = source[line_start..i].trim();
        if !(lead.is_empty() || lead.starts_with("pub")) {
            continue;
        }
        if let Some(end) = source[i..].find(';') {
            out.push((!lead.is_empty(), i..i + end));
        }
    }
    out
}

/// Inline paths: every `a::b…` that starts a path (`crate::`, `super::`,
/// `self::`, or a child module's name as in `routes::routes(cfg)`); the
/// graph keeps those that resolve to a module of this crate.
fn inline_paths(source: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = source[from..].find("::") {
        let sep = from + i;
        from = sep + 2;
        let start = source[..sep].char_indices().rev().take_while(|(_, c)| is_ident(*c)).last().map_or(sep, |(k, _)| k);
        if start == sep || source[..start].chars().last().is_some_and(|c| is_ident(c) || c == ':') {
            continue;
        }
        let path: String = source[start..].chars().take_while(|c| is_ident(*c) || *c == ':').collect::<String>();
        from = start + path.len().max(sep + 2 - start);
        out.push(path.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect());
    }
    out
}

/// `source` with its `use` statements blanked: they are read whole by
/// `use_statements`, and a partial path such as `crate::a::{` names no item.
fn without_uses(source: &str) -> String {
    let mut out = source.to_owned();
    for (_, span) in use_spans(source) {
        let blank = " ".repeat(span.len());
        out.replace_range(span, &blank);
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
        paths.extend(inline_paths(&without_uses(&m.source)));
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
    // A `mod.rs` calling its child by a relative path, the child using the
    // parent's item: a cycle, though neither line starts with `crate`.
    let parent_child = [
        m("p", "pub struct Thing;\npub fn routes() { child::routes(); }"),
        m("p::child", "use crate::p::Thing;\npub fn routes() {}"),
    ];
    assert_eq!(cycles(&graph(&parent_child)), vec![vec!["p".to_owned(), "p::child".to_owned()]]);
    // By folder: `x::a` uses `y`, `y` uses `x::b`; no two files form a
    // cycle, the two folders do.
    let folders =
        [m("x::a", "use crate::y::f;"), m("x::b", "pub fn g() {}"), m("y", "use crate::x::b::g;\npub fn f() {}")];
    assert!(cycles(&graph(&folders)).is_empty());
    assert_eq!(cycles(&by_folder(&graph(&folders))), vec![vec!["x".to_owned(), "y".to_owned()]]);
}

/// The graph with each module replaced by its top-level folder (or file):
/// the domains, as a drawing by folder shows them.
fn by_folder(g: &Graph) -> Graph {
    let top = |m: &str| m.split("::").next().unwrap_or(m).to_owned();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, tos) in &g.edges {
        for to in tos {
            if top(from) != top(to) {
                edges.entry(top(from)).or_default().insert(top(to));
            }
        }
    }
    Graph { edges }
}

/// The folders (and top-level files) from the bottom layer up: each may
/// use those before it, none those after it. Foundation (configuration,
/// errors, database, caches, the state every handler gets), then the
/// tables every domain reads, the web frame, the domains, and last the
/// wiring and the commands.
const LAYERS: &[&str] = &[
    // Foundation: configuration, errors, the page frame, the services the
    // state holds (`infra`), the database and the caches.
    "schema",
    "client_ip",
    "steam_ids",
    "settings",
    "names",
    "pagination",
    "body_budget",
    "telemetry",
    "shutdown",
    "crypto",
    "cache",
    "typed_session",
    "layout",
    "error",
    "response",
    "infra",
    "db",
    "versions",
    "replica",
    "views",
    "models",
    "audit",
    "ratelimit",
    "state",
    // Domains.
    "jobs",
    "email",
    "auth",
    "images",
    "rarity",
    "pins",
    "achievements",
    "steam",
    "account",
    "profiles",
    "dashboard",
    "home",
    "health",
    "metrics",
    "admin",
    "import",
    "backup",
    "rotate",
    // Wiring and commands.
    "middleware",
    "startup",
    "admin_cli",
];

/// Arrows that still run up the layers, each to be removed (the list may
/// only shrink). The drawing: `cargo test --test api structure -- --nocapture`.
const UPWARD_DEBT: &[(&str, &str)] = &[];

#[test]
fn no_folder_uses_a_folder_above_it() {
    let g = by_folder(&graph(&modules()));
    let rank = |f: &str| LAYERS.iter().position(|l| *l == f);
    let unplaced: BTreeSet<&str> = g
        .edges
        .iter()
        .flat_map(|(f, ts)| std::iter::once(f).chain(ts))
        .map(String::as_str)
        .filter(|f| rank(f).is_none())
        .collect();
    assert!(unplaced.is_empty(), "folders missing from LAYERS: {unplaced:?}");
    let mut upward = BTreeSet::new();
    for (from, tos) in &g.edges {
        for to in tos.iter().filter(|t| rank(t) > rank(from)) {
            upward.insert((from.as_str(), to.as_str()));
        }
    }
    println!("by folder, from the bottom layer up:");
    for f in LAYERS {
        let uses: Vec<&str> = g.edges.get(*f).map(|t| t.iter().map(String::as_str).collect()).unwrap_or_default();
        println!("  {f:<14} -> {}", uses.join(", "));
    }
    println!("{} arrow(s) up the layers: {upward:?}", upward.len());
    let debt: BTreeSet<(&str, &str)> = UPWARD_DEBT.iter().copied().collect();
    let new: Vec<_> = upward.difference(&debt).collect();
    let gone: Vec<_> = debt.difference(&upward).collect();
    assert!(new.is_empty(), "new arrows up the layers (move the code used down, or the user up): {new:?}");
    assert!(gone.is_empty(), "these arrows are gone: take them off UPWARD_DEBT: {gone:?}");
    // With every folder in one order and no arrow up it, no circle of
    // folders is possible; the debt is what still stands in the way.
    if debt.is_empty() {
        assert!(cycles(&g).is_empty());
    }
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

/// Use cases own their transactions: a handler that opened one would hold
/// a unit of work the use cases cannot reuse or test without HTTP.
#[test]
fn no_handler_module_opens_a_transaction() {
    let offenders: Vec<String> = modules()
        .iter()
        .filter(|m| is_handler_module(m))
        .filter(|m| m.source.contains("transaction(") || m.source.contains("build_transaction()"))
        .map(|m| m.name.clone())
        .collect();
    assert!(offenders.is_empty(), "handler modules opening a transaction: {offenders:?}");
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
