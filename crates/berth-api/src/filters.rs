//! The `filters` query parameter: JSON `map[string][]string`, or the old
//! `map[string]map[string]bool` form that the docker CLI still sends.

use std::collections::BTreeMap;

/// Decoded filters: key → accepted values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

/// A `filters` value that is not JSON of either accepted shape.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid filter: {0}")]
pub struct FilterError(String);

impl Filters {
    /// Parses the JSON text of a `filters` query parameter; empty means none.
    pub fn parse(s: &str) -> Result<Filters, FilterError> {
        if s.trim().is_empty() {
            return Ok(Filters::default());
        }
        let v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| FilterError(e.to_string()))?;
        let obj = v
            .as_object()
            .ok_or_else(|| FilterError("filters must be a JSON object".into()))?;
        let mut out = BTreeMap::new();
        for (k, vals) in obj {
            let list = match vals {
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| FilterError(format!("bad value for {k}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(false))
                    .map(|(name, _)| name.clone())
                    .collect(),
                _ => return Err(FilterError(format!("bad value for {k}"))),
            };
            out.insert(k.clone(), list);
        }
        Ok(Filters(out))
    }

    /// Serialises to the `map[string][]string` form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".into())
    }

    /// Adds a value under a key.
    pub fn add(&mut self, key: &str, value: &str) {
        self.0
            .entry(key.to_string())
            .or_default()
            .push(value.to_string());
    }

    /// The values given for `key` (empty when absent).
    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// True when no filter is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keys present that are not in `allowed`: the first such key, for
    /// Docker's "invalid filter 'x'" error.
    pub fn unknown_key(&self, allowed: &[&str]) -> Option<&str> {
        self.0
            .keys()
            .map(String::as_str)
            .find(|k| !allowed.contains(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes() {
        let a = Filters::parse(r#"{"status":["exited","created"]}"#).unwrap();
        assert_eq!(a.get("status"), ["exited", "created"]);
        let b = Filters::parse(r#"{"type":{"container":true}}"#).unwrap();
        assert_eq!(b.get("type"), ["container"]);
        assert!(Filters::parse("").unwrap().is_empty());
        assert!(Filters::parse("[1]").is_err());
        assert_eq!(a.unknown_key(&["status"]), None);
        assert_eq!(a.unknown_key(&["name"]), Some("status"));
    }
}
