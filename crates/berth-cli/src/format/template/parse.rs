//! Lexer and parser for the Go `text/template` subset: text, `{{pipeline}}`
//! actions with `{{-`/`-}}` trimming and `{{/* comments */}}`, pipelines of
//! commands joined by `|`, variables (`$`, `$x := …`), parenthesised
//! sub-pipelines, and `if`/`else if`/`else`, `with`, `range`, `break`,
//! `continue`, `end`.

use super::exec::is_function;
use super::TemplateError;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    /// Literal text.
    Text(String),
    /// `{{pipeline}}`: prints the value unless it declares a variable.
    Action(Pipeline),
    /// `{{if}}` (and `{{else if}}`) branches, then the `{{else}}` body.
    If(Vec<(Pipeline, Vec<Node>)>, Option<Vec<Node>>),
    /// `{{with}}` branches (`{{else with}}` allowed), then the `{{else}}` body.
    With(Vec<(Pipeline, Vec<Node>)>, Option<Vec<Node>>),
    /// `{{range pipeline}}` body, `{{else}}` body.
    Range(Pipeline, Vec<Node>, Option<Vec<Node>>),
    /// `{{break}}` inside a range.
    Break,
    /// `{{continue}}` inside a range.
    Continue,
}

/// `$x := cmd | cmd arg`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pipeline {
    /// Variables declared (`:=`) or assigned (`=`).
    pub(super) decl: Vec<String>,
    /// True for `=`, false for `:=`.
    pub(super) assign: bool,
    /// The commands; each gets the previous one's value as last argument.
    pub(super) cmds: Vec<Command>,
}

/// A function call or a single operand.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Command {
    pub(super) args: Vec<Operand>,
    /// Byte offset in the source, for error messages.
    pub(super) pos: usize,
    /// Source text, for error messages (`<index .A "x">`).
    pub(super) text: String,
}

/// One argument of a command.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Operand {
    /// `.A.B` (`.` is an empty chain).
    Field {
        chain: Vec<String>,
        pos: usize,
        text: String,
    },
    /// `$x.A.B` (`$` is the root data).
    Var {
        name: String,
        chain: Vec<String>,
        pos: usize,
        text: String,
    },
    /// A function name.
    Func(String),
    /// A string literal.
    Str(String),
    /// A number literal, as written.
    Num(String),
    /// `true` / `false`.
    Bool(bool),
    /// `nil`.
    Nil,
    /// `(pipeline).A.B`.
    Sub {
        pipe: Box<Pipeline>,
        chain: Vec<String>,
        pos: usize,
        text: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Num(String),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
    end: usize,
    /// Whitespace (or the action start) came right before this token.
    spaced: bool,
}

