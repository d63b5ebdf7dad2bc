//! Kubernetes clients: from a kubeconfig locally, from an EKS token in Lambda.
//!
//! An EKS token is good for 15 minutes, so the EKS client is rebuilt with a fresh token once
//! the current one is [`TOKEN_LIFETIME`] old. Handlers ask
//! [`KubeConnector::client`] at the start of each invocation and always get a usable client.

use std::time::{Duration, Instant, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use base64::Engine;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use secrecy::SecretString;
use tokio::sync::Mutex;

use crate::adapters::kube::eks_token::{TOKEN_LIFETIME, eks_token};
use crate::model::config::KubeAccess;

/// Requests from functions are short; a stuck one should fail and be retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A Kubernetes client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum KubeAccessError {
    /// The kubeconfig file could not be read or used.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// Why.
        source: kube::config::KubeconfigError,
    },
    /// The EKS endpoint, CA or credentials could not be used.
    #[error("EKS access: {0}")]
    Eks(String),
    /// The HTTP client could not be built.
    #[error("building the Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// Hands out Kubernetes clients, rebuilding them before their credentials expire.
pub struct KubeConnector {
    access: KubeAccess,
    cluster: String,
    sdk: SdkConfig,
    cached: Mutex<Option<(Client, Option<Instant>)>>,
}

impl KubeConnector {
    /// A connector for `cluster` reached through `access`; `sdk` signs EKS tokens.
    pub fn new(access: KubeAccess, cluster: impl Into<String>, sdk: &SdkConfig) -> Self {
        Self {
            access,
            cluster: cluster.into(),
            sdk: sdk.clone(),
            cached: Mutex::new(None),
        }
    }

    /// A client that stays authenticated for at least the next few minutes.
    pub async fn client(&self) -> Result<Client, KubeAccessError> {
        let mut cached = self.cached.lock().await;
        if let Some((client, expires)) = cached.as_ref() {
            let fresh = expires.is_none_or(|at| Instant::now() < at);
            if fresh {
                return Ok(client.clone());
            }
        }
        let (client, expires) = match &self.access {
            KubeAccess::Kubeconfig(path) => (kubeconfig_client(path).await?, None),
            KubeAccess::Eks { endpoint, ca_pem } => {
                let client = self.eks_client(endpoint, ca_pem).await?;
                (client, Some(Instant::now() + TOKEN_LIFETIME))
            }
        };
        *cached = Some((client.clone(), expires));
        Ok(client)
    }

    async fn eks_client(&self, endpoint: &str, ca_pem: &str) -> Result<Client, KubeAccessError> {
        let provider = self
            .sdk
            .credentials_provider()
            .ok_or_else(|| KubeAccessError::Eks("no AWS credentials provider".to_owned()))?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| KubeAccessError::Eks(format!("loading AWS credentials: {e}")))?;
        let region = self
            .sdk
            .region()
            .ok_or_else(|| KubeAccessError::Eks("AWS_REGION is not set".to_owned()))?;
        let token = eks_token(
            &self.cluster,
            region.as_ref(),
            &credentials,
            SystemTime::now(),
        )
        .map_err(|e| KubeAccessError::Eks(e.to_string()))?;
        let url = endpoint
            .parse()
            .map_err(|e| KubeAccessError::Eks(format!("endpoint {endpoint:?}: {e}")))?;
        let mut config = Config::new(url);
        config.root_cert = Some(pem_to_der(ca_pem).map_err(KubeAccessError::Eks)?);
        config.auth_info.token = Some(SecretString::from(token));
        config.read_timeout = Some(REQUEST_TIMEOUT);
        Ok(Client::try_from(config)?)
    }
}

async fn kubeconfig_client(path: &std::path::Path) -> Result<Client, KubeAccessError> {
    let wrap = |source| KubeAccessError::Kubeconfig {
        path: path.display().to_string(),
        source,
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(wrap)?;
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(wrap)?;
    config.read_timeout = Some(REQUEST_TIMEOUT);
    Ok(Client::try_from(config)?)
}

/// The DER bytes of each certificate in a PEM bundle.
fn pem_to_der(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut certs = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let end = body
            .find(END)
            .ok_or_else(|| "the CA bundle has a certificate without an END line".to_owned())?;
        let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("the CA bundle holds a certificate that is not base64: {e}"))?;
        certs.push(der);
        rest = &body[end + END.len()..];
    }
    if certs.is_empty() {
        return Err("the CA bundle holds no certificate".to_owned());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bundles_decode_to_der() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n\
                   -----BEGIN CERTIFICATE-----\nBAU=\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_to_der(pem), Ok(vec![vec![0, 1, 2, 3], vec![4, 5]]));
        assert!(pem_to_der("").is_err());
        assert!(pem_to_der("-----BEGIN CERTIFICATE-----\nAAEC").is_err());
        assert!(pem_to_der("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----").is_err());
    }
}
