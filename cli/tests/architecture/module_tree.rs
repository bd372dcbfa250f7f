//! A crate's module tree read from its sources with `syn`, and the module each path in it refers to.
//!
//! [`ModuleTree::load`] follows `mod` declarations from the crate root (files and inline blocks, `#[path]`
//! included) and records, for every module, its child modules, the names its `use` declarations bring in, and
//! every multi-segment path written in it (in `use` trees, types, expressions, patterns, macro bodies and the
//! string paths of attributes such as `#[serde(with = "crate::duration")]`). [`ModuleTree::references`] then
//! resolves those paths the way rustc does for the cases that matter here: `crate::`, `self::`, `super::`,
//! names brought in by `use` (renames and `self` in groups included) and child modules, following re-exports
//! (`pub use`) to the module that defines the item. Paths into other crates resolve to nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::visit::{self, Visit};

/// Index of a module in [`ModuleTree::modules`]; the crate root is 0.
pub type ModuleId = usize;

/// Where a reference is written: a file (as given to [`ModuleTree::load`]) and a 1-based line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// The source file.
    pub file: PathBuf,
    /// The line in it.
    pub line: usize,
}

/// A path as written: its segments after an optional leading `::` (then `global`).
#[derive(Clone, Debug)]
struct WrittenPath {
    global: bool,
    segments: Vec<String>,
}

/// One module of the tree.
#[derive(Debug)]
pub struct Module {
    /// Its path from the crate root (empty for the root), e.g. `["auth", "keys"]`.
    pub path: Vec<String>,
    parent: Option<ModuleId>,
    children: BTreeMap<String, ModuleId>,
    /// Names brought into scope by `use` declarations (the alias), with the path they stand for.
    imports: BTreeMap<String, WrittenPath>,
    /// Every multi-segment path written in the module, with where.
    written: Vec<(WrittenPath, Location)>,
}

/// A crate's modules, with what each one refers to.
#[derive(Debug)]
pub struct ModuleTree {
    /// The modules; index 0 is the crate root.
    pub modules: Vec<Module>,
}

/// A reference from one module to another, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The module the path is written in.
    pub from: ModuleId,
    /// The module it refers to (or through which it refers, for a re-export).
    pub to: ModuleId,
    /// Where the path is written.
    pub at: Location,
}

/// How deep re-exports and imports are followed before a path is given up on (guards against `use` loops).
const MAX_ALIAS_DEPTH: usize = 16;

impl ModuleTree {
    /// Reads the crate whose root file is `root`, reading each source file through `read`.
    pub fn load(root: &Path, read: &dyn Fn(&Path) -> std::io::Result<String>) -> Result<Self, String> {
        let mut tree = ModuleTree { modules: Vec::new() };
        let source = read(root).map_err(|error| format!("{}: {error}", root.display()))?;
        let file = syn::parse_file(&source).map_err(|error| format!("{}: {error}", root.display()))?;
        let dir = root.parent().unwrap_or(Path::new("")).to_path_buf();
        tree.add_module(None, Vec::new(), root, &file.items, &dir, read)?;
        Ok(tree)
    }