enum Item {
    Text(String),
    Action { toks: Vec<Token>, pos: usize },
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn err_at(src: &str, pos: usize, msg: impl std::fmt::Display) -> TemplateError {
    let line = 1 + src[..pos.min(src.len())].matches('\n').count();
    TemplateError(format!("template: :{line}: {msg}"))
}

/// Splits the source into text and lexed actions, applying trim markers.
fn scan(src: &str) -> Result<Vec<Item>, TemplateError> {
    let b = src.as_bytes();
    let mut items = Vec::new();
    let mut i = 0;
    let mut trim_next_text = false;
    loop {
        let Some(off) = src[i..].find("{{") else {
            let mut text = &src[i..];
            if trim_next_text {
                text = text.trim_start_matches([' ', '\t', '\r', '\n']);
            }
            if !text.is_empty() {
                items.push(Item::Text(text.to_string()));
            }
            return Ok(items);
        };
        let start = i + off;
        let mut text = &src[i..start];
        if trim_next_text {
            text = text.trim_start_matches([' ', '\t', '\r', '\n']);
        }
        let mut j = start + 2;
        if b.get(j) == Some(&b'-') && b.get(j + 1).is_some_and(|&c| is_space(c)) {
            text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            j += 1;
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        // Comments: {{/* … */}}, optionally with trim markers.
        let mut k = j;
        while k < b.len() && is_space(b[k]) {
            k += 1;
        }
        if src[k..].starts_with("/*") {
            let Some(close) = src[k + 2..].find("*/") else {
                return Err(err_at(src, start, "unclosed comment"));
            };
            let mut m = k + 2 + close + 2;
            let mut trim = false;
            if src[m..].starts_with(" -}}") {
                trim = true;
                m += 2;
            }
            if !src[m..].starts_with("}}") {
                return Err(err_at(src, start, "comment ends before closing delimiter"));
            }
            trim_next_text = trim;
            i = m + 2;
            continue;
        }
        let (toks, end, trim) = lex_action(src, j)?;
        trim_next_text = trim;
        items.push(Item::Action { toks, pos: j });
        i = end;
    }
}

/// Lexes one action starting at `i` (just after `{{` or `{{-`); returns the
/// tokens, the offset after `}}` and whether `-}}` asked to trim.
fn lex_action(src: &str, mut i: usize) -> Result<(Vec<Token>, usize, bool), TemplateError> {
    let b = src.as_bytes();
    let mut toks = Vec::new();
    let mut spaced = true;
    loop {
        if i >= b.len() {
            return Err(err_at(src, i, "unclosed action"));
        }
        let c = b[i];
        if is_space(c) {
            if src[i + 1..].starts_with("-}}") {
                return Ok((toks, i + 4, true));
            }
            i += 1;
            spaced = true;
            continue;
        }
        if src[i..].starts_with("}}") {
            return Ok((toks, i + 2, false));
        }
        let start = i;
        let tok = match c {
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'|' => {
                i += 1;
                Tok::Pipe
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Declare
            }
            b'=' => {
                i += 1;
                Tok::Assign
            }
            b'"' => {
                let (s, end) = lex_quoted(src, i)?;
                i = end;
                Tok::Str(s)
            }
            b'`' => {
                let Some(close) = src[i + 1..].find('`') else {
                    return Err(err_at(src, i, "unterminated raw quoted string"));
                };
                let s = src[i + 1..i + 1 + close].to_string();
                i += close + 2;
                Tok::Str(s)
            }
            b'\'' => {
                let rest = &src[i + 1..];
                let mut chars = rest.char_indices();
                let ch = match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => '\n',
                        Some((_, 't')) => '\t',
                        Some((_, c)) => c,
                        None => return Err(err_at(src, i, "unterminated character constant")),
                    },
                    Some((_, c)) => c,
                    None => return Err(err_at(src, i, "unterminated character constant")),
                };
                match chars.next() {
                    Some((off, '\'')) => {
                        i += 1 + off + 1;
                        Tok::Num((ch as u32).to_string())
                    }
                    _ => return Err(err_at(src, i, "unterminated character constant")),
                }
            }
            b'.' if b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                let end = lex_number_end(b, i);
                let s = src[i..end].to_string();
                i = end;
                Tok::Num(s)
            }
            b'.' => {
                let (chain, end) = lex_chain(src, i)?;
                i = end;
                Tok::Field(chain)
            }
            b'$' => {
                let mut end = i + 1;
                while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                    end += 1;
                }
                let name = src[i..end].to_string();
                let (chain, end2) = if b.get(end) == Some(&b'.') {
                    lex_chain(src, end)?
                } else {
                    (vec![], end)
                };
                i = end2;
                Tok::Var(name, chain)
            }
            c if c.is_ascii_digit()
                || ((c == b'-' || c == b'+')
                    && b.get(i + 1)
                        .is_some_and(|d| d.is_ascii_digit() || *d == b'.')) =>
            {
                let end = lex_number_end(b, i);
                let s = src[i..end].to_string();
                i = end;
                Tok::Num(s)
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut end = i;
                while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                    end += 1;
                }
                let s = src[i..end].to_string();
                i = end;
                Tok::Ident(s)
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(err_at(src, i, format!("unexpected {ch:?} in command")));
            }
        };
        toks.push(Token {
            tok,
            pos: start,
            end: i,
            spaced,
        });
        spaced = false;
    }
}

