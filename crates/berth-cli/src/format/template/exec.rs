//! Executes a parsed template against a [`Value`], with docker's function
//! set (`json`, `join`, `split`, `lower`, `upper`, `title`, `pad`,
//! `truncate`) plus Go's builtins (`index`, `len`, `eq`…, `and`, `or`,
//! `not`, `print`, `printf`, `println`).
//!
//! Header mode renders a table header: the data is a map of field → column
//! title and docker's header functions return their argument unchanged.

use std::cmp::Ordering;

use super::gotypes;
use super::parse::{Command, Node, Operand, Pipeline};
use super::value::{GoNil, Value};
use super::TemplateError;

const FUNCTIONS: &[&str] = &[
    "json", "split", "join", "title", "lower", "upper", "pad", "truncate", "index", "len", "eq",
    "ne", "lt", "le", "gt", "ge", "and", "or", "not", "print", "printf", "println",
];

/// True for the names callable in a template.
pub(super) fn is_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(super) struct Exec<'a> {
    src: &'a str,
    /// The template's name, as Go's errors print it (`version`).
    name: &'a str,
    header: bool,
    /// Objects stand for docker's inspect structs (see [`gotypes`]).
    pub(super) typed: bool,
    vars: Vec<(String, Value)>,
    pub(super) out: String,
}

