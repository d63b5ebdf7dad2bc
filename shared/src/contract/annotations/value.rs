//! Reading an annotation's value: the map, the error naming the key at fault, and the opt-in.

use std::collections::BTreeMap;

use super::keys::{AUTO_ASSIGN, NETWORK_DISABLED};

/// Longest annotation value this code reads; longer ones are refused before parsing.
const MAX_VALUE_LEN: usize = 4096;

/// A Service's annotations.
pub type Annotations = BTreeMap<String, String>;

/// An input annotation whose value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {key}: {problem}")]
pub struct AnnotationError {
    /// The annotation's key.
    pub key: &'static str,
    /// What is wrong with its value.
    pub problem: String,
}

/// The error for `key`'s value, with what is wrong with it.
pub(crate) fn invalid(key: &'static str, problem: impl Into<String>) -> AnnotationError {
    AnnotationError {
        key,
        problem: problem.into(),
    }
}

/// The trimmed value of `key`, refused when longer than this code reads.
pub(crate) fn value<'a>(
    annotations: &'a Annotations,
    key: &'static str,
) -> Result<Option<&'a str>, AnnotationError> {
    match annotations.get(key) {
        None => Ok(None),
        Some(v) if v.len() > MAX_VALUE_LEN => Err(invalid(
            key,
            format!("value is {} bytes long (at most {MAX_VALUE_LEN})", v.len()),
        )),
        Some(v) => Ok(Some(v.trim())),
    }
}

/// Cuts a user's value for quoting in a message.
pub(crate) fn shorten(s: &str) -> String {
    if s.chars().count() <= 64 {
        s.to_owned()
    } else {
        let head: String = s.chars().take(64).collect();
        format!("{head}...")
    }
}

/// Whether the Service asks for a port: `Ok(false)` when the key is absent or `"false"`.
pub fn opt_in(annotations: &Annotations) -> Result<bool, AnnotationError> {
    match annotations.get(AUTO_ASSIGN).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(invalid(
            AUTO_ASSIGN,
            format!("{:?} is neither \"true\" nor \"false\"", shorten(other)),
        )),
    }
}

/// Whether a Service or pod asks to be taken out of its listeners
/// ([`NETWORK_DISABLED`]): `Ok(false)` when the key is absent or `"false"`.
pub fn network_disabled(annotations: &Annotations) -> Result<bool, AnnotationError> {
    match annotations.get(NETWORK_DISABLED).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(invalid(
            NETWORK_DISABLED,
            format!("{:?} is neither \"true\" nor \"false\"", shorten(other)),
        )),
    }
}

/// Whether the annotations carry the opt-in key at all, whatever its value.
pub fn mentions_opt_in(annotations: &Annotations) -> bool {
    annotations.contains_key(AUTO_ASSIGN)
}
