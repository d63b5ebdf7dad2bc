"""moto's ELBv2 made to answer as AWS does where the project's listener options meet it.

Each difference is one of DESIGN.md section 10's list (moto 5.2.5):
- ModifyListener refuses Protocol=TLS ("UnsupportedProtocol") and, on a TLS listener, ignores
  Certificates and AlpnPolicy; AWS changes a network listener between TCP, UDP, TCP_UDP and TLS
  in place and sets its default certificate, security policy and ALPN policy.
- DescribeTargetGroupAttributes of a network target group lacks preserve_client_ip.enabled,
  proxy_protocol_v2.enabled and deregistration_delay.connection_termination.enabled, which AWS
  always lists (with its defaults).
- ModifyTargetGroupAttributes accepts preserve_client_ip.enabled=false and
  proxy_protocol_v2.enabled=true on UDP and TCP_UDP groups (AWS refuses both: UDP always keeps
  the client's IP and takes no PROXY header), and refuses a deregistration delay of 3600 (AWS
  allows 0 to 3600 inclusive).

`install()` patches moto's classes in place; the launcher calls it before the server starts.
"""

from moto.elbv2.exceptions import ELBClientError as RESTError
from moto.elbv2.exceptions import InvalidConfigurationRequest
from moto.elbv2.models import ELBv2Backend, FakeAction, FakeTargetGroup
from moto.elbv2.responses import ELBV2Response
from moto.elbv2.ssl_policies import SSL_POLICIES
from moto.core.responses import ActionResult

NETWORK_PROTOCOLS = ("TCP", "UDP", "TCP_UDP", "TLS")

_original_modify_listener = ELBv2Backend.modify_listener
_original_tg_init = FakeTargetGroup.__init__
_original_modify_tg_attributes = ELBv2Backend.modify_target_group_attributes


def _modify_listener(
    self,
    arn,
    port=None,
    protocol=None,
    ssl_policy=None,
    certificates=None,
    actions=None,
    alpn_policy=None,
):
    listener = self.describe_listeners(load_balancer_arn=None, listener_arns=[arn])[0]
    network = listener.protocol in NETWORK_PROTOCOLS
    if not network or (protocol is None and listener.protocol != "TLS"):
        return _original_modify_listener(
            self, arn, port, protocol, ssl_policy, certificates, actions
        )
    if protocol is not None and protocol not in NETWORK_PROTOCOLS:
        raise RESTError("UnsupportedProtocol", f"Protocol {protocol} is not supported")
    becomes = protocol or listener.protocol
    if becomes == "TLS":
        if certificates:
            default = certificates[0]["CertificateArn"]
            if not self._certificate_exists(certificate_arn=default):
                raise RESTError("CertificateNotFound", f"Certificate {default} not found")
            extra = [c for c in listener.certificates[1:] if c != default]
            listener.certificate = default
            listener.certificates = [default] + extra
        elif not listener.certificate:
            raise RESTError(
                "CertificateNotFound",
                "A certificate must be specified for a TLS listener",
            )
        listener.ssl_policy = ssl_policy or listener.ssl_policy or "ELBSecurityPolicy-2016-08"
        if alpn_policy:
            listener.alpn_policy = alpn_policy
    else:
        listener.certificate = None
        listener.certificates = []
        listener.ssl_policy = None
        listener.alpn_policy = []
    listener.protocol = becomes
    if port is not None:
        listener.port = port
    if actions:
        default_actions = [FakeAction(a) for a in actions]
        listener.default_actions = default_actions
        listener._default_rule[0].actions = default_actions
    return listener


def _modify_listener_response(self):
    params = self._get_params()
    ssl_policy = self._get_param("SslPolicy")
    if ssl_policy is not None and ssl_policy not in SSL_POLICIES:
        raise RESTError("SSLPolicyNotFound", f"Policy {ssl_policy} not found")
    listener = self.elbv2_backend.modify_listener(
        self._get_param("ListenerArn"),
        self._get_param("Port"),
        self._get_param("Protocol"),
        ssl_policy,
        self._get_param("Certificates", []),
        self._get_param("DefaultActions", []),
        alpn_policy=params.get("AlpnPolicy", []),
    )
    return ActionResult({"Listeners": [listener]})


def _tg_init(self, *args, **kwargs):
    _original_tg_init(self, *args, **kwargs)
    if self.protocol in NETWORK_PROTOCOLS:
        ip = self.target_type == "ip"
        keeps_ip = self.protocol in ("UDP", "TCP_UDP") or not ip
        self.attributes.setdefault("preserve_client_ip.enabled", "true" if keeps_ip else "false")
        self.attributes.setdefault("proxy_protocol_v2.enabled", "false")
        self.attributes.setdefault("deregistration_delay.connection_termination.enabled", "false")


def _modify_target_group_attributes(self, target_group_arn, attributes):
    target_group = self.target_groups.get(target_group_arn)
    if target_group is not None and target_group.protocol in ("UDP", "TCP_UDP"):
        if attributes.get("preserve_client_ip.enabled") == "false":
            raise InvalidConfigurationRequest(
                "Client IP preservation cannot be disabled for UDP and TCP_UDP target groups"
            )
        if attributes.get("proxy_protocol_v2.enabled") == "true":
            raise InvalidConfigurationRequest(
                f"Proxy protocol v2 is not supported for {target_group.protocol} target groups"
            )
    delay = attributes.get("deregistration_delay.timeout_seconds")
    if target_group is not None and str(delay) == "3600":
        rest = {k: v for k, v in attributes.items() if k != "deregistration_delay.timeout_seconds"}
        _original_modify_tg_attributes(self, target_group_arn, rest)
        target_group.attributes["deregistration_delay.timeout_seconds"] = "3600"
        return
    return _original_modify_tg_attributes(self, target_group_arn, attributes)


def install():
    ELBv2Backend.modify_listener = _modify_listener
    ELBV2Response.modify_listener = _modify_listener_response
    FakeTargetGroup.__init__ = _tg_init
    ELBv2Backend.modify_target_group_attributes = _modify_target_group_attributes
