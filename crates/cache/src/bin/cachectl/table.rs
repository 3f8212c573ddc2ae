//! Plain text tables that fit the terminal: the widest column marked flexible is cut first.

use std::io::IsTerminal;

/// A table of left-aligned columns separated by two spaces.
pub(crate) struct Table {
    headers: Vec<&'static str>,
    /// Columns that may be shortened (with `…`) to fit the width; others are kept whole.
    flexible: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// `columns`: each header and whether it may be shortened.
    pub(crate) fn new(columns: &[(&'static str, bool)]) -> Self {
        Table {
            headers: columns.iter().map(|(header, _)| *header).collect(),
            flexible: columns.iter().map(|(_, flexible)| *flexible).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, at most `width` columns wide when a width is given (as far as the
    /// fixed columns allow).
    pub(crate) fn render(&self, width: Option<usize>) -> String {
        let count = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|header| header.chars().count()).collect();
        for row in &self.rows {
            for (column, cell) in row.iter().enumerate().take(count) {
                widths[column] = widths[column].max(cell.chars().count());
            }
        }
        if let Some(width) = width {
            let separators = 2 * count.saturating_sub(1);
            // Shrink the widest flexible column, one character at a time, down to a floor
            // that keeps it recognisable.
            const FLOOR: usize = 8;
            while widths.iter().sum::<usize>() + separators > width {
                let widest = (0..count)
                    .filter(|&column| self.flexible[column] && widths[column] > FLOOR)
                    .max_by_key(|&column| widths[column]);
                match widest {
                    Some(column) => widths[column] -= 1,
                    None => break,
                }
            }
        }
        let mut text = String::new();
        let headers: Vec<String> = self.headers.iter().map(|header| (*header).to_owned()).collect();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let cells: Vec<String> =
                (0..count).map(|column| fit(row.get(column).map_or("", String::as_str), widths[column])).collect();
            text.push_str(cells.join("  ").trim_end());
            text.push('\n');
        }
        text
    }
}

/// `cell` padded or cut (ending in `…`) to exactly `width` characters.
fn fit(cell: &str, width: usize) -> String {
    let length = cell.chars().count();
    if length <= width {
        format!("{cell:width$}")
    } else {
        let mut cut: String = cell.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// The width to fit on stdout: the terminal's, or none when stdout is not a terminal (a
/// pipe gets whole cells, for grep and cut).
pub(crate) fn stdout_width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let (_, columns) = console::Term::stdout().size_checked()?;
    Some(usize::from(columns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flexible_columns_shrink_to_fit_and_fixed_ones_stay() {
        let mut table = Table::new(&[("id", false), ("uri", true)]);
        table.row(vec!["1".into(), "https://example.org/a/very/long/path/to/a/file.csv".into()]);
        let text = table.render(Some(30));
        for line in text.lines() {
            assert!(line.chars().count() <= 30, "{line:?}");
        }
        assert!(text.contains('…'));
        assert!(text.lines().nth(1).is_some_and(|line| line.starts_with("1 ")));
        // Without a width nothing is cut.
        assert!(table.render(None).contains("file.csv"));
    }
}
