//! How the stack's processes reach kube-apiserver, with the rights deploy/ gives them rather
//! than the bed's admin: deploy/'s RBAC and admission policy applied with kubectl, the
//! forwarder as its ServiceAccount (a TokenRequest token in a file, renewed the way kubelet
//! renews a projected token), the functions as a user of the `nlb-port-pool:functions` group (what the SAM
//! template's EKS access entry maps their role to), by impersonation from the admin.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;

use crate::Bed;

/// deploy/'s namespace, where the forwarder's ServiceAccount and Leases live.
pub const DEPLOY_NAMESPACE: &str = "nlb-port-pool";
/// deploy/'s ServiceAccount of the forwarder.
pub const FORWARDER_ACCOUNT: &str = "forwarder";
/// The group deploy/functions-rbac.yaml binds.
pub const FUNCTIONS_GROUP: &str = "nlb-port-pool:functions";
/// The user name the functions act as.
pub const FUNCTIONS_USER: &str = "nlb-port-pool-functions";
/// A token lives this long and is renewed at half its life.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// `kubectl apply` of deploy/'s namespace, RBAC and the functions' admission policy (not the
/// forwarder's Deployment: no controller runs on the bed, and the stack runs the forwarder
/// itself). Returns kubectl's report, one `<kind>/<name> created|configured|unchanged` line
/// per object and attempt.
pub async fn apply_rbac(bed: &Bed) -> Result<String> {
    let deploy = super::build::workspace_root().join("deploy");
    let mut last = String::new();
    let mut report = String::new();
    // Parallel tests apply the same objects; a conflict passes on a second try.
    for _ in 0..3 {
        let out = tokio::process::Command::new("kubectl")
            .arg("apply")
            .args(
                [
                    "namespace.yaml",
                    "forwarder-rbac.yaml",
                    "functions-rbac.yaml",
                    // The functions run under deploy/'s admission policy, as in a cluster.
                    "functions-admission.yaml",
                ]
                .iter()
                .flat_map(|f| ["-f".into(), deploy.join(f)]),
            )
            .env("KUBECONFIG", bed.kubeconfig())
            .output()
            .await
            .context("running kubectl (is it on PATH?)")?;
        report.push_str(&String::from_utf8_lossy(&out.stdout));
        if out.status.success() {
            return Ok(report);
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("kubectl apply of deploy/ RBAC failed: {last}")
}

/// A kubeconfig acting as the functions' group, written to `dir`.
pub fn functions_kubeconfig(bed: &Bed, dir: &Path) -> Result<PathBuf> {
    let mut config = Kubeconfig::read_from(bed.kubeconfig()).context("reading the kubeconfig")?;
    for named in &mut config.auth_infos {
        if let Some(auth) = named.auth_info.as_mut() {
            auth.impersonate = Some(FUNCTIONS_USER.to_owned());
            auth.impersonate_groups = Some(vec![FUNCTIONS_GROUP.to_owned()]);
        }
    }
    let path = dir.join("functions.kubeconfig");
    // JSON is YAML: kubeconfig readers take it.
    write_private(&path, &serde_json::to_vec(&config)?)?;
    Ok(path)
}

/// A kubeconfig acting as deploy/'s forwarder ServiceAccount through a token file in `dir`,
/// and the token file (renew it with [`renew_forwarder_token`]).
pub async fn forwarder_kubeconfig(
    bed: &Bed,
    admin: &kube::Client,
    dir: &Path,
) -> Result<(PathBuf, PathBuf)> {
    let token_path = dir.join("forwarder.token");
    renew_forwarder_token(admin, &token_path).await?;
    let ca = bed
        .var("KUBE_CA_FILE")
        .context("the stack file does not set KUBE_CA_FILE")?;
    let config = serde_json::json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "forwarder",
        "clusters": [{"name": "bed", "cluster": {"server": bed.kube_server(), "certificate-authority": ca}}],
        "users": [{"name": "forwarder", "user": {"tokenFile": token_path}}],
        "contexts": [{"name": "forwarder", "context": {"cluster": "bed", "user": "forwarder", "namespace": DEPLOY_NAMESPACE}}],
    });
    let path = dir.join("forwarder.kubeconfig");
    write_private(&path, config.to_string().as_bytes())?;
    Ok((path, token_path))
}

/// Writes a fresh token of the forwarder's ServiceAccount to `path` (kube-rs rereads a token
/// file every minute).
pub async fn renew_forwarder_token(admin: &kube::Client, path: &Path) -> Result<()> {
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), DEPLOY_NAMESPACE);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(TOKEN_LIFETIME.as_secs() as i64),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let token = accounts
        .create_token_request(FORWARDER_ACCOUNT, &PostParams::default(), &request)
        .await
        .context("TokenRequest for the forwarder's ServiceAccount")?
        .status
        .and_then(|s| s.token)
        .context("TokenRequest answered without a token")?;
    let tmp = path.with_extension("tmp");
    write_private(&tmp, token.as_bytes())?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// Renews the token at `path` every half lifetime, until the task is aborted.
pub async fn keep_renewing(admin: kube::Client, path: PathBuf) {
    loop {
        tokio::time::sleep(TOKEN_LIFETIME / 2).await;
        if let Err(e) = renew_forwarder_token(&admin, &path).await {
            tracing::warn!(error = %e, "renewing the forwarder's token failed; next try in a minute");
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}
