//! Every fixture of events/provision/ is what the state machine passes the provisioner,
//! read with the handler's own type (`Action`, which refuses unknown fields).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use provision::handler::Action;

#[test]
fn every_state_machine_sample_parses_as_the_handlers_action() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/provision");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let action: Action = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // The file is named after the action it holds.
        let debug = format!("{action:?}").to_lowercase().replace('_', "");
        assert!(debug.starts_with(&name.replace('_', "")), "{name}: {action:?}");
        names.push(name);
    }
    assert!(names.len() >= 9, "{names:?}");
}