fn lex_number_end(b: &[u8], mut i: usize) -> usize {
    if b[i] == b'-' || b[i] == b'+' {
        i += 1;
    }
    while i < b.len() {
        let c = b[i];
        let prev = b[i - 1];
        if c.is_ascii_alphanumeric()
            || c == b'.'
            || c == b'_'
            || ((c == b'-' || c == b'+') && (prev == b'e' || prev == b'E'))
        {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// `.A.B` starting at a dot; a lone `.` is the empty chain.
fn lex_chain(src: &str, mut i: usize) -> Result<(Vec<String>, usize), TemplateError> {
    let b = src.as_bytes();
    let mut chain = Vec::new();
    while i < b.len() && b[i] == b'.' {
        let mut end = i + 1;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_' || b[end] >= 0x80)
        {
            end += 1;
        }
        if end == i + 1 {
            if chain.is_empty() {
                return Ok((chain, end));
            }
            return Err(err_at(src, i, "bad character after '.'"));
        }
        chain.push(src[i + 1..end].to_string());
        i = end;
    }
    Ok((chain, i))
}

fn lex_quoted(src: &str, start: usize) -> Result<(String, usize), TemplateError> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '"' => return Ok((out, start + 1 + off + 1)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '0' => out.push('\0'),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..n)
                            .filter_map(|_| chars.next().map(|(_, h)| h))
                            .collect();
                        let ch = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                        match ch {
                            Some(ch) => out.push(ch),
                            None => {
                                return Err(err_at(src, start, "invalid syntax in quoted string"))
                            }
                        }
                    }
                    other => out.push(other),
                }
            }
            c => out.push(c),
        }
    }
    Err(err_at(src, start, "unterminated quoted string"))
}

/// Parses a whole template.
pub(super) fn parse(src: &str) -> Result<Vec<Node>, TemplateError> {
    let items = scan(src)?;
    let mut p = Parser {
        src,
        items,
        next: 0,
    };
    let (nodes, stop) = p.list()?;
    match stop {
        None => Ok(nodes),
        Some((word, pos, _)) => Err(err_at(src, pos, format!("unexpected {{{{{word}}}}}"))),
    }
}

struct Parser<'s> {
    src: &'s str,
    items: Vec<Item>,
    next: usize,
}

/// What stopped a list: `end` or `else` (with the tokens after `else`).
type Stop = (String, usize, Vec<Token>);

