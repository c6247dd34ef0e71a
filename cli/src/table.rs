//! Operator tables: columns that wrap long ARNs and ids to the terminal's width
//! (comfy-table), instead of pushing the next column off the screen.

use comfy_table::presets::UTF8_HORIZONTAL_ONLY;
use comfy_table::{ColumnConstraint, ContentArrangement, Table};

/// Columns whose values are never wrapped: ids and dates are copied and pasted whole;
/// ARNs, actors and reasons take the width that is left.
const WHOLE: [&str; 9] =
    ["id", "override", "kind", "level", "until", "state", "since", "component", "declared"];

/// The width to wrap to when the output is not a terminal (a pipe, a file): `COLUMNS`
/// if the shell exports it, else a width most terminals show whole.
const DEFAULT_WIDTH: u16 = 120;

pub fn render(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    render_at(None, header, rows)
}

/// As [`render`], at `width` columns (default: the terminal's, else `COLUMNS`, else 120).
fn render_at(width: Option<u16>, header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_HORIZONTAL_ONLY).set_content_arrangement(ContentArrangement::Dynamic);
    let width = width.or_else(|| table.width()).unwrap_or_else(|| {
        std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse().ok()).unwrap_or(DEFAULT_WIDTH)
    });
    table.set_width(width);
    table.set_header(header.iter().copied());
    for row in rows {
        table.add_row(row);
    }
    for (index, name) in header.iter().enumerate() {
        if WHOLE.contains(name)
            && let Some(column) = table.column_mut(index)
        {
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    format!("{table}\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn long_values_wrap_inside_their_column_and_no_line_is_wider_than_the_width() {
        let arn = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_AdministratorAccess_0123456789abcdef/alice@example.com";
        let out = render_at(
            Some(DEFAULT_WIDTH),
            &["id", "kind", "actor", "note"],
            [vec![
                "2026-11-29T06:00:00Z-0560bb33b1da".into(),
                "override-approve".into(),
                arn.into(),
                "x".repeat(90),
            ]],
        );
        assert!(out.lines().all(|l| l.chars().count() <= usize::from(DEFAULT_WIDTH)), "{out}");
        assert!(out.contains("arn:aws:sts::") && out.contains("example.com"), "nothing is cut: {out}");
        assert!(out.contains("2026-11-29T06:00:00Z-0560bb33b1da"), "an id stays whole: {out}");
        assert!(out.lines().count() > 5, "the long values took more than one line: {out}");
    }
}
