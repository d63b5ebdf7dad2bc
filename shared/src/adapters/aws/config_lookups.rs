//! [`ConfigLookups`] against AWS: SSM, EKS and ELBv2, each call carrying the function's app id.

use async_trait::async_trait;
use aws_config::SdkConfig;

use crate::adapters::aws::error::{code, describe};
use crate::model::config_source::lookups::{ClusterEndpoint, ConfigLookups, NamedLoadBalancer};

/// The configuration's reads, on the function's own clients.
pub struct AwsConfigLookups {
    ssm: aws_sdk_ssm::Client,
    eks: aws_sdk_eks::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
}

impl AwsConfigLookups {
    /// Clients from `sdk` naming `component` (`allocate`, ...) in their app id, as every other
    /// call of the function does.
    pub fn new(sdk: &SdkConfig, component: &str) -> Self {
        let app = crate::adapters::aws::sdk::app_name(component);
        let mut ssm = aws_sdk_ssm::config::Builder::from(sdk);
        ssm.set_app_name(app.clone());
        let mut eks = aws_sdk_eks::config::Builder::from(sdk);
        eks.set_app_name(app.clone());
        let mut elb = aws_sdk_elasticloadbalancingv2::config::Builder::from(sdk);
        elb.set_app_name(app);
        Self {
            ssm: aws_sdk_ssm::Client::from_conf(ssm.build()),
            eks: aws_sdk_eks::Client::from_conf(eks.build()),
            elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(elb.build()),
        }
    }

    /// One DescribeLoadBalancers by `names`; `Ok(None)` when AWS says one of them names no
    /// load balancer (it then answers for none).
    async fn describe(&self, names: &[String]) -> Result<Option<Vec<NamedLoadBalancer>>, String> {
        let out = match self
            .elb
            .describe_load_balancers()
            .set_names(Some(names.to_vec()))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if code(&e) == Some("LoadBalancerNotFound") => return Ok(None),
            Err(e) => {
                return Err(format!(
                    "elasticloadbalancing:DescribeLoadBalancers of {}: {}",
                    names.join(","),
                    describe(&e).0
                ));
            }
        };
        let found = out
            .load_balancers()
            .iter()
            .filter_map(|lb| {
                Some(NamedLoadBalancer {
                    name: lb.load_balancer_name()?.to_owned(),
                    arn: lb.load_balancer_arn()?.to_owned(),
                    kind: lb
                        .r#type()
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                })
            })
            .collect();
        Ok(Some(found))
    }
}

#[async_trait]
impl ConfigLookups for AwsConfigLookups {
    async fn parameter(&self, name: &str) -> Result<String, String> {
        let out = self
            .ssm
            .get_parameter()
            .name(name)
            .send()
            .await
            .map_err(|e| format!("ssm:GetParameter: {}", describe(&e).0))?;
        out.parameter()
            .and_then(|p| p.value())
            .map(str::to_owned)
            .ok_or_else(|| "ssm:GetParameter answered without a value".to_owned())
    }

    async fn load_balancers(&self, names: &[String]) -> Result<Vec<NamedLoadBalancer>, String> {
        if let Some(found) = self.describe(names).await? {
            return Ok(found);
        }
        // One unknown name fails the whole call: ask each alone, so the error can name it.
        let mut found = Vec::new();
        for name in names {
            found.extend(
                self.describe(std::slice::from_ref(name))
                    .await?
                    .unwrap_or_default(),
            );
        }
        Ok(found)
    }

    async fn cluster(&self, name: &str) -> Result<ClusterEndpoint, String> {
        let out = self
            .eks
            .describe_cluster()
            .name(name)
            .send()
            .await
            .map_err(|e| describe(&e).0)?;
        let cluster = out
            .cluster()
            .ok_or_else(|| "the answer holds no cluster".to_owned())?;
        Ok(ClusterEndpoint {
            endpoint: cluster.endpoint().map(str::to_owned),
            ca_data: cluster
                .certificate_authority()
                .and_then(|c| c.data())
                .map(str::to_owned),
            status: cluster.status().map(|s| s.as_str().to_owned()),
        })
    }
}
