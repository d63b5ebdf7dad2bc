//! ACM certificates in moto for TLS listeners: a self-signed one imported (issued at once, as
//! an imported certificate is in AWS), or one requested (pending validation, as in AWS until
//! its DNS record is seen).

use std::process::Command;

use anyhow::{Context as _, Result, bail};
use aws_config::SdkConfig;
use aws_sdk_acm::primitives::Blob;

/// A self-signed certificate for `domain` and its key, as PEM, made with `openssl`.
pub fn self_signed(domain: &str) -> Result<(String, String)> {
    let dir = std::env::temp_dir().join(crate::unique_name("acm"));
    std::fs::create_dir_all(&dir).with_context(|| format!("making {}", dir.display()))?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .arg("-subj")
        .arg(format!("/CN={domain}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{domain}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .context("running openssl (is it on PATH?)")?;
    if !out.status.success() {
        bail!(
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pems = (
        std::fs::read_to_string(&cert).context("reading the certificate")?,
        std::fs::read_to_string(&key).context("reading the key")?,
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(pems)
}

/// Imports a self-signed certificate for `domain` into ACM; its ARN (status `ISSUED`).
pub async fn imported_certificate(sdk: &SdkConfig, domain: &str) -> Result<String> {
    let (cert, key) = self_signed(domain)?;
    let out = aws_sdk_acm::Client::new(sdk)
        .import_certificate()
        .certificate(Blob::new(cert))
        .private_key(Blob::new(key))
        .send()
        .await
        .context("ImportCertificate")?;
    out.certificate_arn()
        .map(str::to_owned)
        .context("ImportCertificate named no certificate")
}

/// Requests a certificate for `domain` (status `PENDING_VALIDATION`); its ARN.
pub async fn pending_certificate(sdk: &SdkConfig, domain: &str) -> Result<String> {
    let out = aws_sdk_acm::Client::new(sdk)
        .request_certificate()
        .domain_name(domain)
        .send()
        .await
        .context("RequestCertificate")?;
    out.certificate_arn()
        .map(str::to_owned)
        .context("RequestCertificate named no certificate")
}