    /// Adds the module whose items are `items` (written in `file`; its `mod x;` children live in `child_dir`),
    /// then its children, depth first.
    fn add_module(
        &mut self,
        parent: Option<ModuleId>,
        path: Vec<String>,
        file: &Path,
        items: &[syn::Item],
        child_dir: &Path,
        read: &dyn Fn(&Path) -> std::io::Result<String>,
    ) -> Result<ModuleId, String> {
        let id = self.modules.len();
        let mut collector = Collector { file, written: Vec::new(), imports: BTreeMap::new(), children: Vec::new() };
        for item in items {
            collector.visit_item(item);
        }
        let Collector { written, imports, children, .. } = collector;
        self.modules.push(Module { path: path.clone(), parent, children: BTreeMap::new(), imports, written });
        for child in children {
            let mut child_path = path.clone();
            child_path.push(child.name.clone());
            let child_id = match child.content {
                Some(items) => {
                    let dir = child_dir.join(&child.name);
                    self.add_module(Some(id), child_path, file, &items, &dir, read)?
                }
                None => {
                    let Some(child_file) = find_module_file(&child, child_dir, file, read) else {
                        if child.conditional {
                            continue; // a `#[cfg(...)]` module for another platform
                        }
                        return Err(format!(
                            "{}: no file for `mod {};` in {}",
                            file.display(),
                            child.name,
                            child_dir.display()
                        ));
                    };
                    let source = read(&child_file).map_err(|error| format!("{}: {error}", child_file.display()))?;
                    let parsed =
                        syn::parse_file(&source).map_err(|error| format!("{}: {error}", child_file.display()))?;
                    let dir = directory_for_children_of(&child_file);
                    self.add_module(Some(id), child_path, &child_file, &parsed.items, &dir, read)?
                }
            };
            self.modules[id].children.insert(child.name, child_id);
        }
        Ok(id)
    }

    /// Reads an in-memory crate given as `(file, source)` pairs, the first being the crate root (for tests).
    pub fn in_memory(files: &[(&str, &str)]) -> Self {
        let sources: BTreeMap<PathBuf, String> =
            files.iter().map(|(path, text)| (PathBuf::from(path), text.to_string())).collect();
        let read =
            |path: &Path| sources.get(path).cloned().ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound));
        ModuleTree::load(Path::new(files[0].0), &read).unwrap()
    }

    /// Every reference from a module to another module of this crate, in module order then source order.
    /// A path through a re-export refers both to the module it is written against and to the one defining it.
    pub fn references(&self) -> Vec<Reference> {
        let mut references = Vec::new();
        for (from, module) in self.modules.iter().enumerate() {
            for (path, at) in &module.written {
                let mut targets = BTreeSet::new();
                // A path that leaves the crate (`None`) may still have passed through its modules.
                let _ = self.resolve(from, path, 0, &mut targets);
                for to in targets.into_iter().filter(|&to| to != from) {
                    references.push(Reference { from, to, at: at.clone() });
                }
            }
        }
        references
    }

    /// Resolves `path`, written in module `at`: records in `targets` the module it ends in (a module, or the
    /// one holding the item it names) and every module whose import or re-export it goes through; returns the
    /// module it ends in and whether every segment named a module. `None` for paths into other crates.
    fn resolve(
        &self,
        at: ModuleId,
        path: &WrittenPath,
        depth: usize,
        targets: &mut BTreeSet<ModuleId>,
    ) -> Option<(ModuleId, bool)> {
        if path.global || depth > MAX_ALIAS_DEPTH {
            return None;
        }
        let (first, rest) = path.segments.split_first()?;
        match first.as_str() {
            "crate" => self.walk(0, rest, depth, targets),
            "self" => self.walk(at, rest, depth, targets),
            "super" => {
                let mut module = self.modules[at].parent?;
                let mut rest = rest;
                while let Some((head, tail)) = rest.split_first()
                    && head == "super"
                {
                    module = self.modules[module].parent?;
                    rest = tail;
                }
                self.walk(module, rest, depth, targets)
            }
            name => {
                let module = &self.modules[at];
                if module.children.contains_key(name) || module.imports.contains_key(name) {
                    self.walk(at, &path.segments, depth, targets)
                } else {
                    None // an extern crate, a type parameter, `Self`, a prelude name...
                }
            }
        }
    }

    /// Follows `segments` down from module `at` through child modules and imports (see [`Self::resolve`]).
    fn walk(
        &self,
        mut at: ModuleId,
        segments: &[String],
        depth: usize,
        targets: &mut BTreeSet<ModuleId>,
    ) -> Option<(ModuleId, bool)> {
        for segment in segments {
            let module = &self.modules[at];
            if let Some(&child) = module.children.get(segment) {
                at = child;
            } else if let Some(import) = module.imports.get(segment) {
                targets.insert(at); // `a::Name` where `a` re-exports `Name` uses `a` too
                match self.resolve(at, import, depth + 1, targets)? {
                    (reached, true) => at = reached,
                    ended => return Some(ended),
                }
            } else {
                targets.insert(at);
                return Some((at, false));
            }
        }
        targets.insert(at);
        Some((at, true))
    }
}

