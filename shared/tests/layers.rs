//! The crates' structure, kept honest: every module imports only from its own layer or the ones
//! below it (the map at the top of `shared/src/lib.rs`), the serving and the asking side never
//! import each other, and no two files import each other, directly or in a circle.
//!
//! The check reads the sources as text: every `crate::…`, `super::…` and `self::…` path outside
//! comments, `use` trees expanded, resolved to the file that defines what it names (through the
//! `pub use` re-exports of a folder's `mod.rs`). A crate's root (`lib.rs`, `main.rs`, a binary)
//! is its table of contents and is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Layers of the `minibox` crate, bottom first, by top-level module.
const SHARED: &[(&str, u32)] = &[
    ("util", 0),
    ("protocol", 1),
    ("local", 2),
    ("wire", 3),
    ("serve", 4),
    ("ask", 4),
    ("threaded", 5),
    ("shell", 5),
    ("cli", 5),
];

/// Layers of the `with_sync` crate.
const WITH_SYNC: &[(&str, u32)] = &[("plan", 1), ("state", 2), ("round", 3), ("shell", 4)];

/// Pairs of top-level modules that must not import each other, whatever their layers.
const APART: &[(&str, &str)] = &[("serve", "ask"), ("ask", "serve")];

/// One crate's sources: module path (`protocol::frame`) → file.
struct Crate {
    name: &'static str,
    modules: BTreeMap<Vec<String>, PathBuf>,
    /// Items a folder's `mod.rs` re-exports: (folder module, item) → the module it comes from.
    reexports: BTreeMap<(Vec<String>, String), Vec<String>>,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load(name: &'static str, root: &Path) -> Crate {
    let mut modules = BTreeMap::new();
    collect(root, root, &mut modules);
    let mut reexports = BTreeMap::new();
    let roots = ["lib.rs", "main.rs"].map(|f| (Vec::new(), root.join(f)));
    let folders = modules
        .iter()
        .filter(|(_, f)| f.ends_with("mod.rs"))
        .map(|(m, f)| (m.clone(), f.clone()));
    for (module, file) in folders.chain(roots.into_iter().filter(|(_, f)| f.exists())) {
        for path in use_paths(&code_of(&file), true) {
            if let [child, .., item] = path.as_slice() {
                let mut from = module.clone();
                from.push(child.clone());
                reexports.insert((module.clone(), item.clone()), from);
            }
        }
    }
    Crate {
        name,
        modules,
        reexports,
    }
}

/// Every `.rs` file below `dir`, by module path. Crate roots and binaries are left out.
fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<Vec<String>, PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .expect("a source folder")
        .map(|e| e.expect("an entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if !path.ends_with("bin") {
                collect(root, &path, out);
            }
            continue;
        }
        if path.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let rel = path.strip_prefix(root).expect("below the root");
        let mut parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if parts == ["lib"] || parts == ["main"] {
            continue;
        }
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        out.insert(parts, path);
    }
}

/// A file's text without comments (doc links are not imports).
fn code_of(file: &Path) -> String {
    let text = fs::read_to_string(file).expect("a source file");
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a file names: every `use` tree expanded (with `pub` only, the re-exports) and, if
/// not only re-exports, every `crate::`/`super::` path in the code.
fn use_paths(code: &str, reexports_only: bool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = &rest[..i];
        let is_pub = before.trim_end().ends_with("pub") || before.trim_end().ends_with(')');
        let starts_word = before
            .chars()
            .last()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_');
        let Some(end) = rest[i..].find(';') else {
            break;
        };
        let tree = without_aliases(&rest[i + 4..i + end]);
        if starts_word && (is_pub || !reexports_only) {
            expand(&tree, &mut Vec::new(), &mut out);
        }
        rest = &rest[i + end..];
    }
    if !reexports_only {
        out.extend(inline_paths(code));
    }
    out
}

