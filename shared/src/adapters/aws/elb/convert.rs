//! Between the SDK's types and errors and the project's.

use aws_sdk_elasticloadbalancingv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, Listener, ProtocolEnum, Tag, TargetDescription,
    TargetGroup,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::adapters::aws::error::describe;
use crate::contract::annotations::{HealthCheckPort, HealthCheckProtocol, HealthCheckSpec};
use crate::contract::protocol::ListenerProtocol;
use crate::model::elb::{
    ElbError, ElbErrorKind, ListenerInfo, ListenerTlsInfo, ResourceTags, TargetGroupInfo,
};
use crate::model::targets::Target;

pub(super) fn elb_error<E>(
    operation: &'static str,
    err: &SdkError<E, HttpResponse>,
    kind: ElbErrorKind,
) -> ElbError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (message, retryable) = describe(err);
    ElbError {
        operation,
        message,
        retryable: retryable || kind == ElbErrorKind::InUse,
        kind,
    }
}

pub(super) fn other<E>(operation: &'static str, err: &SdkError<E, HttpResponse>) -> ElbError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    elb_error(operation, err, ElbErrorKind::Other)
}

/// AWS's refusal for a quota (`kind` is one of the quota kinds): not retryable, since only a
/// release somewhere in the account, or a raised quota, makes room.
pub(super) fn quota<E>(
    operation: &'static str,
    err: &SdkError<E, HttpResponse>,
    kind: ElbErrorKind,
) -> ElbError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    ElbError {
        retryable: false,
        ..elb_error(operation, err, kind)
    }
}

/// A call denied on a listener or target group that no longer exists (see `denials`): the
/// next run reads the Service again and repairs what is missing.
pub(super) fn gone(operation: &'static str, arn: &str) -> ElbError {
    ElbError {
        operation,
        message: format!("{arn} no longer exists (AccessDenied on a resource with no tags)"),
        retryable: true,
        kind: ElbErrorKind::NotFound,
    }
}

pub(super) fn invalid(operation: &'static str, message: impl Into<String>) -> ElbError {
    ElbError {
        operation,
        message: message.into(),
        retryable: false,
        kind: ElbErrorKind::Other,
    }
}

pub(super) fn protocol_enum(p: ListenerProtocol) -> ProtocolEnum {
    match p {
        ListenerProtocol::Tcp => ProtocolEnum::Tcp,
        ListenerProtocol::Udp => ProtocolEnum::Udp,
        ListenerProtocol::TcpUdp => ProtocolEnum::TcpUdp,
    }
}

pub(super) fn hc_protocol_enum(p: HealthCheckProtocol) -> ProtocolEnum {
    match p {
        HealthCheckProtocol::Tcp => ProtocolEnum::Tcp,
        HealthCheckProtocol::Http => ProtocolEnum::Http,
        HealthCheckProtocol::Https => ProtocolEnum::Https,
    }
}

pub(super) fn hc_port_text(p: HealthCheckPort) -> String {
    match p {
        HealthCheckPort::TrafficPort => "traffic-port".to_owned(),
        HealthCheckPort::Port(n) => n.to_string(),
    }
}

pub(super) fn tags(t: &ResourceTags) -> Vec<Tag> {
    t.pairs()
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

pub(super) fn certificate(arn: &str) -> Certificate {
    Certificate::builder().certificate_arn(arn).build()
}

pub(super) fn forward(target_group_arn: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(target_group_arn)
        .build()
}

pub(super) fn target_group_info(tg: &TargetGroup) -> Option<TargetGroupInfo> {
    let protocol = match tg.health_check_protocol() {
        Some(ProtocolEnum::Http) => HealthCheckProtocol::Http,
        Some(ProtocolEnum::Https) => HealthCheckProtocol::Https,
        _ => HealthCheckProtocol::Tcp,
    };
    let port = match tg.health_check_port() {
        None | Some("traffic-port") => HealthCheckPort::TrafficPort,
        Some(p) => p
            .parse()
            .map_or(HealthCheckPort::TrafficPort, HealthCheckPort::Port),
    };
    Some(TargetGroupInfo {
        arn: tg.target_group_arn()?.to_owned(),
        name: tg.target_group_name()?.to_owned(),
        health_check: HealthCheckSpec {
            protocol,
            port,
            interval_seconds: tg.health_check_interval_seconds(),
            timeout_seconds: tg.health_check_timeout_seconds(),
            healthy_threshold: tg.healthy_threshold_count(),
            unhealthy_threshold: tg.unhealthy_threshold_count(),
            path: tg.health_check_path().map(str::to_owned),
        },
        vpc_id: tg.vpc_id().map(str::to_owned),
    })
}

pub(super) fn listener_info(l: &Listener) -> Option<ListenerInfo> {
    Some(ListenerInfo {
        arn: l.listener_arn()?.to_owned(),
        nlb_arn: l.load_balancer_arn()?.to_owned(),
        port: u16::try_from(l.port()?).ok()?,
        protocol: l
            .protocol()
            .and_then(|p| ListenerProtocol::parse(p.as_str())),
        target_group_arn: l
            .default_actions()
            .iter()
            .find_map(|a| a.target_group_arn().map(str::to_owned)),
        tls: (l.protocol() == Some(&ProtocolEnum::Tls)).then(|| ListenerTlsInfo {
            certificate: l
                .certificates()
                .iter()
                .find_map(|c| c.certificate_arn().map(str::to_owned)),
            policy: l.ssl_policy().map(str::to_owned),
            alpn: l.alpn_policy().first().cloned(),
        }),
    })
}

pub(super) fn descriptions(targets: &[Target]) -> Vec<TargetDescription> {
    targets
        .iter()
        .map(|t| {
            TargetDescription::builder()
                .id(t.ip.to_string())
                .port(i32::from(t.port))
                .build()
        })
        .collect()
}
