//! Validation of the names that reach AWS tags, DynamoDB keys and error messages.
//!
//! Anything that arrives in an event is checked here before it is used, so a crafted event
//! cannot smuggle separators, huge strings or control characters into keys and tags.

/// Checks an RFC 1123 DNS label: 1 to 63 of `a-z`, `0-9`, `-`, starting and ending
/// alphanumeric. Namespaces, Service names and pool names are such labels.
pub fn validate_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty".to_owned());
    }
    if s.len() > 63 {
        return Err(format!("is {} characters long (at most 63)", s.len()));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if !s.chars().all(ok_char) {
        return Err("may hold only a-z, 0-9 and '-'".to_owned());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must start and end with a letter or digit".to_owned());
    }
    Ok(())
}

/// Checks a Kubernetes object uid: at most 64 characters of hex digits and hyphens.
pub fn validate_uid(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 64 {
        return Err("must be 1 to 64 characters".to_owned());
    }
    if !s.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err("may hold only hex digits and '-'".to_owned());
    }
    Ok(())
}

/// Checks an EKS cluster name: 1 to 100 of letters, digits, `-` and `_`, starting with a
/// letter or digit.
pub fn validate_cluster_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 100 {
        return Err("must be 1 to 100 characters".to_owned());
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if !s.chars().all(ok_char) {
        return Err("may hold only letters, digits, '-' and '_'".to_owned());
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or digit".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(validate_label("game-room-1").is_ok());
        assert!(validate_label(&"a".repeat(63)).is_ok());
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", "ä", "a/b"] {
            assert!(validate_label(bad).is_err(), "{bad:?}");
        }
        assert!(validate_label(&"a".repeat(64)).is_err());
    }

    #[test]
    fn uids() {
        assert!(validate_uid("0b9c1f0e-2d3a-4c5b-8e7f-1a2b3c4d5e6f").is_ok());
        for bad in ["", "uid#1", "x", &"a".repeat(65)] {
            assert!(validate_uid(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cluster_names() {
        assert!(validate_cluster_name("prod_eu-1").is_ok());
        for bad in ["", "-x", "a b", "a#b", &"a".repeat(101)] {
            assert!(validate_cluster_name(bad).is_err(), "{bad:?}");
        }
    }
}