/// Expands a `use` tree (`a::{b, c::d}`) into its paths.
fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim_start_matches("::");
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let depth = prefix.len();
        prefix.extend(head);
        for part in split_top(inner) {
            expand(part, prefix, out);
        }
        prefix.truncate(depth);
        return;
    }
    let mut path = prefix.clone();
    path.extend(
        tree.split("::")
            .filter(|s| !s.is_empty() && *s != "*")
            .map(String::from),
    );
    if path.last().is_some_and(|s| s == "self") {
        path.pop();
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// A `use` tree with its white space and its `as` aliases taken out.
fn without_aliases(tree: &str) -> String {
    let mut out = String::new();
    let mut alias = false;
    for word in tree.split_whitespace() {
        if alias {
            // The alias, and what follows it (`,`, `}`).
            out.push_str(word.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_'));
            alias = false;
        } else if word == "as" {
            alias = true;
        } else {
            out.push_str(word);
        }
    }
    out
}

/// Splits at the commas that are not inside braces.
fn split_top(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// `crate::a::b` and `super::a` paths written in the code itself.
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start).map(|i| i + from) {
            from = i + start.len();
            let boundary = i == 0
                || !(bytes[i - 1].is_ascii_alphanumeric()
                    || bytes[i - 1] == b'_'
                    || bytes[i - 1] == b':');
            if !boundary {
                continue;
            }
            let end = code[i..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| e + i);
            let path: Vec<String> = code[i..end]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            out.push(path);
        }
    }
    out
}

impl Crate {
    /// The file a path names, seen from `module`; `None` for other crates and std.
    fn resolve(&self, module: &[String], path: &[String]) -> Option<Vec<String>> {
        match path.first().map(String::as_str) {
            Some("crate") => self.deepest(Vec::new(), &path[1..]),
            Some("super") | Some("self") => {
                // `super` of `a::b` is `a`, whether `b` is a file or a folder's `mod.rs`.
                let mut base = module.to_vec();
                let mut rest = path;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                if rest.first().is_some_and(|s| s == "self") {
                    rest = &rest[1..];
                }
                self.deepest(base, rest)
            }
            _ => None,
        }
    }

    /// Walks down `rest` from `base` as far as modules exist, then through a re-export.
    fn deepest(&self, mut base: Vec<String>, rest: &[String]) -> Option<Vec<String>> {
        for (i, part) in rest.iter().enumerate() {
            let mut next = base.clone();
            next.push(part.clone());
            if self.modules.contains_key(&next) {
                base = next;
                continue;
            }
            if let Some(from) = self.reexports.get(&(base.clone(), part.clone())) {
                return self.deepest(from.clone(), &rest[i + 1..]);
            }
            break;
        }
        (!base.is_empty()).then_some(base)
    }

    /// Every file-to-file import edge.
    fn edges(&self) -> BTreeSet<(Vec<String>, Vec<String>)> {
        let mut edges = BTreeSet::new();
        for (module, file) in &self.modules {
            for path in use_paths(&code_of(file), false) {
                if let Some(to) = self.resolve(module, &path) {
                    if &to != module && !module.starts_with(&to) {
                        edges.insert((module.clone(), to));
                    }
                }
            }
        }
        edges
    }
}

fn show(module: &[String]) -> String {
    module.join("::")
}

/// Import edges that point up a layer or join two modules kept apart.
fn upward(krate: &Crate, layers: &[(&str, u32)]) -> Vec<String> {
    let layer = |m: &[String]| {
        layers
            .iter()
            .find(|(name, _)| m.first().is_some_and(|f| f == name))
            .map(|(_, l)| *l)
    };
    let mut bad = Vec::new();
    for (from, to) in krate.edges() {
        let (Some(a), Some(b)) = (layer(&from), layer(&to)) else {
            continue;
        };
        let apart = APART.iter().any(|(x, y)| from[0] == *x && to[0] == *y);
        if b > a || (apart && krate.name == "minibox") {
            bad.push(format!(
                "{}: {} (layer {a}) imports {} (layer {b})",
                krate.name,
                show(&from),
                show(&to)
            ));
        }
    }
    bad
}

