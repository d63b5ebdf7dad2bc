use super::*;

const ARN: &str = "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/net/a/1";

#[test]
fn names_are_the_entries_that_are_not_arns_each_once() {
    let json = format!(
        r#"{{"default":{{"nlbArns":["games-1","{ARN}","games-2"],"ports":"1-9"}},
            "eu":{{"nlbArns":["games-2","eu-1"],"ports":"1-9"}}}}"#
    );
    assert_eq!(
        nlb_names(&json),
        Ok(vec!["games-1".into(), "games-2".into(), "eu-1".into()])
    );
    assert_eq!(
        nlb_names(&format!(r#"{{"p":{{"nlbArns":["{ARN}"]}}}}"#)),
        Ok(vec![])
    );
    assert_eq!(nlb_names("not json"), Ok(vec![]), "from_json reports it");
}

#[test]
fn a_bad_name_is_refused_naming_pool_and_entry() {
    for bad in ["-games", "games-", "a b", "internal-x", "", &"x".repeat(33)] {
        let json = format!(r#"{{"eu":{{"nlbArns":["{bad}"],"ports":"1-9"}}}}"#);
        let err = nlb_names(&json).expect_err(bad);
        assert!(err.starts_with(r#"pool "eu": nlbArns entry"#), "{err}");
        assert!(err.contains(&format!("{bad:?}")), "{err}");
    }
    let longest = "x".repeat(MAX_NLB_NAME_LEN);
    let json = format!(r#"{{"eu":{{"nlbArns":["{longest}"],"ports":"1-9"}}}}"#);
    assert_eq!(nlb_names(&json), Ok(vec![longest]));
}

#[test]
fn names_are_replaced_by_their_arns_and_the_rest_is_kept() {
    let json = format!(
        r#"{{"default":{{"nlbArns":["games-1","{ARN}"],"ports":"1-9","listenerQuota":5}}}}"#
    );
    let arns = BTreeMap::from([("games-1".to_owned(), "arn:games-1".to_owned())]);
    let out: Value =
        serde_json::from_str(&with_arns(&json, &arns).expect("known names")).expect("JSON");
    assert_eq!(
        out["default"]["nlbArns"],
        serde_json::json!(["arn:games-1", ARN])
    );
    assert_eq!(out["default"]["listenerQuota"], 5);
    assert_eq!(out["default"]["ports"], "1-9");
}

#[test]
fn an_unknown_name_is_an_error_naming_it() {
    let json = r#"{"eu":{"nlbArns":["games-9"],"ports":"1-9"}}"#;
    let err = with_arns(json, &BTreeMap::new()).expect_err("unknown");
    assert!(
        err.contains(r#"pool "eu""#) && err.contains(r#""games-9""#),
        "{err}"
    );
}