impl<'a> Exec<'a> {
    pub(super) fn new(src: &'a str, name: &'a str, root: &Value, header: bool) -> Exec<'a> {
        Exec {
            src,
            name,
            header,
            typed: false,
            vars: vec![("$".into(), root.clone())],
            out: String::new(),
        }
    }

    fn error(&self, pos: usize, context: &str, msg: impl std::fmt::Display) -> TemplateError {
        let before = &self.src[..pos.min(self.src.len())];
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(nl) => pos - nl - 1,
            None => pos,
        };
        let name = self.name;
        TemplateError(format!(
            "template: {name}:{line}:{col}: executing \"{name}\" at <{context}>: {msg}"
        ))
    }

    pub(super) fn run(&mut self, dot: &Value, nodes: &[Node]) -> Result<(), TemplateError> {
        self.walk(dot, nodes).map(|_| ())
    }

    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> Result<Flow, TemplateError> {
        for node in nodes {
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(dot, p)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&v.to_string());
                    }
                }
                Node::If(branches, else_body) | Node::With(branches, else_body) => {
                    let is_with = matches!(node, Node::With(..));
                    let mark = self.vars.len();
                    let mut taken = false;
                    for (cond, body) in branches {
                        let v = self.pipeline(dot, cond)?;
                        if v.truthy() {
                            taken = true;
                            let flow = if is_with {
                                self.walk(&v, body)?
                            } else {
                                self.walk(dot, body)?
                            };
                            self.vars.truncate(mark);
                            if !matches!(flow, Flow::Normal) {
                                return Ok(flow);
                            }
                            break;
                        }
                    }
                    if !taken {
                        if let Some(body) = else_body {
                            let flow = self.walk(dot, body)?;
                            self.vars.truncate(mark);
                            if !matches!(flow, Flow::Normal) {
                                return Ok(flow);
                            }
                        }
                    }
                    self.vars.truncate(mark);
                }
                Node::Range(pipe, body, else_body) => {
                    let mark = self.vars.len();
                    let mut head = pipe.clone();
                    let decl = std::mem::take(&mut head.decl);
                    let v = self.pipeline(dot, &head)?;
                    let items: Vec<(Value, Value)> = match v {
                        Value::Array(a) => a
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Value::int(i as i64), v))
                            .collect(),
                        Value::Object(mut o) => {
                            o.sort_by(|a, b| a.0.cmp(&b.0));
                            o.into_iter().map(|(k, v)| (Value::String(k), v)).collect()
                        }
                        Value::Context(c) => {
                            let mut o = c.fields;
                            o.sort_by(|a, b| a.0.cmp(&b.0));
                            o.into_iter().map(|(k, v)| (Value::String(k), v)).collect()
                        }
                        Value::Null | Value::Nil(_) => Vec::new(),
                        Value::Number(n) if n.as_i64().is_some() => (0..n.as_i64().unwrap_or(0))
                            .map(|i| (Value::int(i), Value::int(i)))
                            .collect(),
                        other => {
                            let ctx = head.cmds.first().map(|c| c.text.as_str()).unwrap_or("");
                            let pos = head.cmds.first().map(|c| c.pos).unwrap_or(0);
                            return Err(self.error(
                                pos,
                                ctx,
                                format!("range can't iterate over {other}"),
                            ));
                        }
                    };
                    if items.is_empty() {
                        if let Some(body) = else_body {
                            self.walk(dot, body)?;
                        }
                    }
                    for (key, elem) in items {
                        self.vars.truncate(mark);
                        match decl.len() {
                            1 => self.vars.push((decl[0].clone(), elem.clone())),
                            2 => {
                                self.vars.push((decl[0].clone(), key));
                                self.vars.push((decl[1].clone(), elem.clone()));
                            }
                            _ => {}
                        }
                        match self.walk(&elem, body)? {
                            Flow::Break => break,
                            Flow::Continue | Flow::Normal => {}
                        }
                    }
                    self.vars.truncate(mark);
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn pipeline(&mut self, dot: &Value, p: &Pipeline) -> Result<Value, TemplateError> {
        let mut val: Option<Value> = None;
        for cmd in &p.cmds {
            val = Some(self.command(dot, cmd, val)?);
        }
        let v = val.unwrap_or_default();
        if let Some(name) = p.decl.first() {
            if p.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => {
                        let pos = p.cmds.first().map(|c| c.pos).unwrap_or(0);
                        return Err(self.error(pos, name, format!("undefined variable: {name}")));
                    }
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn command(
        &mut self,
        dot: &Value,
        cmd: &Command,
        piped: Option<Value>,
    ) -> Result<Value, TemplateError> {
        let first = &cmd.args[0];
        if let Operand::Func(name) = first {
            let mut args = Vec::with_capacity(cmd.args.len());
            for a in &cmd.args[1..] {
                args.push(self.operand(dot, a)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            return self
                .call(name, args)
                .map_err(|e| self.error(cmd.pos, &cmd.text, format!("error calling {name}: {e}")));
        }
        let extra = cmd.args.len() > 1 || piped.is_some();
        if !extra {
            return self.operand(dot, first);
        }
        // `.Label "key"`: a method of a formatter context taking a key.
        if let Operand::Field { chain, pos, text } = first {
            if let Some((last, receiver_chain)) = chain.split_last() {
                let receiver = self.chain(dot.clone(), receiver_chain, *pos, text)?;
                let mut args = Vec::new();
                for a in &cmd.args[1..] {
                    args.push(self.operand(dot, a)?);
                }
                args.extend(piped);
                if self.header && last == "Label" {
                    // docker's `SubHeaderContext.Label`: the last dotted part,
                    // `-` and `_` as spaces.
                    let name = args.first().map(Value::to_string).unwrap_or_default();
                    let tail = name
                        .rsplit('.')
                        .next()
                        .unwrap_or("")
                        .replace(['-', '_'], " ");
                    return Ok(Value::String(tail));
                }
                if let Some(map) = receiver.method(last) {
                    if args.len() != 1 {
                        let msg =
                            format!("wrong number of args for {last}: want 1 got {}", args.len());
                        return Err(self.error(cmd.pos, &cmd.text, msg));
                    }
                    let key = args[0].to_string();
                    return Ok(map.get(&key).cloned().unwrap_or_else(|| Value::str("")));
                }
            }
        }
        Err(self.error(
            cmd.pos,
            &cmd.text,
            format!(
                "can't give argument to non-function {}",
                operand_text(first)
            ),
        ))
    }

    fn operand(&mut self, dot: &Value, op: &Operand) -> Result<Value, TemplateError> {
        match op {
            Operand::Field { chain, pos, text } => self.chain(dot.clone(), chain, *pos, text),
            Operand::Var {
                name,
                chain,
                pos,
                text,
            } => {
                let Some(v) = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                else {
                    return Err(self.error(*pos, text, format!("undefined variable: {name}")));
                };
                self.chain(v, chain, *pos, text)
            }
            Operand::Sub {
                pipe,
                chain,
                pos,
                text,
            } => {
                let v = self.pipeline(dot, pipe)?;
                self.chain(v, chain, *pos, text)
            }
            Operand::Str(s) => Ok(Value::String(s.clone())),
            Operand::Num(n) => Ok(parse_number(n)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(n.clone()))),
            Operand::Bool(b) => Ok(Value::Bool(*b)),
            Operand::Nil => Ok(Value::Null),
            Operand::Func(name) => self
                .call(name, Vec::new())
                .map_err(|e| TemplateError(e.to_string())),
        }
    }

    fn chain(
        &self,
        mut v: Value,
        chain: &[String],
        pos: usize,
        text: &str,
    ) -> Result<Value, TemplateError> {
        // Go's parser places a chain (`.State.Status`, `$m.Source`) at its
        // second part, and its errors name that place.
        let pos = pos + text.get(1..).and_then(|t| t.find('.')).map_or(0, |i| i + 1);
        let mut parent: Option<&str> = None;
        for name in chain {
            let in_map = parent.is_some_and(gotypes::is_map);
            parent = Some(name);
            v = match v {
                Value::Object(_) | Value::Context(_) => match v.get(name) {
                    Some(Value::Null) if self.typed => gotypes::typed_null(name),
                    Some(found) => found.clone(),
                    None if self.header => return Ok(Value::str("")),
                    // A missing key of a typed map: Go's `<no value>`.
                    None if self.typed && in_map => Value::str("<no value>"),
                    None if self.typed && matches!(v, Value::Object(_)) => {
                        match gotypes::omitted(name) {
                            Some(zero) => zero,
                            None => {
                                return Err(self.error(
                                    pos,
                                    text,
                                    format!("map has no entry for key {name:?}"),
                                ))
                            }
                        }
                    }
                    None if matches!(&v, Value::Context(c) if c.go_map) => Value::str("<no value>"),
                    None if v.method(name).is_some() => {
                        let msg = format!("wrong number of args for {name}: want 1 got 0");
                        return Err(self.error(pos, text, msg));
                    }
                    None if matches!(v, Value::Context(_)) => {
                        let msg = format!("can't evaluate field {name} in type {}", v.type_name());
                        return Err(self.error(pos, text, msg));
                    }
                    None => {
                        return Err(self.error(
                            pos,
                            text,
                            format!("map has no entry for key {name:?}"),
                        ))
                    }
                },
                _ if self.header => return Ok(Value::str("")),
                // A key of a nil map[string]string.
                Value::Nil(GoNil::Map) => Value::str("<no value>"),
                Value::Null => {
                    return Err(self.error(
                        pos,
                        text,
                        format!("nil pointer evaluating interface {{}}.{name}"),
                    ))
                }
                other => {
                    let ty = other.type_name();
                    return Err(self.error(
                        pos,
                        text,
                        format!("can't evaluate field {name} in type {ty}"),
                    ));
                }
            };
        }
        Ok(v)
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        let want = |n: usize| -> Result<(), String> {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "wrong number of args for {name}: want {n} got {}",
                    args.len()
                ))
            }
        };
        if self.header
            && matches!(
                name,
                "json" | "split" | "join" | "title" | "lower" | "upper" | "truncate"
            )
        {
            return args
                .into_iter()
                .next()
                .ok_or_else(|| format!("wrong number of args for {name}: want 1 got 0"));
        }
        match name {
            "json" => {
                want(1)?;
                Ok(Value::String(args[0].to_json()))
            }
            "split" => {
                want(2)?;
                let (s, sep) = (args[0].to_string(), args[1].to_string());
                let parts: Vec<Value> = if sep.is_empty() {
                    s.chars().map(|c| Value::String(c.to_string())).collect()
                } else {
                    s.split(sep.as_str()).map(Value::str).collect()
                };
                Ok(Value::Array(parts))
            }
            "join" => {
                want(2)?;
                match &args[0] {
                    Value::Array(items) => {
                        let parts: Vec<String> = items.iter().map(Value::to_string).collect();
                        Ok(Value::String(parts.join(&args[1].to_string())))
                    }
                    Value::Null | Value::Nil(_) => Ok(Value::str("")),
                    other => Err(format!(
                        "wrong type for value; expected []string; got {}",
                        other.type_name()
                    )),
                }
            }
            "title" => {
                want(1)?;
                Ok(Value::String(title(&args[0].to_string())))
            }
            "lower" => {
                want(1)?;
                Ok(Value::String(args[0].to_string().to_lowercase()))
            }
            "upper" => {
                want(1)?;
                Ok(Value::String(args[0].to_string().to_uppercase()))
            }
            "pad" => {
                want(3)?;
                let s = args[0].to_string();
                if s.is_empty() {
                    return Ok(Value::String(s));
                }
                let (pre, post) = (int_arg(&args[1])?, int_arg(&args[2])?);
                Ok(Value::String(format!(
                    "{}{s}{}",
                    " ".repeat(pre.max(0) as usize),
                    " ".repeat(post.max(0) as usize)
                )))
            }
            "truncate" => {
                want(2)?;
                let s = args[0].to_string();
                let n = int_arg(&args[1])?.max(0) as usize;
                if s.len() < n {
                    return Ok(Value::String(s));
                }
                let mut cut = n;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                Ok(Value::String(s[..cut].to_string()))
            }
            "index" => {
                let mut it = args.into_iter();
                let mut v = it
                    .next()
                    .ok_or("wrong number of args for index: want at least 1 got 0")?;
                for key in it {
                    v = match (&v, &key) {
                        (Value::Array(items), k) => {
                            let i = int_arg(k)?;
                            if i < 0 || i as usize >= items.len() {
                                return Err(format!("index out of range: {i}"));
                            }
                            items[i as usize].clone()
                        }
                        (Value::Object(_) | Value::Context(_), k) => v
                            .get(&k.to_string())
                            .cloned()
                            .unwrap_or_else(|| Value::str("")),
                        (Value::Null | Value::Nil(_), _) => Value::str(""),
                        (other, _) => {
                            return Err(format!("can't index item of type {}", other.type_name()))
                        }
                    };
                }
                Ok(v)
            }
            "len" => {
                want(1)?;
                let n = match &args[0] {
                    Value::String(s) => s.len(),
                    Value::Array(a) => a.len(),
                    Value::Object(o) => o.len(),
                    Value::Context(c) => c.fields.len(),
                    Value::Null | Value::Nil(_) => 0,
                    other => return Err(format!("len of type {}", other.type_name())),
                };
                Ok(Value::int(n as i64))
            }
            "eq" => {
                if args.len() < 2 {
                    return Err("missing argument for comparison".into());
                }
                let first = &args[0];
                for other in &args[1..] {
                    if compare(first, other)? == Some(Ordering::Equal) {
                        return Ok(Value::Bool(true));
                    }
                }
                Ok(Value::Bool(false))
            }
            "ne" => {
                want(2)?;
                Ok(Value::Bool(
                    compare(&args[0], &args[1])? != Some(Ordering::Equal),
                ))
            }
            "lt" | "le" | "gt" | "ge" => {
                want(2)?;
                let Some(ord) = compare(&args[0], &args[1])? else {
                    return Err("invalid type for comparison".into());
                };
                Ok(Value::Bool(match name {
                    "lt" => ord == Ordering::Less,
                    "le" => ord != Ordering::Greater,
                    "gt" => ord == Ordering::Greater,
                    _ => ord != Ordering::Less,
                }))
            }
            "and" => {
                let n = args.len();
                for (i, a) in args.into_iter().enumerate() {
                    if !a.truthy() || i + 1 == n {
                        return Ok(a);
                    }
                }
                Err("wrong number of args for and: want at least 1 got 0".into())
            }
            "or" => {
                let n = args.len();
                for (i, a) in args.into_iter().enumerate() {
                    if a.truthy() || i + 1 == n {
                        return Ok(a);
                    }
                }
                Err("wrong number of args for or: want at least 1 got 0".into())
            }
            "not" => {
                want(1)?;
                Ok(Value::Bool(!args[0].truthy()))
            }
            "print" => Ok(Value::String(sprint(&args))),
            "println" => {
                let parts: Vec<String> = args.iter().map(Value::to_string).collect();
                Ok(Value::String(format!("{}\n", parts.join(" "))))
            }
            "printf" => {
                let Some((fmt, rest)) = args.split_first() else {
                    return Err("wrong number of args for printf: want at least 1 got 0".into());
                };
                Ok(Value::String(sprintf(&fmt.to_string(), rest)))
            }
            _ => Err(format!("function {name:?} not defined")),
        }
    }
}

