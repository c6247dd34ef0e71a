//! `api` (the operator calls) uses `orphans` and `render`; neither of them uses `api`
//! back, so the modules read bottom-up with no cycle.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

#[test]
fn orphans_and_render_do_not_import_the_api_module_that_uses_them() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for file in ["orphans.rs", "render.rs", "table.rs", "stack.rs"] {
        let text = std::fs::read_to_string(src.join(file)).unwrap();
        assert!(!text.contains("crate::api"), "{file} imports crate::api");
    }
    let api = std::fs::read_to_string(src.join("api.rs")).unwrap();
    assert!(
        api.contains("crate::orphans::find"),
        "the check above would test nothing: api.rs no longer uses orphans"
    );
}
