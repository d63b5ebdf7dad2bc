"""The ELBv2 shims answer as AWS does: TLS listeners changed in place, network target group
attributes listed with AWS's defaults and UDP's limits enforced.

Run with the moto venv's python: python -m unittest discover -s testbed/python
"""

import unittest

import boto3
from moto import mock_aws

import elbv2_as_aws

elbv2_as_aws.install()

REGION = "us-west-2"


class ElbV2AsAws(unittest.TestCase):
    def setUp(self):
        self.mock = mock_aws()
        self.mock.start()
        self.elb = boto3.client("elbv2", region_name=REGION)
        self.acm = boto3.client("acm", region_name=REGION)
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
        self.nlb = self.elb.create_load_balancer(Name="n", Type="network", Subnets=[subnet])[
            "LoadBalancers"
        ][0]["LoadBalancerArn"]
        self.vpc = vpc

    def tearDown(self):
        self.mock.stop()

    def group(self, protocol):
        return self.elb.create_target_group(
            Name=f"g-{protocol.lower().replace('_', '-')}",
            Protocol=protocol,
            Port=7777,
            VpcId=self.vpc,
            TargetType="ip",
        )["TargetGroups"][0]["TargetGroupArn"]

    def cert(self, domain):
        return self.acm.request_certificate(DomainName=domain)["CertificateArn"]

    def test_a_tcp_listener_becomes_tls_and_back_in_place(self):
        tg = self.group("TCP")
        forward = [{"Type": "forward", "TargetGroupArn": tg}]
        arn = self.elb.create_listener(
            LoadBalancerArn=self.nlb, Protocol="TCP", Port=443, DefaultActions=forward
        )["Listeners"][0]["ListenerArn"]
        first, second = self.cert("a.example.com"), self.cert("b.example.com")
        self.elb.modify_listener(
            ListenerArn=arn,
            Protocol="TLS",
            Certificates=[{"CertificateArn": first}],
            SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
            AlpnPolicy=["HTTP2Preferred"],
            DefaultActions=forward,
        )
        self.elb.add_listener_certificates(
            ListenerArn=arn, Certificates=[{"CertificateArn": second}]
        )
        self.elb.modify_listener(ListenerArn=arn, Certificates=[{"CertificateArn": second}])
        listener = self.elb.describe_listeners(ListenerArns=[arn])["Listeners"][0]
        self.assertEqual(listener["Protocol"], "TLS")
        self.assertEqual(listener["Certificates"][0]["CertificateArn"], second)
        self.assertEqual(listener["AlpnPolicy"], ["HTTP2Preferred"])
        self.assertEqual(listener["Port"], 443)
        with self.assertRaises(self.elb.exceptions.ClientError):
            self.elb.modify_listener(ListenerArn=arn, SslPolicy="ELBSecurityPolicy-Nope")
        self.elb.modify_listener(ListenerArn=arn, Protocol="TCP")
        listener = self.elb.describe_listeners(ListenerArns=[arn])["Listeners"][0]
        self.assertEqual(listener["Protocol"], "TCP")
        self.assertFalse(listener.get("Certificates"))

    def test_network_groups_list_aws_defaults_and_udp_limits_hold(self):
        def attributes(arn):
            found = self.elb.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
            return {a["Key"]: a["Value"] for a in found}

        tcp, udp = self.group("TCP"), self.group("UDP")
        self.assertEqual(attributes(tcp)["preserve_client_ip.enabled"], "false")
        self.assertEqual(attributes(udp)["preserve_client_ip.enabled"], "true")
        self.assertEqual(attributes(tcp)["proxy_protocol_v2.enabled"], "false")
        for key, value in [
            ("preserve_client_ip.enabled", "false"),
            ("proxy_protocol_v2.enabled", "true"),
        ]:
            with self.assertRaises(self.elb.exceptions.ClientError):
                self.elb.modify_target_group_attributes(
                    TargetGroupArn=udp, Attributes=[{"Key": key, "Value": value}]
                )
        self.elb.modify_target_group_attributes(
            TargetGroupArn=tcp,
            Attributes=[
                {"Key": "proxy_protocol_v2.enabled", "Value": "true"},
                {"Key": "deregistration_delay.timeout_seconds", "Value": "3600"},
            ],
        )
        self.assertEqual(attributes(tcp)["proxy_protocol_v2.enabled"], "true")
        self.assertEqual(attributes(tcp)["deregistration_delay.timeout_seconds"], "3600")


if __name__ == "__main__":
    unittest.main()
