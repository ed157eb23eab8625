//! `StrSlice`: Docker's Cmd/Entrypoint/Shell values, which old clients send
//! as a single string and new ones as an array.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A list of strings that also deserializes from a bare string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StrSlice(pub Vec<String>);

impl StrSlice {
    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for StrSlice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for StrSlice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Either::deserialize(d)? {
            Either::One(s) => StrSlice(vec![s]),
            Either::Many(v) => StrSlice(v),
        })
    }
}

impl From<Vec<String>> for StrSlice {
    fn from(v: Vec<String>) -> Self {
        StrSlice(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms() {
        let a: StrSlice = serde_json::from_str(r#""echo hi""#).unwrap();
        assert_eq!(a.0, vec!["echo hi"]);
        let b: StrSlice = serde_json::from_str(r#"["echo","hi"]"#).unwrap();
        assert_eq!(b.0, vec!["echo", "hi"]);
        let c: Option<StrSlice> = serde_json::from_str("null").unwrap();
        assert!(c.is_none());
    }
}