fn operand_text(op: &Operand) -> String {
    match op {
        Operand::Field { text, .. } | Operand::Var { text, .. } | Operand::Sub { text, .. } => {
            text.clone()
        }
        Operand::Str(s) => format!("{s:?}"),
        Operand::Num(n) => n.clone(),
        Operand::Bool(b) => b.to_string(),
        Operand::Nil => "nil".into(),
        Operand::Func(f) => f.clone(),
    }
}

fn parse_number(s: &str) -> Option<serde_json::Number> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(i.into());
    }
    let lower = s.to_ascii_lowercase();
    let (neg, body) = match lower.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, lower.trim_start_matches('+')),
    };
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(digits) = body.strip_prefix(prefix) {
            let n = i64::from_str_radix(&digits.replace('_', ""), radix).ok()?;
            return Some((if neg { -n } else { n }).into());
        }
    }
    s.replace('_', "")
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
}

fn int_arg(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| format!("bad number {n}")),
        Value::String(s) => s.parse().map_err(|_| format!("can't convert {s:?} to int")),
        other => Err(format!("can't convert {} to int", other.type_name())),
    }
}

/// Go template comparison: numbers numerically, strings and booleans
/// directly; `None` means equal-comparable but unordered (booleans, nil).
fn compare(a: &Value, b: &Value) -> Result<Option<Ordering>, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                return Ok(Some(x.cmp(&y)));
            }
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            Ok(x.partial_cmp(&y))
        }
        (Value::String(x), Value::String(y)) => Ok(Some(x.cmp(y))),
        (Value::Bool(x), Value::Bool(y)) => Ok(if x == y { Some(Ordering::Equal) } else { None }),
        (Value::Null, Value::Null) => Ok(Some(Ordering::Equal)),
        (Value::Null, _) | (_, Value::Null) => Ok(None),
        (Value::Array(_) | Value::Object(_) | Value::Context(_) | Value::Nil(_), _)
        | (_, Value::Array(_) | Value::Object(_) | Value::Context(_) | Value::Nil(_)) => {
            Err("non-comparable type".into())
        }
        _ => Err("incompatible types for comparison".into()),
    }
}

