//! The data a template runs on: JSON with object keys kept in the order the
//! daemon sent them, so that `{{json .Config}}` prints what docker prints.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A JSON value whose objects keep their key order.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Value {
    /// `null`, and what a missing value evaluates to in header mode.
    #[default]
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, printed as the daemon wrote it (like Go's `json.Number`).
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, keys in order.
    Object(Vec<(String, Value)>),
    /// A typed Go nil that is no pointer: a nil slice (`[]`) or map
    /// (`map[]`); JSON `null`, false and empty.
    Nil(GoNil),
    /// A row of a docker formatter context (`ps`, `images`…): its fields,
    /// plus methods that take a key (`{{.Label "k"}}`). As with Go's
    /// `MarshalJSON` on those contexts, its JSON leaves the methods out and
    /// escapes `<`, `>` and `&`.
    Context(Box<Context>),
}

/// The kind of a [`Value::Nil`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GoNil {
    /// A nil slice.
    Slice,
    /// A nil map.
    Map,
}

/// The fields and keyed methods of a [`Value::Context`].
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Context {
    /// The Go type docker's errors name (`*formatter.ContainerContext`).
    pub(crate) type_name: &'static str,
    /// Fields, in the order JSON prints them.
    pub(crate) fields: Vec<(String, Value)>,
    /// Methods taking one key: name → map the key is looked up in.
    pub(crate) methods: Vec<(String, Value)>,
    /// What `json` prints instead of the fields, for Go structs whose JSON
    /// names differ from their field names (`events.Message`); printed
    /// without HTML escaping, as such structs have no `MarshalJSON`.
    pub(crate) json: Option<Value>,
    /// A Go `map[string]string` inside a struct: a missing key is not an
    /// error but Go's `<no value>`.
    pub(crate) go_map: bool,
}

impl Value {
    /// A string value.
    pub(crate) fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// An integer value.
    pub(crate) fn int(n: i64) -> Value {
        Value::Number(n.into())
    }

    /// An object from `(key, value)` pairs.
    pub(crate) fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A formatter context row.
    pub(crate) fn context<K: Into<String>>(
        type_name: &'static str,
        fields: impl IntoIterator<Item = (K, Value)>,
        methods: impl IntoIterator<Item = (K, Value)>,
    ) -> Value {
        Value::Context(Box::new(Context {
            type_name,
            fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            methods: methods.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            json: None,
            go_map: false,
        }))
    }

    /// A Go struct: fields looked up by their Go names, `json` printing
    /// `json` (its JSON form, with the JSON names).
    pub(crate) fn go_struct<K: Into<String>>(
        type_name: &'static str,
        fields: impl IntoIterator<Item = (K, Value)>,
        json: Value,
    ) -> Value {
        Value::Context(Box::new(Context {
            type_name,
            fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            methods: Vec::new(),
            json: Some(json),
            go_map: false,
        }))
    }

    /// A Go `map[string]string` field of a struct (`None`: a nil map, JSON
    /// `null`): keys are looked up like fields, a missing one is
    /// `<no value>`.
    pub(crate) fn go_map(pairs: Option<&std::collections::BTreeMap<String, String>>) -> Value {
        let fields: Vec<(String, Value)> = pairs
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), Value::str(v.as_str())))
            .collect();
        let json = match pairs {
            Some(_) => Value::Object(fields.clone()),
            None => Value::Null,
        };
        Value::Context(Box::new(Context {
            type_name: "map[string]string",
            fields,
            methods: Vec::new(),
            json: Some(json),
            go_map: true,
        }))
    }

    /// The map behind a keyed method of a context (`Label`).
    pub(crate) fn method(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Context(c) => c.methods.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Parses JSON text, keeping key order.
    pub(crate) fn from_json(text: &[u8]) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(text)
    }

    /// The value under `key` when this is an object.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(pairs) => pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            Value::Context(c) => c.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string inside, when this is a string.
    #[cfg(test)]
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Go's notion of truth: false, 0, nil and empty strings, lists and maps
    /// are false.
    pub(crate) fn truthy(&self) -> bool {
        match self {
            Value::Null | Value::Nil(_) => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            Value::Context(_) => true,
        }
    }

    /// A short type name for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "interface {}",
            Value::Bool(_) => "bool",
            Value::Number(_) => "json.Number",
            Value::String(_) => "string",
            Value::Array(_) | Value::Nil(GoNil::Slice) => "[]interface {}",
            Value::Object(_) | Value::Nil(GoNil::Map) => "map[string]interface {}",
            Value::Context(c) => c.type_name,
        }
    }

    /// Compact JSON text: no HTML escaping (docker's `json` function), except
    /// for contexts, whose `MarshalJSON` escapes.
    pub(crate) fn to_json(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        if !matches!(self, Value::Context(c) if c.json.is_none()) {
            return text;
        }
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '<' => out.push_str("\\u003c"),
                '>' => out.push_str("\\u003e"),
                '&' => out.push_str("\\u0026"),
                '\u{2028}' => out.push_str("\\u2028"),
                '\u{2029}' => out.push_str("\\u2029"),
                c => out.push(c),
            }
        }
        out
    }
}

