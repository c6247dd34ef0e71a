//! The route modules and the shared context never import `handler.rs`, which imports
//! them: the handler is the top of the crate, the context its bottom.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::path::Path;

fn sources_under(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(sources_under(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
        }
    }
    found
}

#[test]
fn no_route_module_and_not_the_context_imports_the_handler_that_imports_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    let mut lower = sources_under(&src.join("routes"));
    lower.push(("context.rs".into(), std::fs::read_to_string(src.join("context.rs")).unwrap()));
    lower.push(("auth.rs".into(), std::fs::read_to_string(src.join("auth.rs")).unwrap()));
    for (file, text) in &lower {
        assert!(!text.contains("crate::handler"), "{file} imports crate::handler");
        assert!(!text.contains("super::super::handler"), "{file} imports the handler");
        checked += 1;
    }
    let context = std::fs::read_to_string(src.join("context.rs")).unwrap();
    assert!(!context.contains("crate::routes"), "context.rs imports the routes");
    assert!(checked >= 7, "only {checked} files checked");
}
