//! The sibling graphs of a module tree and their cycles.
//!
//! A reference from module `x` to module `y` is an edge between the two siblings under which their paths part:
//! `crate::a::p` referring to `crate::b::q` is `a -> b` among the children of the crate root, `crate::a::p`
//! referring to `crate::a::r::s` is `p -> r` among the children of `a`. References between a module and its
//! ancestor (a parent and its children) are no edge. A graph with a cycle has a strongly connected component
//! of two or more modules; each of its edges is reported with the shortest cycle through it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::module_tree::{Location, ModuleTree};

/// A cycle among the children of one module.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cycle {
    /// The parent module's path (empty for the crate root).
    pub parent: Vec<String>,
    /// The siblings in cycle order, starting with the smallest name; the last one refers back to the first.
    pub members: Vec<String>,
    /// For each edge `members[i] -> members[i + 1]` (wrapping), where the first reference is written.
    pub references: Vec<Location>,
}

impl Cycle {
    /// `a -> b -> a (file:line, file:line)`, the siblings named by their full paths below the crate root.
    pub fn describe(&self, display_file: &dyn Fn(&Location) -> String) -> String {
        let name = |member: &String| {
            let mut path = self.parent.clone();
            path.push(member.clone());
            path.join("::")
        };
        let mut names: Vec<String> = self.members.iter().map(name).collect();
        names.push(names[0].clone());
        let references: Vec<String> = self.references.iter().map(display_file).collect();
        format!("{} ({})", names.join(" -> "), references.join(", "))
    }
}

/// Sibling edges, each with the first place (in source order) that makes it: parent path -> (from, to) -> where.
type SiblingGraphs = BTreeMap<Vec<String>, BTreeMap<(String, String), Location>>;

/// The sibling edges of every level of `tree`.
fn sibling_graphs(tree: &ModuleTree) -> SiblingGraphs {
    let mut graphs = SiblingGraphs::new();
    for reference in tree.references() {
        let from = &tree.modules[reference.from].path;
        let to = &tree.modules[reference.to].path;
        let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
        if common == from.len() || common == to.len() {
            continue; // ancestor and descendant
        }
        let edges = graphs.entry(from[..common].to_vec()).or_default();
        let edge = (from[common].clone(), to[common].clone());
        let at = reference.at;
        edges.entry(edge).and_modify(|first| *first = first.clone().min(at.clone())).or_insert(at);
    }
    graphs
}

/// Every cycle of every sibling graph of `tree`: for each edge on a cycle, the shortest cycle through it
/// (each cycle once), ordered by parent then members.
pub fn find_cycles(tree: &ModuleTree) -> Vec<Cycle> {
    let mut cycles = BTreeSet::new();
    for (parent, edges) in sibling_graphs(tree) {
        let mut successors: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (from, to) in edges.keys() {
            successors.entry(from).or_default().push(to);
        }
        for (from, to) in edges.keys() {
            let Some(path_back) = shortest_path(&successors, to, from) else { continue };
            // The cycle from -> to -> ... -> from, rotated to start at its smallest member.
            let mut members: Vec<&str> = std::iter::once(from.as_str()).chain(path_back).collect();
            members.pop(); // `from` again
            let smallest = (0..members.len()).min_by_key(|&index| members[index]).unwrap_or(0);
            members.rotate_left(smallest);
            let members: Vec<String> = members.into_iter().map(str::to_string).collect();
            let next = members.iter().cycle().skip(1);
            let references = members.iter().zip(next).map(|(a, b)| edges[&(a.clone(), b.clone())].clone()).collect();
            cycles.insert(Cycle { parent: parent.clone(), members, references });
        }
    }
    cycles.into_iter().collect()
}

/// The shortest path `start -> ... -> goal` (both included) in the graph, if any; ties go to smaller names.
fn shortest_path<'a>(
    successors: &BTreeMap<&'a str, Vec<&'a str>>,
    start: &'a str,
    goal: &'a str,
) -> Option<Vec<&'a str>> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        if node == goal {
            let mut path = vec![goal];
            while let Some(&previous) = came_from.get(path.last()?) {
                path.push(previous);
            }
            path.reverse();
            return Some(path);
        }
        for &next in successors.get(node).into_iter().flatten() {
            if next != start && !came_from.contains_key(next) {
                came_from.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(files: &[(&str, &str)]) -> Vec<String> {
        let display = |at: &Location| format!("{}:{}", at.file.display(), at.line);
        find_cycles(&ModuleTree::in_memory(files)).iter().map(|cycle| cycle.describe(&display)).collect()
    }

    #[test]
    fn a_two_module_cycle_is_found_with_one_reference_per_edge() {
        let cycles = described(&[
            ("src/lib.rs", "mod app;\nmod auth;\nmod metrics;"),
            ("src/app.rs", "use crate::metrics::Metrics;\nuse crate::auth::Keys;\npub struct App;"),
            ("src/auth.rs", "\nfn check(app: &crate::app::App) {}\nfn again(app: &crate::app::App) {}"),
            ("src/metrics.rs", "pub struct Metrics;"),
        ]);
        assert_eq!(cycles, ["app -> auth -> app (src/app.rs:2, src/auth.rs:2)"]);
    }

    #[test]
    fn cycles_are_found_at_every_level_and_parent_child_references_are_no_edge() {
        let cycles = described(&[
            ("src/lib.rs", "mod policy;\nmod router;\nuse policy::hot::Hot;"),
            ("src/policy/mod.rs", "mod hot;\nmod cost;\nmod select;\nuse crate::router::Router;"),
            ("src/policy/hot.rs", "use super::cost::Cost;\nuse super::Shared;\nuse crate::policy::select::pick;"),
            ("src/policy/cost.rs", "fn f() { super::select::pick(); }"),
            ("src/policy/select.rs", "fn g() { crate::policy::hot::Hot::new(); }"),
            ("src/router.rs", "use crate::policy;\nfn f() { policy::cost::Cost::new(); }"),
        ]);
        assert_eq!(
            cycles,
            [
                "policy -> router -> policy (src/policy/mod.rs:4, src/router.rs:1)",
                "policy::cost -> policy::select -> policy::hot -> policy::cost \
                 (src/policy/cost.rs:1, src/policy/select.rs:1, src/policy/hot.rs:1)",
                "policy::hot -> policy::select -> policy::hot (src/policy/hot.rs:3, src/policy/select.rs:1)",
            ]
        );
    }

    #[test]
    fn an_acyclic_crate_has_no_cycle() {
        let cycles = described(&[
            ("src/lib.rs", "mod app;\nmod auth;\nmod metrics;\npub use app::App;"),
            ("src/app.rs", "use crate::{auth::Keys, metrics::Metrics};\npub struct App;"),
            ("src/auth.rs", "use crate::metrics::Metrics;\npub struct Keys;"),
            ("src/metrics.rs", "pub struct Metrics;"),
        ]);
        assert!(cycles.is_empty(), "{cycles:?}");
    }

    #[test]
    fn a_cycle_through_a_re_export_is_found() {
        let cycles = described(&[
            ("src/lib.rs", "mod a;\nmod b;\npub use a::Thing;"),
            ("src/a.rs", "pub struct Thing;\nfn f() { crate::b::g(); }"),
            ("src/b.rs", "pub fn g() -> crate::Thing { todo!() }"),
        ]);
        assert_eq!(cycles, ["a -> b -> a (src/a.rs:2, src/b.rs:1)"]);
    }
}