/// Prints a value the way Go's `fmt.Print` prints the corresponding Go
/// value: strings bare, lists as `[a b]`, maps as `map[k:v]` sorted by key.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("<nil>"),
            Value::Nil(GoNil::Slice) => f.write_str("[]"),
            Value::Nil(GoNil::Map) => f.write_str("map[]"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::String(s) => f.write_str(s),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Object(pairs) => fmt_map(f, pairs),
            Value::Context(c) => fmt_map(f, &c.fields),
        }
    }
}

fn fmt_map(f: &mut fmt::Formatter<'_>, pairs: &[(String, Value)]) -> fmt::Result {
    let mut sorted: Vec<&(String, Value)> = pairs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    f.write_str("map[")?;
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        write!(f, "{k}:{v}")?;
    }
    f.write_str("]")
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null | Value::Nil(_) => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => n.serialize(s),
            Value::String(v) => s.serialize_str(v),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Object(pairs) => serialize_pairs(s, pairs),
            Value::Context(c) => match &c.json {
                Some(json) => json.serialize(s),
                None => serialize_pairs(s, &c.fields),
            },
        }
    }
}

fn serialize_pairs<S: Serializer>(s: S, pairs: &[(String, Value)]) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::Null))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut pairs: Vec<(String, Value)> = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            if let Some(slot) = pairs.iter_mut().find(|(key, _)| *key == k) {
                slot.1 = v;
            } else {
                pairs.push((k, v));
            }
        }
        Ok(Value::Object(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_key_order_and_prints_like_go() {
        let v =
            Value::from_json(br#"{"Zed":1,"Alpha":[1,"a",true],"M":{"b":"2","a":null},"F":1.5}"#)
                .unwrap();
        assert_eq!(
            v.to_json(),
            r#"{"Zed":1,"Alpha":[1,"a",true],"M":{"b":"2","a":null},"F":1.5}"#
        );
        assert_eq!(v.get("Alpha").unwrap().to_string(), "[1 a true]");
        assert_eq!(v.get("M").unwrap().to_string(), "map[a:<nil> b:2]");
        assert_eq!(v.get("F").unwrap().to_string(), "1.5");
        assert!(!Value::str("").truthy());
        assert!(Value::int(3).truthy());
        assert!(!Value::Array(vec![]).truthy());
    }

    #[test]
    fn json_is_not_html_escaped_except_for_contexts() {
        assert_eq!(Value::str("a<b>&c").to_json(), r#""a<b>&c""#);
        let row = Value::context(
            "*formatter.ContainerContext",
            [("Ports", Value::str("0.0.0.0:80->80/tcp"))],
            [("Label", Value::object([("a", Value::str("1"))]))],
        );
        assert_eq!(row.to_json(), r#"{"Ports":"0.0.0.0:80-\u003e80/tcp"}"#);
        assert_eq!(row.to_string(), "map[Ports:0.0.0.0:80->80/tcp]");
        assert!(row.method("Label").is_some());
        assert_eq!(row.get("Ports").unwrap().to_string(), "0.0.0.0:80->80/tcp");
        let ev = Value::go_struct(
            "*events.Message",
            [("Status", Value::str("")), ("Type", Value::str("a<b"))],
            Value::object([("Type", Value::str("a<b"))]),
        );
        assert_eq!(ev.to_json(), r#"{"Type":"a<b"}"#);
        assert_eq!(ev.get("Status").unwrap().to_string(), "");
    }
}
