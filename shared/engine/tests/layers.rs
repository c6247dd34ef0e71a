//! The engine's modules form layers: each uses only modules of a lower layer, so
//! there is no import cycle and a newcomer can read them bottom-up. The list below is
//! the one in `src/lib.rs`; a new module must be placed in it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const LAYERS: &[(&str, u8)] = &[
    ("money", 0),
    ("model", 0),
    ("identity", 0),
    ("history", 1),
    ("drivers", 1),
    ("runway", 2),
    ("config", 3),
    ("state", 4),
    ("decision", 5),
    ("approval", 5),
    ("rules", 6),
    ("ports", 6),
    ("provisioning", 7),
    ("drift", 7),
    ("evaluation", 8),
    ("testing", 9),
];

/// A file without its `#[cfg(test)] mod ... { ... }` blocks: tests may use the
/// in-memory doubles of the `testing` layer; everything else is production code.
fn without_test_modules(source: &str) -> String {
    let mut out = String::new();
    let mut rest = source;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        // The attribute's item: skip to its opening brace, then to the matching one.
        let Some(open) = after.find('{') else { return out };
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The root re-exports of `lib.rs` (`pub use rules::{evaluate, ...}`): a name used as
/// `crate::evaluate` belongs to the module that defines it.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for statement in lib.split(';') {
        let Some(path) = statement.trim().strip_prefix("pub use ") else { continue };
        let Some((module, items)) = path.split_once("::") else { continue };
        for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            let name = item.split(" as ").last().unwrap_or_default().trim();
            if !name.is_empty() {
                names.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    names
}

/// The engine modules a module's production code names: `crate::x...`, each item of a
/// `crate::{x::..., y::...}` group, a root re-export (`crate::Decision` is `decision`'s),
/// and `super::x` in a top-level file (where `super` is the crate root).
fn uses(source: &str, top_level: bool, reexports: &BTreeMap<String, String>) -> BTreeSet<String> {
    let production = without_test_modules(source);
    let mut found = BTreeSet::new();
    let mut roots = vec!["crate::"];
    if top_level {
        roots.push("super::");
    }
    for root in roots {
        for (at, _) in production.match_indices(root) {
            let after = &production[at + root.len()..];
            let items: Vec<&str> = match after.strip_prefix('{') {
                Some(group) => group[..group.find('}').unwrap_or(group.len())].split(',').collect(),
                None => vec![after],
            };
            for item in items {
                let name: String =
                    item.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                let module = match name.chars().next() {
                    Some(c) if c.is_ascii_uppercase() || !item.trim().contains("::") => {
                        reexports.get(&name).cloned().unwrap_or(name)
                    }
                    _ => name,
                };
                if !module.is_empty() && module != "self" {
                    found.insert(module);
                }
            }
        }
    }
    found
}

/// Every module's files, the top-level file of a directory module included.
fn module_sources() -> BTreeMap<String, Vec<(bool, String)>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules: BTreeMap<String, Vec<(bool, String)>> = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            for file in std::fs::read_dir(&path).unwrap() {
                let file = file.unwrap().path();
                // Only `mod.rs` sits at the top of the module; in a submodule `super`
                // is the module itself.
                let top = file.file_name().is_some_and(|n| n == "mod.rs");
                modules.entry(name.clone()).or_default().push((top, std::fs::read_to_string(file).unwrap()));
            }
        } else if name != "lib" {
            modules.entry(name).or_default().push((true, std::fs::read_to_string(&path).unwrap()));
        }
    }
    modules
}

fn lib_reexports() -> BTreeMap<String, String> {
    root_reexports(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap(),
    )
}

#[test]
fn every_engine_module_uses_only_modules_of_a_lower_layer() {
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let reexports = lib_reexports();
    let mut violations = Vec::new();
    let mut listing = Vec::new();
    for (module, files) in module_sources() {
        let Some(&own) = layer.get(module.as_str()) else {
            violations.push(format!("{module} is not in LAYERS (nor in lib.rs's table)"));
            continue;
        };
        let used: BTreeSet<String> = files
            .iter()
            .flat_map(|(top, text)| uses(text, *top, &reexports))
            .filter(|m| *m != module)
            .collect();
        for dependency in &used {
            match layer.get(dependency.as_str()) {
                Some(&theirs) if theirs < own => {}
                Some(&theirs) => {
                    violations.push(format!("{module} (layer {own}) uses {dependency} (layer {theirs})"))
                }
                None => violations.push(format!("{module} uses crate::{dependency}, which is not a module")),
            }
        }
        let list = used.iter().cloned().collect::<Vec<_>>().join(", ");
        listing.push(format!("{own} {module} -> {}", if list.is_empty() { "-" } else { &list }));
    }
    listing.sort();
    // Printed for the record (`cargo test -p revscale-engine --test layers -- --nocapture`).
    println!("{}", listing.join("\n"));
    assert!(violations.is_empty(), "layering broken:\n{}", violations.join("\n"));
    assert_eq!(listing.len(), LAYERS.len(), "every layer is a module that exists");
}

#[test]
fn an_upward_import_is_found_however_it_is_written() {
    let reexports = lib_reexports();
    let found = |text: &str, top: bool| uses(text, top, &reexports);
    assert!(found("use crate::evaluation::run_evaluation;", true).contains("evaluation"));
    assert!(
        found("use crate::{history::History, evaluation::EvaluationOutcome};", true).contains("evaluation")
    );
    assert!(found("fn f() -> crate::Decision { todo!() }", true).contains("decision"), "a root re-export");
    assert!(found("use super::rules::evaluate;", true).contains("rules"), "super in a top-level file");
    assert!(!found("use super::Clock;", false).contains("Clock"), "super in a submodule is its parent");
    let after_tests =
        "#[cfg(test)]\nmod tests {\n    use crate::testing::day;\n}\nfn late() { crate::rules::evaluate; }";
    let late = found(after_tests, true);
    assert!(late.contains("rules"), "code after a test module is production code: {late:?}");
    assert!(!late.contains("testing"), "a test module may use the testing layer: {late:?}");
}
