//! The engine's modules form layers: each uses only modules of a lower layer, so
//! there is no import cycle and a newcomer can read them bottom-up. The list below is
//! the one in `src/lib.rs`; a new module must be placed in it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const LAYERS: &[(&str, u8)] = &[
    ("money", 0),
    ("model", 0),
    ("history", 1),
    ("config", 1),
    ("state", 2),
    ("decision", 3),
    ("rules", 4),
    ("ports", 4),
    ("provisioning", 5),
    ("evaluation", 6),
    ("testing", 7),
];

/// `crate::x` paths a module's production code names (its `#[cfg(test)]` tests are
/// left out: they may use the in-memory doubles of the `testing` layer).
fn uses(source: &str) -> BTreeSet<String> {
    let production = source.split("#[cfg(test)]").next().unwrap_or_default();
    production
        .match_indices("crate::")
        .map(|(at, _)| {
            production[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

fn module_sources() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            // A directory module: all its files belong to it.
            let mut text = String::new();
            for file in std::fs::read_dir(&path).unwrap() {
                text.push_str(&std::fs::read_to_string(file.unwrap().path()).unwrap());
                text.push('\n');
            }
            modules.insert(name, text);
        } else if name != "lib" {
            modules.insert(name, std::fs::read_to_string(&path).unwrap());
        }
    }
    modules
}

#[test]
fn every_engine_module_uses_only_modules_of_a_lower_layer() {
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut violations = Vec::new();
    let mut listing = Vec::new();
    for (module, source) in module_sources() {
        let Some(&own) = layer.get(module.as_str()) else {
            violations.push(format!("{module} is not in LAYERS (nor in lib.rs's table)"));
            continue;
        };
        let used: Vec<String> = uses(&source).into_iter().filter(|m| *m != module).collect();
        for dependency in &used {
            match layer.get(dependency.as_str()) {
                Some(&theirs) if theirs < own => {}
                Some(&theirs) => {
                    violations.push(format!("{module} (layer {own}) uses {dependency} (layer {theirs})"))
                }
                None => violations.push(format!("{module} uses crate::{dependency}, which is not a module")),
            }
        }
        listing.push(format!(
            "{own} {module} -> {}",
            if used.is_empty() { "-".into() } else { used.join(", ") }
        ));
    }
    listing.sort();
    // Printed for the record (`cargo test -p revscale-engine --test layers -- --nocapture`).
    println!("{}", listing.join("\n"));
    assert!(violations.is_empty(), "layering broken:\n{}", violations.join("\n"));
    assert_eq!(listing.len(), LAYERS.len(), "every layer is a module that exists");
}
