//! Where two configurations differ, by YAML path (`levels.level_2_growth.min`): the
//! comments, order and spelling of a file do not matter to the functions, only what
//! it parses to.

use serde_norway::Value;

/// Each path whose value differs, with both values; at most [`SHOWN`] of them.
pub fn yaml_paths(deployed: &str, local: &str) -> Vec<String> {
    let parse = |text: &str| serde_norway::from_str::<Value>(text).unwrap_or(Value::Null);
    let mut out = Vec::new();
    walk("", &parse(deployed), &parse(local), &mut out);
    if out.len() > SHOWN {
        let more = out.len() - SHOWN;
        out.truncate(SHOWN);
        out.push(format!("and {more} more"));
    }
    out
}

const SHOWN: usize = 8;

fn walk(path: &str, deployed: &Value, local: &Value, out: &mut Vec<String>) {
    let at = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    match (deployed, local) {
        (Value::Mapping(a), Value::Mapping(b)) => {
            for (key, value) in a {
                let name = at(&short(key));
                match b.get(key) {
                    Some(other) => walk(&name, value, other, out),
                    None => out.push(format!("{name} only in the stack's")),
                }
            }
            for key in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{} only in the file", at(&short(key))));
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!(
            "{}: {} in the stack's, {} in the file",
            if path.is_empty() { "the whole document" } else { path },
            short(a),
            short(b)
        )),
    }
}

fn short(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other).unwrap_or_default().trim().replace('\n', " "),
    };
    if text.chars().count() > 40 { format!("{}...", text.chars().take(40).collect::<String>()) } else { text }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn differences_are_named_by_path_and_comments_do_not_count() {
        let deployed = "currency: EUR\nlevels:\n  l1:\n    min: 500\n  l2:\n    min: 2000\n";
        let local = "# a comment\ncurrency: EUR\nlevels:\n  l1:\n    min: 500\n  l2:\n    min: 2500\nrunway:\n  min_months: 6\n";
        assert_eq!(
            yaml_paths(deployed, local),
            ["levels.l2.min: 2000 in the stack's, 2500 in the file", "runway only in the file"]
        );
        assert!(yaml_paths(deployed, deployed).is_empty());
    }
}
