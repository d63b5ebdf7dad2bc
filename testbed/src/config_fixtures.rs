//! What a deployed stack's functions read at start, made in moto: the pools' SSM parameter and
//! the EKS cluster (whose endpoint and CA the IAM gate answers as the bed's, see
//! [`crate::iam_gate::GateStack::answer_cluster_as_the_bed`]).

use aws_config::SdkConfig;

/// Writes the SSM parameter `name` (a String of the Advanced tier, as the template's may be).
pub async fn put_parameter(sdk: &SdkConfig, name: &str, value: &str) {
    aws_sdk_ssm::Client::new(sdk)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .tier(aws_sdk_ssm::types::ParameterTier::Advanced)
        .overwrite(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("putting SSM parameter {name} in moto: {e:?}"));
}

/// Makes the EKS cluster `name` in moto, unless an earlier test of this bed made it (tests
/// share the cluster name their events carry).
pub async fn create_eks_cluster(sdk: &SdkConfig, name: &str) {
    let vpc = aws_sdk_eks::types::VpcConfigRequest::builder().build();
    let made = aws_sdk_eks::Client::new(sdk)
        .create_cluster()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/bed-eks-cluster")
        .resources_vpc_config(vpc)
        .send()
        .await;
    match made {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => panic!("creating EKS cluster {name} in moto: {e:?}"),
    }
}
