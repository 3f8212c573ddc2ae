//! Plain text tables that fit the terminal: the widest column that may shrink is cut first.

use std::io::IsTerminal;

/// How a column may be shortened to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    /// Always shown whole.
    Whole,
    /// Cut at the end, down to this many characters (a key's start identifies it).
    End(usize),
    /// Cut in the middle, down to this many characters (a URI's start and its file name
    /// both matter).
    Middle(usize),
}

/// A table of left-aligned columns separated by two spaces.
pub(crate) struct Table {
    headers: Vec<&'static str>,
    fits: Vec<Fit>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// `columns`: each header and how it may be shortened.
    pub(crate) fn new(columns: &[(&'static str, Fit)]) -> Self {
        Table {
            headers: columns.iter().map(|(header, _)| *header).collect(),
            fits: columns.iter().map(|(_, fit)| *fit).collect(),
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
            // Shrink the widest column that may shrink, one character at a time, down to its
            // floor, which keeps it recognisable.
            let floor = |column: usize| match self.fits[column] {
                Fit::Whole => usize::MAX,
                Fit::End(floor) | Fit::Middle(floor) => floor,
            };
            while widths.iter().sum::<usize>() + separators > width {
                let widest =
                    (0..count).filter(|&column| widths[column] > floor(column)).max_by_key(|&column| widths[column]);
                match widest {
                    Some(column) => widths[column] -= 1,
                    None => break,
                }
            }
        }
        let mut text = String::new();
        let headers: Vec<String> = self.headers.iter().map(|header| (*header).to_owned()).collect();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let cells: Vec<String> = (0..count)
                .map(|column| fit(row.get(column).map_or("", String::as_str), widths[column], self.fits[column]))
                .collect();
            text.push_str(cells.join("  ").trim_end());
            text.push('\n');
        }
        text
    }
}

/// `cell` padded, or cut with a `…` where `how` says, to exactly `width` characters.
fn fit(cell: &str, width: usize, how: Fit) -> String {
    let length = cell.chars().count();
    if length <= width {
        return format!("{cell:width$}");
    }
    let keep = width.saturating_sub(1);
    match how {
        Fit::Middle(_) => {
            let head = keep.div_ceil(2);
            let tail = keep - head;
            let start: String = cell.chars().take(head).collect();
            let end: String = cell.chars().skip(length - tail).collect();
            format!("{start}…{end}")
        }
        Fit::End(_) | Fit::Whole => {
            let mut cut: String = cell.chars().take(keep).collect();
            cut.push('…');
            cut
        }
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
        let mut table = Table::new(&[("id", Fit::Whole), ("key", Fit::End(6)), ("uri", Fit::Middle(8))]);
        table.row(vec![
            "1".into(),
            "0123456789abcdef".into(),
            "https://example.org/a/very/long/path/to/a/file.csv".into(),
        ]);
        let text = table.render(Some(30));
        for line in text.lines() {
            assert!(line.chars().count() <= 30, "{line:?}");
        }
        let row: Vec<&str> = text.lines().nth(1).unwrap_or_default().split_whitespace().collect();
        assert_eq!(row[0], "1", "fixed columns stay whole");
        assert!(row[1].starts_with("0123") && row[1].ends_with('…'), "keys keep their start: {row:?}");
        assert!(
            row[2].starts_with("https") && row[2].ends_with("csv") && row[2].contains('…'),
            "URIs keep both ends: {row:?}"
        );
        // Without a width nothing is cut.
        assert!(table.render(None).contains("file.csv"));
    }
}
