//! Docker's list output: a Go-template row format (`--format`), rendered
//! per row, and for `table …` formats a header row and Go `tabwriter`
//! alignment (min width 10, padding 3, spaces). Also `Ellipsis` and
//! `TruncateID`, which several columns use.

use super::template::{Template, TemplateError, Value};

/// The format docker prints with `--quiet`.
pub(crate) const QUIET_FORMAT: &str = "{{.ID}}";

/// Renders `rows` with a docker `--format` value (`table …`, `json`, or a
/// template). `header` maps field names to column titles.
pub(crate) fn render(
    format: &str,
    header: &Value,
    rows: &[Value],
) -> Result<String, TemplateError> {
    let is_table = format.starts_with("table");
    let mut body = if is_table {
        &format["table".len()..]
    } else if format == "json" {
        "{{json .}}"
    } else {
        format
    }
    .trim_matches(' ')
    .to_string();
    body = body.replace("\\t", "\t").replace("\\n", "\n");
    let tmpl = Template::parse(&body)
        .map_err(|e| TemplateError(format!("template parsing error: {e}")))?;
    let mut out = String::new();
    for row in rows {
        out.push_str(
            &tmpl
                .execute(row)
                .map_err(|e| TemplateError(format!("template parsing error: {e}")))?,
        );
        out.push('\n');
    }
    if !is_table {
        return Ok(out);
    }
    let mut text = tmpl.execute_header(header)?;
    text.push('\n');
    text.push_str(&out);
    Ok(tabwrite(&text, 10, 3))
}

/// Go's `text/tabwriter` with tab width 1, padding char ' ' and no flags:
/// cells end at `\t`; each column block (consecutive lines that have that
/// column) is as wide as its widest cell plus `padding`, at least
/// `minwidth`; the last cell of a line is not padded.
pub(crate) fn tabwrite(text: &str, minwidth: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut w = TabWriter {
        lines: &lines,
        widths: Vec::new(),
        out: String::new(),
        minwidth,
        padding,
    };
    w.format(0, lines.len());
    w.out
}

struct TabWriter<'a> {
    lines: &'a [Vec<&'a str>],
    widths: Vec<usize>,
    out: String,
    minwidth: usize,
    padding: usize,
}

impl TabWriter<'_> {
    fn format(&mut self, mut line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(line0, this);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                width = width.max(line[column].chars().count() + self.padding);
                this += 1;
            }
            self.widths.push(width);
            self.format(line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(line0, line1);
    }

    fn write_lines(&mut self, from: usize, to: usize) {
        for i in from..to {
            for (j, cell) in self.lines[i].iter().enumerate() {
                self.out.push_str(cell);
                if let Some(&width) = self.widths.get(j) {
                    let pad = width.saturating_sub(cell.chars().count());
                    self.out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            if i + 1 < self.lines.len() {
                self.out.push('\n');
            }
        }
    }
}

/// docker's `stringid.TruncateID`: drops an `algo:` prefix, keeps 12 chars.
pub(crate) fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map(|(_, hex)| hex).unwrap_or(id);
    id.chars().take(12).collect()
}

/// docker's `formatter.Ellipsis`: at most `max` display columns, the last
/// one an `…` when cut. East Asian wide characters count twice.
pub(crate) fn ellipsis(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let chars: Vec<char> = s.chars().collect();
    if max == 1 {
        return chars.first().map(|c| c.to_string()).unwrap_or_default();
    }
    if s.len() == chars.len() {
        if s.len() <= max {
            return s.to_string();
        }
        return chars[..max - 1].iter().collect::<String>() + "…";
    }
    let mut total = 0;
    let mut ends = Vec::with_capacity(chars.len());
    for &c in &chars {
        total += char_width(c);
        ends.push(total);
    }
    if total <= max {
        return s.to_string();
    }
    for i in 0..ends.len().saturating_sub(1) {
        if ends[i] < max && ends[i + 1] >= max {
            return chars[..=i].iter().collect::<String>() + "…";
        }
    }
    s.to_string()
}

fn char_width(c: char) -> usize {
    let u = c as u32;
    let wide = matches!(u,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F | 0x1F900..=0x1F9FF | 0x20000..=0x3FFFD);
    if wide {
        2
    } else {
        1
    }
}

/// Go's `strconv.Quote`: double quotes, with `"`, `\` and non-printable
/// characters escaped.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabwriter_like_go() {
        let text = "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\nbusybox\tlatest\t607ee26ba8e1\t2 weeks ago\t1.98MB\n";
        let want = "\
REPOSITORY   TAG       IMAGE ID       CREATED       SIZE
busybox      latest    607ee26ba8e1   2 weeks ago   1.98MB
";
        assert_eq!(tabwrite(text, 10, 3), want);
    }

    #[test]
    fn tabwriter_column_blocks_end_at_lines_without_the_column() {
        // docker version's layout: min width 20, padding 1.
        let text = "Client:\n Version:\t0.1.0\n API version:\t1.45\n\nServer:\n Engine:\n  Version:\t0.1.0\n";
        let want = "Client:\n Version:           0.1.0\n API version:       1.45\n\nServer:\n Engine:\n  Version:          0.1.0\n";
        assert_eq!(tabwrite(text, 20, 1), want);
    }

    #[test]
    fn render_table_and_plain() {
        let header = Value::object([("ID", Value::str("IMAGE ID")), ("Tag", Value::str("TAG"))]);
        let rows = vec![
            Value::object([("ID", Value::str("aaa")), ("Tag", Value::str("latest"))]),
            Value::object([
                ("ID", Value::str("bbb")),
                ("Tag", Value::str("a-much-longer-tag")),
            ]),
        ];
        assert_eq!(
            render("table {{.Tag}}\\t{{.ID}}", &header, &rows).unwrap(),
            "TAG                 IMAGE ID\nlatest              aaa\na-much-longer-tag   bbb\n"
        );
        assert_eq!(render("{{.ID}}", &header, &rows).unwrap(), "aaa\nbbb\n");
        assert_eq!(
            render("json", &header, &rows[..1]).unwrap(),
            "{\"ID\":\"aaa\",\"Tag\":\"latest\"}\n"
        );
        assert_eq!(render("table {{.ID}}", &header, &[]).unwrap(), "IMAGE ID\n");
        assert!(render("{{.Nope}}", &header, &rows)
            .unwrap_err()
            .0
            .starts_with("template parsing error: template: :1:2"));
    }

    #[test]
    fn ids_and_ellipsis() {
        assert_eq!(
            truncate_id("sha256:607ee26ba8e1c5e8b0f5a1d1e0c1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3"),
            "607ee26ba8e1"
        );
        assert_eq!(truncate_id("<missing>"), "<missing>");
        assert_eq!(
            ellipsis("sh -c 'while true; do echo hi; done'", 20),
            "sh -c 'while true; …"
        );
        assert_eq!(ellipsis("short", 20), "short");
        assert_eq!(ellipsis("abcdefghijklmnopqrst", 20), "abcdefghijklmnopqrst");
        assert_eq!(ellipsis("日本語日本語日本語日本語", 10), "日本語日…");
        assert_eq!(go_quote("echo \"hi\"\n"), "\"echo \\\"hi\\\"\\n\"");
    }
}