/// Go's `strings.Title`: upper-cases the first letter of each word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_');
    }
    out
}

/// `fmt.Sprint`: spaces between operands when neither side is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::String(_)) && !matches!(args[i - 1], Value::String(_)) {
            out.push(' ');
        }
        out.push_str(&a.to_string());
    }
    out
}

/// `fmt.Sprintf` for the verbs scripts use: `%s %v %d %q %t %x %f %%`,
/// with `-`, `0`, width and precision.
fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut next_arg = args.iter();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero, mut plus) = (false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = next_arg.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let mut s = match verb {
            'q' => format!("{:?}", arg.to_string()),
            'd' => match arg {
                Value::Number(n) => {
                    let n = n.as_i64().unwrap_or_default();
                    if plus && n >= 0 {
                        format!("+{n}")
                    } else {
                        n.to_string()
                    }
                }
                other => format!("%!d({other})"),
            },
            'x' => match arg {
                Value::Number(n) => format!("{:x}", n.as_i64().unwrap_or_default()),
                other => other
                    .to_string()
                    .bytes()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            },
            'f' => match arg {
                Value::Number(n) => {
                    format!("{:.*}", prec.unwrap_or(6), n.as_f64().unwrap_or_default())
                }
                other => format!("%!f({other})"),
            },
            _ => {
                let s = arg.to_string();
                match prec {
                    Some(p) if verb == 's' || verb == 'v' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
        };
        let w: usize = width.parse().unwrap_or(0);
        let len = s.chars().count();
        if len < w {
            let pad = w - len;
            if left {
                s.push_str(&" ".repeat(pad));
            } else if zero && matches!(verb, 'd' | 'f' | 'x') {
                s = format!("{}{s}", "0".repeat(pad));
            } else {
                s = format!("{}{s}", " ".repeat(pad));
            }
        }
        out.push_str(&s);
    }
    for extra in next_arg {
        out.push_str(&format!("%!(EXTRA {})", extra));
    }
    out
}
