//! The runtime's layers, checked from its source: every file of `src/` lives in a layer folder,
//! imports only from its own layer and the layers below it, and no files of one layer import
//! each other, directly or around a circle.
//!
//! Paths are followed to where their items are defined: `crate::store::InProcessStore` names
//! `store/in_process.rs` through the `pub use` of `store/mod.rs`, and `super::` climbs out of a
//! folder as the compiler climbs. Internal code names items by module path: a path through a
//! crate-root re-export (`crate::Error`) names no layer, and fails. A folder's `mod.rs` and the
//! files under it are one module family (children see their parent's private items, a parent
//! declares and re-exports its children), so imports between them are not counted as cycles.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The layers, bottom to top: each imports only from itself and the layers before it. A layer is
/// one folder of `src/`, or several side by side. `src/lib.rs` declares them in this order and
/// the README's "Layout" lists them so.
const LAYERS: &[&[&str]] = &[
    &["api"],
    &["observe"],
    &["store", "shared"],
    &["contract"],
    &["plan"],
    &["exec"],
    &["source"],
    &["dispatch"],
    &["operator"],
    &["cli"],
];

type ModPath = Vec<String>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rank(folder: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&folder))
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Punct(&'static str),
    Other,
}

/// The tokens of a file that matter for paths, each with its line; comments, strings and
/// characters are dropped (a `crate::` in them is not an import).
fn lex(text: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let (mut i, mut line, mut tokens) = (0, 1, Vec::new());
    let count_lines = |from: usize, to: usize, line: &mut usize| {
        *line += chars[from..to.min(chars.len())].iter().filter(|&&c| c == '\n').count();
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let (start, mut depth) = (i, 0);
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            count_lines(start, i, &mut line);
        } else if (c == 'r' || c == 'b') && raw_string_start(&chars, i).is_some() {
            let (hashes, open) = raw_string_start(&chars, i).unwrap_or_default();
            let start = i;
            i = open + 1;
            let close: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            while i < chars.len() && !chars[i..].starts_with(&close.chars().collect::<Vec<_>>()) {
                i += 1;
            }
            i += close.len();
            count_lines(start, i, &mut line);
            tokens.push((Tok::Other, line));
        } else if c == '"' || (c == 'b' && next == Some('"')) {
            let start = i;
            i += if c == 'b' { 2 } else { 1 };
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            count_lines(start, i, &mut line);
            tokens.push((Tok::Other, line));
        } else if c == '\'' {
            // A character literal, or a lifetime (whose name is lexed as an identifier next).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                continue;
            }
            tokens.push((Tok::Other, line));
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let word = word.strip_prefix("r#").map(str::to_owned).unwrap_or(word);
            tokens.push((Tok::Ident(word), line));
        } else if c == ':' && next == Some(':') {
            tokens.push((Tok::Punct("::"), line));
            i += 2;
        } else {
            let punct = match c {
                '{' => Tok::Punct("{"),
                '}' => Tok::Punct("}"),
                ',' => Tok::Punct(","),
                ';' => Tok::Punct(";"),
                '*' => Tok::Punct("*"),
                '<' => Tok::Punct("<"),
                '$' => Tok::Punct("$"),
                _ => Tok::Other,
            };
            tokens.push((punct, line));
            i += 1;
        }
    }
    tokens
}

/// Where a raw string (`r"`, `r#"`, `br"`) starting at `i` opens: its `#` count and the index of
/// its opening quote.
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if chars[j] == 'b' {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    (chars.get(j + hashes) == Some(&'"')).then_some((hashes, j + hashes))
}

fn ident(tokens: &[(Tok, usize)], i: usize) -> Option<&str> {
    match tokens.get(i) {
        Some((Tok::Ident(word), _)) => Some(word),
        _ => None,
    }
}

fn is(tokens: &[(Tok, usize)], i: usize, punct: &str) -> bool {
    matches!(tokens.get(i), Some((Tok::Punct(p), _)) if *p == punct)
}

/// One path a file names: its segments as written, the module it is written in, and its line.
#[derive(Clone, Debug)]
struct Reference {
    segments: Vec<String>,
    module: ModPath,
    line: usize,
    /// For a `use`: the name it brings into `module` (`None` for a glob).
    binds: Option<String>,
}

