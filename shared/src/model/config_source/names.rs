//! NLBs a pool's JSON gives by name: found, checked, and replaced by their ARNs.
//!
//! An entry of a pool's `nlbArns` that does not start with `arn:` is an NLB name. A name is
//! about a third of an ARN, so a pool of 100 pre-made NLBs fits the template's 4,096-byte
//! parameter (docs/deploy.md, "Large pools").

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The longest load balancer name AWS accepts.
pub const MAX_NLB_NAME_LEN: usize = 32;

/// The NLB names of pool JSON, each once, in order of first appearance. JSON that is not a
/// pool object has no names here: [`crate::model::pool::PoolSet::from_json`] says what is wrong.
pub fn nlb_names(json: &str) -> Result<Vec<String>, String> {
    let Ok(Value::Object(pools)) = serde_json::from_str::<Value>(json) else {
        return Ok(vec![]);
    };
    let mut seen = BTreeSet::new();
    let mut names = Vec::new();
    for (pool, spec) in &pools {
        for entry in entries(spec) {
            if is_arn(entry) {
                continue;
            }
            validate_nlb_name(entry).map_err(|e| format!("pool {pool:?}: nlbArns entry {e}"))?;
            if seen.insert(entry.to_owned()) {
                names.push(entry.to_owned());
            }
        }
    }
    Ok(names)
}

/// `json` with every NLB name replaced by its ARN from `arns`; a name `arns` lacks is an error
/// naming it and its pool.
pub fn with_arns(json: &str, arns: &BTreeMap<String, String>) -> Result<String, String> {
    let mut value: Value =
        serde_json::from_str(json).map_err(|e| format!("is not valid pool JSON: {e}"))?;
    if let Value::Object(pools) = &mut value {
        for (pool, spec) in pools.iter_mut() {
            let Some(Value::Array(list)) = spec.get_mut("nlbArns") else {
                continue;
            };
            for entry in list.iter_mut() {
                let Value::String(text) = entry else { continue };
                if is_arn(text) {
                    continue;
                }
                let arn = arns.get(text.as_str()).ok_or_else(|| {
                    format!(
                        "pool {pool:?}: no load balancer named {text:?} in this account and \
                         region (DescribeLoadBalancers)"
                    )
                })?;
                *text = arn.clone();
            }
        }
    }
    serde_json::to_string(&value).map_err(|e| format!("writing pool JSON back: {e}"))
}

fn entries(spec: &Value) -> impl Iterator<Item = &str> {
    spec.get("nlbArns")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn is_arn(entry: &str) -> bool {
    entry.starts_with("arn:")
}

/// AWS's rule for load balancer names: 1 to 32 letters, digits and hyphens, neither starting
/// nor ending with a hyphen, not starting with `internal-`.
fn validate_nlb_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NLB_NAME_LEN
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.starts_with("internal-");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is neither an ARN (arn:...) nor a load balancer name (1-{MAX_NLB_NAME_LEN} \
             letters, digits and hyphens, not starting or ending with a hyphen)"
        ))
    }
}

#[cfg(test)]
#[path = "names_tests.rs"]
mod tests;