/// The circles of imports between files (strongly connected components of more than one).
fn circles(krate: &Crate) -> Vec<String> {
    let edges = krate.edges();
    let nodes: Vec<&Vec<String>> = krate.modules.keys().collect();
    let reach = |from: &Vec<String>| -> BTreeSet<Vec<String>> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for (a, b) in &edges {
                if *a == n && seen.insert(b.clone()) {
                    todo.push(b.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&Vec<String>, BTreeSet<Vec<String>>> =
        nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut found = BTreeSet::new();
    for n in &nodes {
        let circle: Vec<String> = nodes
            .iter()
            .filter(|m| reached[n].contains(**m) && reached[*m].contains(*n))
            .map(|m| show(m))
            .collect();
        if circle.len() > 1 {
            found.insert(format!("{}: {}", krate.name, circle.join(" <-> ")));
        }
    }
    found.into_iter().collect()
}

fn crates() -> Vec<(Crate, &'static [(&'static str, u32)])> {
    let src = |dir: &str| workspace().join(dir).join("src");
    vec![
        (load("minibox", &src("shared")), SHARED),
        (load("with_sync", &src("with_sync")), WITH_SYNC),
        (load("with_thread", &src("with_thread")), &[]),
        (load("before_thread", &src("before_thread")), &[]),
        (load("testkit", &src("testkit")), &[]),
    ]
}

#[test]
fn no_module_imports_one_above_it() {
    let bad: Vec<String> = crates()
        .iter()
        .flat_map(|(c, layers)| upward(c, layers))
        .collect();
    assert!(
        bad.is_empty(),
        "imports that point up a layer:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_two_modules_import_each_other_directly_or_in_a_circle() {
    let bad: Vec<String> = crates().iter().flat_map(|(c, _)| circles(c)).collect();
    assert!(bad.is_empty(), "circles of imports:\n{}", bad.join("\n"));
}

#[test]
fn every_top_level_module_of_the_shared_crate_has_a_layer() {
    let minibox = load("minibox", &workspace().join("shared/src"));
    let tops: BTreeSet<&str> = minibox
        .modules
        .keys()
        .filter_map(|m| m.first())
        .map(String::as_str)
        .collect();
    let missing: Vec<&&str> = tops
        .iter()
        .filter(|t| !SHARED.iter().any(|(n, _)| n == *t))
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a layer in SHARED: {missing:?}"
    );
    let with_sync = load("with_sync", &workspace().join("with_sync/src"));
    let tops: BTreeSet<&str> = with_sync
        .modules
        .keys()
        .filter_map(|m| m.first())
        .map(String::as_str)
        .collect();
    assert!(
        tops.iter().all(|t| WITH_SYNC.iter().any(|(n, _)| n == t)),
        "{tops:?}"
    );
}

#[test]
fn the_checker_sees_an_import_that_points_up_and_a_circle() {
    // The check itself, on a crate made for it: a lower module that names a higher one, and two
    // files that name each other.
    let dir = tempfile::tempdir().expect("a temporary folder");
    let src = dir.path();
    fs::create_dir_all(src.join("protocol")).unwrap();
    fs::create_dir_all(src.join("wire")).unwrap();
    fs::write(
        src.join("protocol/mod.rs"),
        "pub mod a;\npub mod b;\npub use a::Thing;\n",
    )
    .unwrap();
    fs::write(
        src.join("protocol/a.rs"),
        "use super::b::Other;\nuse crate::wire::conn::Conn;\n",
    )
    .unwrap();
    fs::write(
        src.join("protocol/b.rs"),
        "use crate::protocol::Thing; // through the re-export\n",
    )
    .unwrap();
    fs::write(src.join("wire/mod.rs"), "pub mod conn;\n").unwrap();
    fs::write(
        src.join("wire/conn.rs"),
        "// use crate::protocol::a; only a comment\n",
    )
    .unwrap();
    let krate = load("made", src);
    let up = upward(&krate, &[("protocol", 1), ("wire", 3)]);
    assert_eq!(
        up,
        ["made: protocol::a (layer 1) imports wire::conn (layer 3)"]
    );
    let circle = circles(&krate);
    assert_eq!(circle, ["made: protocol::a <-> protocol::b"]);
}