/// Every path of a file starting with `crate`, `super` or `self`, in `use` declarations (every
/// leaf of a `use a::{b, c::{d}}` tree) and inline; plus, for resolving re-exports, every `use`
/// relative to the file's own modules.
fn references(file_module: &ModPath, tokens: &[(Tok, usize)]) -> Vec<Reference> {
    let mut found = Vec::new();
    // Inline modules (`mod tests { … }`) with the brace depth they close at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        let module = || {
            let mut module = file_module.clone();
            module.extend(inline.iter().map(|(name, _)| name.clone()));
            module
        };
        if is(tokens, i, "{") {
            depth += 1;
        } else if is(tokens, i, "}") {
            if inline.last().is_some_and(|&(_, at)| at == depth) {
                inline.pop();
            }
            depth -= 1;
        } else if ident(tokens, i) == Some("mod")
            && let Some(name) = ident(tokens, i + 1)
            && is(tokens, i + 2, "{")
        {
            inline.push((name.to_owned(), depth + 1));
        } else if ident(tokens, i) == Some("use") && !is(tokens, i + 1, "<") && !is(tokens, i.wrapping_sub(1), "$") {
            let line = tokens[i].1;
            let mut leaves = Vec::new();
            i = use_tree(tokens, i + 1, Vec::new(), &mut leaves);
            for (segments, binds) in leaves {
                found.push(Reference {
                    segments,
                    module: module(),
                    line,
                    binds,
                });
            }
            continue;
        } else if matches!(ident(tokens, i), Some("crate" | "super" | "self"))
            && is(tokens, i + 1, "::")
            && !is(tokens, i.wrapping_sub(1), "::")
            && !is(tokens, i.wrapping_sub(1), "$")
        {
            let line = tokens[i].1;
            let mut segments = vec![ident(tokens, i).unwrap_or_default().to_owned()];
            i += 1;
            while is(tokens, i, "::")
                && let Some(segment) = ident(tokens, i + 1)
            {
                segments.push(segment.to_owned());
                i += 2;
            }
            found.push(Reference {
                segments,
                module: module(),
                line,
                binds: None,
            });
            continue;
        }
        i += 1;
    }
    found
}

/// Reads one use tree from `i`, appending its leaves (full path, bound name); returns the index
/// after it.
fn use_tree(
    tokens: &[(Tok, usize)],
    mut i: usize,
    prefix: Vec<String>,
    leaves: &mut Vec<(Vec<String>, Option<String>)>,
) -> usize {
    let mut path = prefix;
    loop {
        if is(tokens, i, "::") {
            i += 1;
        } else if is(tokens, i, "{") {
            i += 1;
            while !is(tokens, i, "}") && i < tokens.len() {
                i = use_tree(tokens, i, path.clone(), leaves);
                if is(tokens, i, ",") {
                    i += 1;
                }
            }
            return i + 1;
        } else if is(tokens, i, "*") {
            leaves.push((path, None));
            return i + 1;
        } else if let Some(segment) = ident(tokens, i) {
            if segment == "as" {
                let alias = ident(tokens, i + 1).unwrap_or("_").to_owned();
                leaves.push((path, Some(alias)));
                return i + 2;
            }
            if segment == "self" && !path.is_empty() {
                i += 1;
                continue;
            }
            path.push(segment.to_owned());
            i += 1;
        } else {
            // `,`, `}` or `;`: the leaf ends here.
            let name = path.last().cloned();
            if !path.is_empty() {
                leaves.push((path, name));
            }
            return if is(tokens, i, ";") { i + 1 } else { i };
        }
    }
}

/// The crate's module tree as files, and what each module's `use` declarations bring in.
struct Crate {
    files: BTreeMap<ModPath, String>,
    uses: HashMap<ModPath, HashMap<String, ModPath>>,
}

impl Crate {
    fn is_module(&self, path: &[String]) -> bool {
        self.files.contains_key(path)
    }