/// The directory in which the `mod x;` declarations of a module's file (not the crate root's) find their
/// files: its own directory for a `mod.rs`, else the directory named after it.
fn directory_for_children_of(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new(""));
    match file.file_stem().and_then(|stem| stem.to_str()) {
        Some("mod") | None => dir.to_path_buf(),
        Some(stem) => dir.join(stem),
    }
}

/// The file of a `mod name;` declaration: `#[path]` (relative to the declaring file's directory), else
/// `child_dir/name.rs` or `child_dir/name/mod.rs`, whichever exists.
fn find_module_file(
    child: &ChildModule,
    child_dir: &Path,
    declaring_file: &Path,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Option<PathBuf> {
    if let Some(path) = &child.path_attribute {
        return Some(declaring_file.parent().unwrap_or(Path::new("")).join(path));
    }
    [child_dir.join(format!("{}.rs", child.name)), child_dir.join(&child.name).join("mod.rs")]
        .into_iter()
        .find(|candidate| read(candidate).is_ok())
}

/// A `mod` item found while collecting a module.
struct ChildModule {
    name: String,
    /// The items of an inline `mod name { ... }`; `None` for `mod name;`.
    content: Option<Vec<syn::Item>>,
    path_attribute: Option<String>,
    /// Whether it carries a `#[cfg(...)]` (its file may be missing on this platform).
    conditional: bool,
}

/// Walks one module's items (not its child modules') and collects what [`Module`] records.
struct Collector<'a> {
    file: &'a Path,
    written: Vec<(WrittenPath, Location)>,
    imports: BTreeMap<String, WrittenPath>,
    children: Vec<ChildModule>,
}

