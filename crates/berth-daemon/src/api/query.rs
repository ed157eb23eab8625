//! Query strings as Docker clients write them: repeated keys, and booleans
//! as `1`/`0`/`true`/`false`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use berth_api::Filters;

use crate::error::DaemonError;

/// All query pairs, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query(pub(crate) Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = DaemonError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let pairs = berth_api::query::pairs(q);
        Ok(Query(pairs))
    }
}

impl Query {
    /// The last value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean flag: absent, "", "0", "false" are false.
    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some(v) if !matches!(v.to_ascii_lowercase().as_str(), "" | "0" | "false" | "no"))
    }

    /// A boolean with a default when absent.
    pub(crate) fn flag_or(&self, key: &str, default: bool) -> bool {
        if self.get(key).is_none() {
            default
        } else {
            self.flag(key)
        }
    }

    /// An integer parameter.
    pub(crate) fn int(&self, key: &str) -> Result<Option<i64>, DaemonError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| DaemonError::BadRequest(format!("invalid value for {key}: {v:?}"))),
        }
    }

    /// The `filters` parameter.
    pub(crate) fn filters(&self) -> Result<Filters, DaemonError> {
        Filters::parse(self.get("filters").unwrap_or(""))
            .map_err(|e| DaemonError::BadRequest(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        let q = Query(berth_api::query::pairs(
            "names=a&names=b%3Alatest&all=1&x=%7B%22a%22%7D&s=a+b&bad=%zz&end=%4",
        ));
        assert_eq!(q.all("names"), vec!["a", "b:latest"]);
        assert!(q.flag("all"));
        assert!(!q.flag("missing"));
        assert_eq!(q.get("x"), Some("{\"a\"}"));
        assert_eq!(q.get("s"), Some("a b"));
        assert_eq!(q.get("bad"), Some("%zz"));
        assert_eq!(q.get("end"), Some("%4"));
    }
}