    /// `segments` as an absolute path from `module`, or `None` for a path outside the crate.
    fn absolute(&self, module: &[String], segments: &[String]) -> Option<ModPath> {
        let (mut at, rest) = match segments.first().map(String::as_str) {
            Some("crate") => (Vec::new(), &segments[1..]),
            Some("self") => (module.to_vec(), &segments[1..]),
            Some("super") => {
                let mut at = module.to_vec();
                let mut rest = segments;
                while rest.first().map(String::as_str) == Some("super") {
                    at.pop()?;
                    rest = &rest[1..];
                }
                (at, rest)
            }
            Some(first) if self.is_module(&[module, &[first.to_owned()]].concat()) => (module.to_vec(), segments),
            _ => return None,
        };
        at.extend(rest.iter().cloned());
        Some(at)
    }

    /// The file that defines what `path` (absolute) names, following `use` re-exports; with the
    /// path as followed.
    fn resolve(&self, path: &[String]) -> (ModPath, ModPath) {
        let mut path = path.to_vec();
        for _ in 0..16 {
            let mut module = Vec::new();
            let mut redirected = false;
            for (n, segment) in path.iter().enumerate() {
                let child = [module.clone(), vec![segment.clone()]].concat();
                if self.is_module(&child) {
                    module = child;
                    continue;
                }
                if let Some(target) = self.uses.get(&module).and_then(|uses| uses.get(segment)) {
                    let mut next = target.clone();
                    next.extend(path[n + 1..].iter().cloned());
                    path = next;
                    redirected = true;
                }
                break;
            }
            if !redirected {
                return (module, path);
            }
        }
        (Vec::new(), path)
    }
}

