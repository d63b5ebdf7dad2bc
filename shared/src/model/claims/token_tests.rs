use super::*;

#[test]
fn tokens_are_distinct_and_name_their_request() {
    let many: std::collections::BTreeSet<RunToken> =
        (0..1000).map(|_| RunToken::random()).collect();
    assert_eq!(many.len(), 1000);
    let a = RunToken::for_request("c0ffee-1");
    let b = RunToken::for_request("c0ffee-1");
    assert!(a.as_str().starts_with("c0ffee-1/"), "{a}");
    assert_ne!(a, b, "each attempt of one request is its own run");
    assert_eq!(RunToken::for_request("").as_str().len(), 32);
    assert!(
        !RunToken::for_request("a\"b c")
            .as_str()
            .contains(['"', ' '])
    );
}