impl Collector<'_> {
    fn location(&self, span: proc_macro2::Span) -> Location {
        Location { file: self.file.to_path_buf(), line: span.start().line }
    }

    /// Records a written path if it has at least two segments (a lone name is either local or an import,
    /// whose `use` is recorded already).
    fn record(&mut self, global: bool, segments: Vec<String>, span: proc_macro2::Span) {
        if segments.len() > 1 {
            let at = self.location(span);
            self.written.push((WrittenPath { global, segments }, at));
        }
    }

    /// Flattens a `use` tree: every leaf becomes an import (unless a glob or `_`) and a written path.
    fn use_tree(&mut self, global: bool, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        let import = |collector: &mut Self, alias: String, segments: Vec<String>, span| {
            if alias != "_" {
                collector.imports.insert(alias, WrittenPath { global, segments: segments.clone() });
            }
            let at = collector.location(span);
            collector.written.push((WrittenPath { global, segments }, at));
        };
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(global, prefix, &path.tree);
                prefix.pop();
            }
            syn::UseTree::Name(name) if name.ident == "self" => {
                if let Some(last) = prefix.last().cloned() {
                    import(self, last, prefix.clone(), name.ident.span());
                }
            }
            syn::UseTree::Name(name) => {
                let mut segments = prefix.clone();
                segments.push(name.ident.to_string());
                import(self, name.ident.to_string(), segments, name.ident.span());
            }
            syn::UseTree::Rename(rename) => {
                let mut segments = prefix.clone();
                if rename.ident != "self" {
                    segments.push(rename.ident.to_string());
                }
                import(self, rename.rename.to_string(), segments, rename.ident.span());
            }
            syn::UseTree::Glob(glob) => {
                let at = self.location(glob.star_token.span);
                self.written.push((WrittenPath { global, segments: prefix.clone() }, at));
            }
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.use_tree(global, prefix, tree);
                }
            }
        }
    }

    /// Records the paths in a token stream that is not parsed as Rust (macro bodies, attribute arguments):
    /// every `a::b::c` run of identifiers, and, if `string_paths`, string literals that spell a path.
    fn tokens(&mut self, tokens: TokenStream, string_paths: bool) {
        let mut run: Option<TokenPath> = None; // the run being read
        let mut colons = 0; // `:` just read (two make a separator)
        let mut separated = false; // a `::` ends the tokens read so far
        for token in tokens {
            match token {
                TokenTree::Ident(ident) => {
                    match &mut run {
                        Some(path) if separated => path.segments.push(ident.to_string()),
                        _ => {
                            self.record_run(run.take());
                            run = Some(TokenPath {
                                global: separated,
                                segments: vec![ident.to_string()],
                                span: ident.span(),
                            });
                        }
                    }
                    separated = false;
                    colons = 0;
                    continue;
                }
                TokenTree::Punct(punct) if punct.as_char() == ':' => {
                    colons += 1;
                    match (colons, punct.spacing()) {
                        (1, Spacing::Joint) => continue,
                        (2, Spacing::Alone) => {
                            separated = true;
                            colons = 0;
                            continue;
                        }
                        _ => {}
                    }
                }
                TokenTree::Group(group) => {
                    self.record_run(run.take());
                    self.tokens(group.stream(), string_paths);
                }
                TokenTree::Literal(literal) if string_paths => {
                    if let Ok(syn::Lit::Str(text)) = syn::parse_str::<syn::Lit>(&literal.to_string())
                        && let Ok(path) = syn::parse_str::<syn::Path>(&text.value())
                    {
                        let segments = path.segments.iter().map(|segment| segment.ident.to_string()).collect();
                        self.record(path.leading_colon.is_some(), segments, literal.span());
                    }
                }
                // `$crate::a::b` in a `macro_rules!` body: the `$` ends a run, `crate` starts the next.
                TokenTree::Punct(_) | TokenTree::Literal(_) => {}
            }
            self.record_run(run.take());
            separated = false;
            colons = 0;
        }
        self.record_run(run);
    }

    fn record_run(&mut self, run: Option<TokenPath>) {
        if let Some(TokenPath { global, segments, span }) = run {
            self.record(global, segments, span);
        }
    }
}

