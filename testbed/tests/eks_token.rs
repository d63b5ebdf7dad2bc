//! The EKS token this project signs equals the one `aws eks get-token` (awscli from PyPI,
//! pinned in testbed/python/sam-requirements.txt) makes for the same credentials and time.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use base64::Engine;
use nlb_port_pool::adapters::kube::eks_token::{TOKEN_PREFIX, eks_token};

fn aws_cli() -> String {
    let dir = std::env::var("NLB_TOOLS_BIN").unwrap_or_else(|_| {
        panic!("NLB_TOOLS_BIN is not set: run `testbed/bin/install-sam-tools` and point it at the venv's bin (make test does)")
    });
    format!("{dir}/aws")
}

fn decode(token: &str) -> String {
    let b64 = token.strip_prefix(TOKEN_PREFIX).expect("token prefix");
    String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .expect("base64url"),
    )
    .expect("utf-8")
}

fn query(url: &str) -> BTreeMap<String, String> {
    url.split_once('?')
        .expect("a query")
        .1
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn matches_aws_eks_get_token() {
    // GIVEN fixed credentials with a session token
    let (key, secret, session) = (
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "FwoGZXIvYXdzEBYaDH+example/session=",
    );
    let output = Command::new(aws_cli())
        .args([
            "eks",
            "get-token",
            "--cluster-name",
            "prod-eu",
            "--region",
            "eu-west-1",
            "--output",
            "json",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_SESSION_TOKEN", session)
        .env("AWS_STS_REGIONAL_ENDPOINTS", "regional")
        .output()
        .expect("running aws eks get-token");
    assert!(
        output.status.success(),
        "aws eks get-token failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    let theirs = json["status"]["token"]
        .as_str()
        .expect("status.token")
        .to_owned();
    let their_url = decode(&theirs);
    let their_query = query(&their_url);

    // WHEN this project signs a token for the same cluster, credentials and signing time
    let date = &their_query["X-Amz-Date"];
    let time = chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ")
        .expect("X-Amz-Date")
        .and_utc();
    let at = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(time.timestamp()).expect("after 1970"));
    let credentials = Credentials::new(key, secret, Some(session.to_owned()), None, "test");
    let ours = eks_token("prod-eu", "eu-west-1", &credentials, at).expect("signs");
    let our_url = decode(&ours);

    // THEN host, parameters and signature are the same
    assert_eq!(
        their_url.split('?').next(),
        our_url.split('?').next(),
        "endpoint"
    );
    assert_eq!(
        query(&our_url),
        their_query,
        "\nours:   {our_url}\ntheirs: {their_url}"
    );
}