fn module_of(relative: &Path) -> ModPath {
    let mut path: ModPath = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if path.last().is_some_and(|last| last == "mod" || last == "lib") {
        path.pop();
    }
    path
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("src is readable").flatten().collect();
    entries.sort_by_key(|entry| entry.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

struct Source {
    file: String,
    module: ModPath,
    references: Vec<Reference>,
}

fn read_crate() -> (Crate, Vec<Source>) {
    let root = src();
    let mut paths = Vec::new();
    rust_files(&root, &mut paths);
    let mut krate = Crate {
        files: BTreeMap::new(),
        uses: HashMap::new(),
    };
    let mut sources = Vec::new();
    for path in paths {
        let relative = path.strip_prefix(&root).expect("under src").to_path_buf();
        let module = module_of(&relative);
        let file = format!("memo-runtime/src/{}", relative.display());
        krate.files.insert(module.clone(), file.clone());
        let text = std::fs::read_to_string(&path).expect("source is readable");
        let references = references(&module, &lex(&text));
        sources.push(Source {
            file,
            module,
            references,
        });
    }
    for source in &sources {
        for reference in &source.references {
            if let Some(name) = &reference.binds
                && let Some(target) = krate.absolute(&reference.module, &reference.segments)
            {
                krate
                    .uses
                    .entry(reference.module.clone())
                    .or_default()
                    .insert(name.clone(), target);
            }
        }
    }
    (krate, sources)
}

fn related(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// One file's import of another of the same layer, as written first.
type Edges = BTreeMap<String, BTreeMap<String, (usize, String)>>;

/// Layer violations (as messages) and the imports between files of one layer.
fn check(krate: &Crate, sources: &[Source]) -> (Vec<String>, Edges) {
    let mut violations = Vec::new();
    let mut edges = Edges::new();
    for source in sources {
        let Some(top) = source.module.first() else {
            continue; // lib.rs: the crate's face, re-exporting from every layer.
        };
        let Some(own) = rank(top) else {
            violations.push(format!("{}: a file outside every layer folder {LAYERS:?}", source.file));
            continue;
        };
        for reference in &source.references {
            let Some(absolute) = krate.absolute(&reference.module, &reference.segments) else {
                continue;
            };
            let written = reference.segments.join("::");
            let at = format!("{}:{}", source.file, reference.line);
            let Some(first) = absolute.first() else {
                continue; // `super::*` from a layer's mod.rs: nothing named.
            };
            let Some(theirs) = rank(first) else {
                violations.push(format!(
                    "{at}: `{written}` goes through the crate root (`crate::{first}`), not a layer folder; \
                     import it by module path (`crate::<layer>::…`)"
                ));
                continue;
            };
            if theirs > own {
                violations.push(format!(
                    "{at}: `{written}` imports from layer `{first}`, above this file's layer `{top}` (order: {LAYERS:?})"
                ));
                continue;
            }
            let (defined_in, _) = krate.resolve(&absolute);
            if theirs == own && !related(&defined_in, &source.module) && !defined_in.is_empty() {
                let target = krate.files[&defined_in].clone();
                edges
                    .entry(source.file.clone())
                    .or_default()
                    .entry(target)
                    .or_insert((reference.line, written));
            }
        }
    }
    (violations, edges)
}

/// Every cycle of `edges` (one per strongly connected set of files), as the files around it with
/// the import that leads from each to the next.
fn cycles(edges: &Edges) -> Vec<String> {
    let mut found = Vec::new();
    let mut reported = BTreeSet::new();
    for start in edges.keys() {
        if reported.contains(start) {
            continue;
        }
        // A shortest way back to `start`, by breadth-first search.
        let mut came_from: BTreeMap<&String, &String> = BTreeMap::new();
        let mut frontier = vec![start];
        let mut closed = None;
        'search: while !frontier.is_empty() {
            let mut next = Vec::new();
            for file in frontier {
                for target in edges.get(file).into_iter().flat_map(BTreeMap::keys) {
                    if target == start {
                        closed = Some(file);
                        break 'search;
                    }
                    if !came_from.contains_key(target) {
                        came_from.insert(target, file);
                        next.push(target);
                    }
                }
            }
            frontier = next;
        }
        let Some(mut last) = closed else { continue };
        let mut ring = vec![start.clone()];
        let mut back = vec![last.clone()];
        while last != start {
            last = came_from[last];
            back.push(last.clone());
        }
        back.pop();
        ring.extend(back.into_iter().rev());
        let mut message = String::from("these files import each other around a circle:");
        for (n, file) in ring.iter().enumerate() {
            let to = &ring[(n + 1) % ring.len()];
            let (line, written) = &edges[file][to];
            let _ = write!(message, "\n    {file}:{line} imports `{written}` from {to}");
        }
        reported.extend(ring);
        found.push(message);
    }
    found
}

#[test]
fn every_file_imports_only_from_its_own_layer_and_those_below() {
    let (krate, sources) = read_crate();
    let (violations, _) = check(&krate, &sources);
    assert!(violations.is_empty(), "layer violations:\n{}", violations.join("\n"));
}

#[test]
fn no_files_of_one_layer_import_each_other() {
    let (krate, sources) = read_crate();
    let (_, edges) = check(&krate, &sources);
    let found = cycles(&edges);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn lib_rs_and_the_readme_list_the_layers_in_this_order() {
    let folders: Vec<&str> = LAYERS.iter().flat_map(|layer| layer.iter().copied()).collect();
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs is readable");
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|line| line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("mod ")))
        .filter_map(|rest| rest.strip_suffix(';'))
        .filter(|name| rank(name).is_some())
        .collect();
    let ranks: Vec<usize> = declared.iter().filter_map(|name| rank(name)).collect();
    assert!(
        declared.len() == folders.len() && ranks.is_sorted(),
        "src/lib.rs declares the layer folders {declared:?}, not in the order {LAYERS:?}"
    );

    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
        .expect("README.md is readable");
    let layout = readme
        .split("## Layout")
        .nth(1)
        .expect("the README has a Layout section");
    let mut from = 0;
    for folder in &folders {
        let mention = format!("`memo-runtime/src/{folder}/`");
        let found = layout[from..]
            .find(&mention)
            .unwrap_or_else(|| panic!("README's Layout does not list {mention} after the layers below it"));
        from += found + mention.len();
    }
}

#[test]
fn the_checks_see_an_import_that_climbs_a_layer() {
    let tokens = lex(
        "mod tests { use super::*; }\nuse crate::{exec::{invoke, stop::Stop}, api};\nfn f() { let _ = 'x'; crate::dispatch::run(\"crate::cli::no\"); }",
    );
    let refs = references(&vec!["plan".into(), "catalog".into()], &tokens);
    let paths: Vec<String> = refs.iter().map(|r| r.segments.join("::")).collect();
    assert_eq!(
        paths,
        [
            "super",
            "crate::exec::invoke",
            "crate::exec::stop::Stop",
            "crate::api",
            "crate::dispatch::run"
        ]
    );
    assert_eq!(refs[0].module, ["plan", "catalog", "tests"]);
    assert_eq!(refs[4].line, 3);
}
