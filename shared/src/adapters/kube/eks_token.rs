//! EKS bearer tokens, as `aws eks get-token` makes them.
//!
//! A token is `k8s-aws-v1.` followed by the base64url (unpadded) text of an STS
//! `GetCallerIdentity` URL presigned with SigV4, whose signed headers include
//! `x-k8s-aws-id: <cluster>`. The API server (aws-iam-authenticator) calls that URL to learn the
//! caller's IAM identity and maps it through the cluster's access entries.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;

/// The prefix of every EKS token.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";

/// The header naming the cluster, signed into the URL so a token works for one cluster only.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";

/// EKS accepts a token for 15 minutes after its signing time; use it for less.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// The presigned URL's own `X-Amz-Expires`, as the AWS CLI sets it.
const PRESIGN_EXPIRES: Duration = Duration::from_secs(60);

/// A token could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("signing the EKS token for cluster {cluster}: {reason}")]
pub struct TokenError {
    cluster: String,
    reason: String,
}

/// Makes the token for `cluster` in `region`, signed with `credentials` at `time`.
pub fn eks_token(
    cluster: &str,
    region: &str,
    credentials: &Credentials,
    time: SystemTime,
) -> Result<String, TokenError> {
    let url = presigned_url(cluster, region, credentials, time).map_err(|reason| TokenError {
        cluster: cluster.to_owned(),
        reason,
    })?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
    ))
}

/// The STS endpoint the CLI uses: regional, which every partition answers.
fn sts_host(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("sts.{region}.{suffix}")
}

fn presigned_url(
    cluster: &str,
    region: &str,
    credentials: &Credentials,
    time: SystemTime,
) -> Result<String, String> {
    let base = format!(
        "https://{}/?Action=GetCallerIdentity&Version=2011-06-15",
        sts_host(region)
    );
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_EXPIRES);
    let identity = Identity::from(credentials.clone());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new(
        "GET",
        base.as_str(),
        [(CLUSTER_ID_HEADER, cluster)].into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let (_headers, query) = instructions.into_parts();
    let mut url = base;
    for (name, value) in query {
        url.push('&');
        url.push_str(name);
        url.push('=');
        url.push_str(&percent_encode(&value));
    }
    Ok(url)
}

/// RFC 3986 percent-encoding of everything but the unreserved characters, as SigV4 requires.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            token.map(str::to_owned),
            None,
            "test",
        )
    }

    fn decode(token: &str) -> String {
        let b64 = token.strip_prefix(TOKEN_PREFIX).expect("prefix");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .expect("base64url without padding");
        String::from_utf8(bytes).expect("utf-8 URL")
    }

    #[test]
    fn token_is_a_presigned_sts_url() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_150_000);
        let token =
            eks_token("prod", "us-west-2", &creds(Some("SESSION/TOKEN=")), time).expect("signs");
        assert!(!token.contains('='), "no padding");
        let url = decode(&token);
        assert!(url.starts_with(
            "https://sts.us-west-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"
        ));
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20251126%2Fus-west-2%2Fsts%2Faws4_request",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Security-Token=SESSION%2FTOKEN%3D",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} missing in {url}");
        }
    }

    #[test]
    fn signature_depends_on_cluster_and_time() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_150_000);
        let a = eks_token("a", "us-west-2", &creds(None), t).expect("signs");
        let b = eks_token("b", "us-west-2", &creds(None), t).expect("signs");
        let a2 =
            eks_token("a", "us-west-2", &creds(None), t + Duration::from_secs(1)).expect("signs");
        assert_ne!(a, b);
        assert_ne!(a, a2);
        assert_eq!(
            a,
            eks_token("a", "us-west-2", &creds(None), t).expect("signs")
        );
        assert!(!decode(&a).contains("X-Amz-Security-Token"));
    }

    #[test]
    fn china_regions_use_their_domain() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_150_000);
        let url = decode(&eks_token("a", "cn-north-1", &creds(None), t).expect("signs"));
        assert!(
            url.starts_with("https://sts.cn-north-1.amazonaws.com.cn/"),
            "{url}"
        );
    }
}