/// A path read from raw tokens.
struct TokenPath {
    global: bool,
    segments: Vec<String>,
    span: proc_macro2::Span,
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_mod(&mut self, module: &'ast syn::ItemMod) {
        let path_attribute =
            module.attrs.iter().find(|attr| attr.path().is_ident("path")).and_then(|attr| match &attr.meta {
                syn::Meta::NameValue(syn::MetaNameValue {
                    value: syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(path), .. }),
                    ..
                }) => Some(path.value()),
                _ => None,
            });
        self.children.push(ChildModule {
            name: module.ident.to_string(),
            content: module.content.as_ref().map(|(_, items)| items.to_vec()),
            path_attribute,
            conditional: module.attrs.iter().any(|attr| attr.path().is_ident("cfg")),
        });
        // The child's own items are collected as its own module, not this one's.
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(item.leading_colon.is_some(), &mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments = path.segments.iter().map(|segment| segment.ident.to_string()).collect();
        let span = path.segments.first().map_or_else(proc_macro2::Span::call_site, |segment| segment.ident.span());
        self.record(path.leading_colon.is_some(), segments, span);
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.tokens(mac.tokens.clone(), false);
    }

    fn visit_attribute(&mut self, attr: &'ast syn::Attribute) {
        if attr.path().is_ident("doc") {
            return;
        }
        if let syn::Meta::List(list) = &attr.meta {
            self.tokens(list.tokens.clone(), true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The references as `from -> to @ file:line`, module paths joined with `::`.
    fn described(tree: &ModuleTree) -> Vec<String> {
        let name = |id: ModuleId| {
            let path = tree.modules[id].path.join("::");
            if path.is_empty() { "crate".to_string() } else { path }
        };
        tree.references()
            .iter()
            .map(|r| format!("{} -> {} @ {}:{}", name(r.from), name(r.to), r.at.file.display(), r.at.line))
            .collect()
    }

    #[test]
    fn files_inline_modules_and_path_attributes_make_the_tree() {
        let tree = ModuleTree::in_memory(&[
            ("src/lib.rs", "mod a;\nmod b;\nmod c { mod d; }\n#[path = \"other.rs\"] mod e;\n#[cfg(windows)] mod f;"),
            ("src/a.rs", "mod inner;"),
            ("src/a/inner.rs", ""),
            ("src/b/mod.rs", "mod inner;"),
            ("src/b/inner.rs", ""),
            ("src/c/d.rs", ""),
            ("src/other.rs", ""),
        ]);
        let paths: Vec<String> = tree.modules.iter().map(|module| module.path.join("::")).collect();
        assert_eq!(paths, ["", "a", "a::inner", "b", "b::inner", "c", "c::d", "e"]);
    }

    #[test]
    fn crate_self_super_and_grouped_use_paths_resolve() {
        let tree = ModuleTree::in_memory(&[
            ("src/lib.rs", "mod a;\nmod b;\nmod c;"),
            ("src/a.rs", "use crate::{b::{self, X}, c::Y as Z};\nmod inner;"),
            ("src/a/inner.rs", "fn f() { super::super::c::g(); }\nfn h() -> self::Local { todo!() }"),
            ("src/b.rs", "pub struct X;"),
            ("src/c.rs", "pub struct Y; pub fn g() {}"),
        ]);
        assert_eq!(
            described(&tree),
            ["a -> b @ src/a.rs:1", "a -> b @ src/a.rs:1", "a -> c @ src/a.rs:1", "a::inner -> c @ src/a/inner.rs:1"]
        );
    }

    #[test]
    fn paths_in_expressions_types_macros_and_attributes_resolve_through_imports() {
        let tree = ModuleTree::in_memory(&[
            ("src/lib.rs", "mod a;\nmod b;\nmod c;\nmod d;"),
            (
                "src/a.rs",
                "use super::b;\n\
                 fn f(x: crate::c::T) {\n\
                 b::run();\n\
                 assert_eq!(x, crate::d::VALUE);\n\
                 }\n\
                 #[derive(serde::Deserialize)]\n\
                 struct S { #[serde(with = \"crate::c::format\")] x: u32 }\n\
                 /// Mentions [crate::d::VALUE] in a doc comment: not a use.\n\
                 fn g() { std::mem::drop(1); }",
            ),
            ("src/b.rs", ""),
            ("src/c.rs", ""),
            ("src/d.rs", ""),
        ]);
        assert_eq!(
            described(&tree),
            [
                "a -> b @ src/a.rs:1",
                "a -> c @ src/a.rs:2",
                "a -> b @ src/a.rs:3",
                "a -> d @ src/a.rs:4",
                "a -> c @ src/a.rs:7",
            ]
        );
    }

    #[test]
    fn re_exports_lead_to_the_defining_module() {
        let tree = ModuleTree::in_memory(&[
            ("src/lib.rs", "mod a;\nmod b;\nmod c;\npub use a::Thing;"),
            ("src/a.rs", "pub struct Thing;"),
            ("src/b.rs", "use crate::Thing;"),
            ("src/c.rs", "pub use crate::a::Thing as Renamed;\nfn f() { crate::c::Renamed::new(); }"),
        ]);
        // b names `crate::Thing`, the root's re-export of `a::Thing`: it uses the root and `a`. c's path through
        // its own re-export refers to `a` alone.
        assert_eq!(
            described(&tree),
            [
                "crate -> a @ src/lib.rs:4",
                "b -> crate @ src/b.rs:1",
                "b -> a @ src/b.rs:1",
                "c -> a @ src/c.rs:1",
                "c -> a @ src/c.rs:2"
            ]
        );
    }
}