impl Parser<'_> {
    /// Nodes up to `{{end}}`, `{{else …}}` or the end of input.
    fn list(&mut self) -> Result<(Vec<Node>, Option<Stop>), TemplateError> {
        let mut nodes = Vec::new();
        while self.next < self.items.len() {
            let idx = self.next;
            self.next += 1;
            let (toks, pos) = match &self.items[idx] {
                Item::Text(t) => {
                    nodes.push(Node::Text(t.clone()));
                    continue;
                }
                Item::Action { toks, pos } => (toks.clone(), *pos),
            };
            let keyword = match toks.first() {
                Some(Token {
                    tok: Tok::Ident(w), ..
                }) => w.as_str(),
                Some(_) => "",
                None => return Err(err_at(self.src, pos, "missing value for command")),
            };
            match keyword {
                "end" | "else" => {
                    if keyword == "end" && toks.len() > 1 {
                        return Err(err_at(self.src, pos, "unexpected token in end"));
                    }
                    return Ok((nodes, Some((keyword.to_string(), pos, toks[1..].to_vec()))));
                }
                "if" | "with" => nodes.push(self.branches(keyword, &toks[1..], pos)?),
                "range" => {
                    let pipe = self.pipeline(&toks[1..], pos, true)?;
                    let (body, stop) = self.list()?;
                    let else_body = match stop {
                        Some((w, _, rest)) if w == "else" && rest.is_empty() => {
                            Some(self.until_end(pos)?)
                        }
                        Some((w, _, _)) if w == "end" => None,
                        _ => return Err(err_at(self.src, pos, "unexpected EOF")),
                    };
                    nodes.push(Node::Range(pipe, body, else_body));
                }
                "break" => nodes.push(Node::Break),
                "continue" => nodes.push(Node::Continue),
                "define" | "template" | "block" => {
                    return Err(err_at(
                        self.src,
                        pos,
                        format!("{{{{{keyword}}}}} is not supported"),
                    ))
                }
                _ => nodes.push(Node::Action(self.pipeline(&toks, pos, false)?)),
            }
        }
        Ok((nodes, None))
    }

    fn until_end(&mut self, pos: usize) -> Result<Vec<Node>, TemplateError> {
        match self.list()? {
            (body, Some((w, _, _))) if w == "end" => Ok(body),
            (_, Some((w, p, _))) => Err(err_at(self.src, p, format!("unexpected {{{{{w}}}}}"))),
            (_, None) => Err(err_at(self.src, pos, "unexpected EOF")),
        }
    }

    fn branches(
        &mut self,
        keyword: &str,
        toks: &[Token],
        pos: usize,
    ) -> Result<Node, TemplateError> {
        let mut branches = Vec::new();
        let mut cond = toks.to_vec();
        loop {
            let pipe = self.pipeline(&cond, pos, false)?;
            let (body, stop) = self.list()?;
            branches.push((pipe, body));
            match stop {
                Some((w, _, _)) if w == "end" => {
                    return Ok(self.branch_node(keyword, branches, None))
                }
                Some((_, p, rest)) => {
                    // `else if …` / `else with …` chain; a bare `else` ends it.
                    match rest.first() {
                        Some(Token {
                            tok: Tok::Ident(w), ..
                        }) if w == keyword => {
                            cond = rest[1..].to_vec();
                        }
                        None => {
                            let else_body = self.until_end(p)?;
                            return Ok(self.branch_node(keyword, branches, Some(else_body)));
                        }
                        Some(_) => return Err(err_at(self.src, p, "unexpected token after else")),
                    }
                }
                None => return Err(err_at(self.src, pos, "unexpected EOF")),
            }
        }
    }

    fn branch_node(
        &self,
        keyword: &str,
        branches: Vec<(Pipeline, Vec<Node>)>,
        else_body: Option<Vec<Node>>,
    ) -> Node {
        if keyword == "if" {
            Node::If(branches, else_body)
        } else {
            Node::With(branches, else_body)
        }
    }

    fn pipeline(
        &self,
        toks: &[Token],
        pos: usize,
        in_range: bool,
    ) -> Result<Pipeline, TemplateError> {
        let mut decl = Vec::new();
        let mut assign = false;
        let mut rest = toks;
        let var = |t: &Token| match &t.tok {
            Tok::Var(n, c) if c.is_empty() => Some(n.clone()),
            _ => None,
        };
        if let (Some(a), Some(op)) = (rest.first(), rest.get(1)) {
            if let Some(name) = var(a) {
                match op.tok {
                    Tok::Declare | Tok::Assign => {
                        assign = op.tok == Tok::Assign;
                        decl.push(name);
                        rest = &rest[2..];
                    }
                    Tok::Comma if in_range => {
                        let second = rest.get(2).and_then(var);
                        let op2 = rest.get(3).map(|t| &t.tok);
                        match (second, op2) {
                            (Some(b), Some(Tok::Declare | Tok::Assign)) => {
                                assign = op2 == Some(&Tok::Assign);
                                decl.push(name);
                                decl.push(b);
                                rest = &rest[4..];
                            }
                            _ => {
                                return Err(err_at(
                                    self.src,
                                    a.pos,
                                    "range can only initialize variables",
                                ))
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        if rest.is_empty() {
            return Err(err_at(self.src, pos, "missing value for command"));
        }
        let mut cmds = Vec::new();
        let mut depth = 0usize;
        let mut start = 0;
        for (i, t) in rest.iter().enumerate() {
            match t.tok {
                Tok::LParen => depth += 1,
                Tok::RParen => depth = depth.saturating_sub(1),
                Tok::Pipe if depth == 0 => {
                    cmds.push(self.command(&rest[start..i], t.pos)?);
                    start = i + 1;
                }
                _ => {}
            }
        }
        cmds.push(self.command(&rest[start..], pos)?);
        Ok(Pipeline { decl, assign, cmds })
    }

    fn command(&self, toks: &[Token], pos: usize) -> Result<Command, TemplateError> {
        if toks.is_empty() {
            return Err(err_at(self.src, pos, "missing value for command"));
        }
        let mut args = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let t = &toks[i];
            let text = self.src[t.pos..t.end].to_string();
            let op = match &t.tok {
                Tok::Field(chain) => Operand::Field {
                    chain: chain.clone(),
                    pos: t.pos,
                    text,
                },
                Tok::Var(name, chain) => Operand::Var {
                    name: name.clone(),
                    chain: chain.clone(),
                    pos: t.pos,
                    text,
                },
                Tok::Str(s) => Operand::Str(s.clone()),
                Tok::Num(n) => Operand::Num(n.clone()),
                Tok::Ident(w) => match w.as_str() {
                    "true" => Operand::Bool(true),
                    "false" => Operand::Bool(false),
                    "nil" => Operand::Nil,
                    name if is_function(name) => Operand::Func(name.to_string()),
                    name => {
                        return Err(err_at(
                            self.src,
                            t.pos,
                            format!("function {name:?} not defined"),
                        ))
                    }
                },
                Tok::LParen => {
                    let mut depth = 0usize;
                    let mut close = None;
                    for (j, u) in toks.iter().enumerate().skip(i) {
                        match u.tok {
                            Tok::LParen => depth += 1,
                            Tok::RParen => {
                                depth -= 1;
                                if depth == 0 {
                                    close = Some(j);
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    let Some(close) = close else {
                        return Err(err_at(self.src, t.pos, "unclosed left paren"));
                    };
                    let pipe = self.pipeline(&toks[i + 1..close], t.pos, false)?;
                    let mut chain = Vec::new();
                    let mut end = toks[close].end;
                    if let Some(Token {
                        tok: Tok::Field(c),
                        spaced: false,
                        end: e,
                        ..
                    }) = toks.get(close + 1)
                    {
                        chain = c.clone();
                        end = *e;
                        i = close + 1;
                    } else {
                        i = close;
                    }
                    let text = self.src[t.pos..end].to_string();
                    Operand::Sub {
                        pipe: Box::new(pipe),
                        chain,
                        pos: t.pos,
                        text,
                    }
                }
                Tok::RParen => return Err(err_at(self.src, t.pos, "unexpected right paren")),
                Tok::Pipe | Tok::Declare | Tok::Assign | Tok::Comma => {
                    return Err(err_at(
                        self.src,
                        t.pos,
                        format!("unexpected {:?} in command", text),
                    ))
                }
            };
            args.push(op);
            i += 1;
        }
        let first = &toks[0];
        let last = &toks[toks.len() - 1];
        Ok(Command {
            args,
            pos: first.pos,
            text: self.src[first.pos..last.end].to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_comments() {
        let nodes = parse("a  {{- /* c */ -}}  b {{- .X -}} \n c").unwrap();
        assert_eq!(nodes[0], Node::Text("a".into()));
        assert_eq!(nodes[1], Node::Text("b".into()));
        assert!(matches!(nodes[2], Node::Action(_)));
        assert_eq!(nodes[3], Node::Text("c".into()));
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse("{{.A").unwrap_err().to_string(),
            "template: :1: unclosed action"
        );
        assert_eq!(
            parse("x\n{{end}}").unwrap_err().to_string(),
            "template: :2: unexpected {{end}}"
        );
        assert_eq!(
            parse("{{if .A}}x").unwrap_err().to_string(),
            "template: :1: unexpected EOF"
        );
        assert_eq!(
            parse("{{foo .A}}").unwrap_err().to_string(),
            "template: :1: function \"foo\" not defined"
        );
        assert!(parse("{{}}").is_err());
    }

    #[test]
    fn pipelines_and_parens() {
        let nodes = parse(r#"{{$x := index .A "k" | printf "%s"}}{{(index .L 0).Name}}"#).unwrap();
        let Node::Action(p) = &nodes[0] else { panic!() };
        assert_eq!(p.decl, vec!["$x"]);
        assert_eq!(p.cmds.len(), 2);
        let Node::Action(p) = &nodes[1] else { panic!() };
        let Operand::Sub { chain, .. } = &p.cmds[0].args[0] else {
            panic!()
        };
        assert_eq!(chain, &vec!["Name".to_string()]);
    }
}
