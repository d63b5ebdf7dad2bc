// What AWS knows about a resource, read from moto with the bed's admin key: a resource's tags
// (for aws:ResourceTag conditions) and a load balancer's type (for /net/ ARNs).

import http from 'node:http';

import { ADMIN_ACCESS_KEY } from './request.mjs';

export class MotoLookups {
  constructor(upstream, agent) {
    this.upstream = upstream;
    this.agent = agent;
    this.types = new Map();
  }

  /** Tags of an ELBv2 resource; null when it does not exist. */
  async tags(arn) {
    // moto answers DescribeTags of a deleted listener or target group with the tags it had
    // (or none) where AWS answers NotFound: whether it exists is asked of its Describe.
    const [xml, exists] = await Promise.all([
      this.elbv2(arn, { Action: 'DescribeTags', 'ResourceArns.member.1': arn }),
      this.exists(arn),
    ]);
    if (xml === null || !exists) return null;
    const tags = {};
    const block = xml.match(/<Tags>([\s\S]*?)<\/Tags>/)?.[1] ?? '';
    for (const m of block.matchAll(/<Key>([\s\S]*?)<\/Key>\s*<Value>([\s\S]*?)<\/Value>/g)) {
      tags[unescapeXml(m[1])] = unescapeXml(m[2]);
    }
    return tags;
  }

  /** Whether a listener, target group or load balancer exists (true for other ARNs). */
  async exists(arn) {
    const kind = (arn.split(':')[5] ?? '').split('/')[0];
    const params = {
      listener: { Action: 'DescribeListeners', 'ListenerArns.member.1': arn },
      targetgroup: { Action: 'DescribeTargetGroups', 'TargetGroupArns.member.1': arn },
      loadbalancer: { Action: 'DescribeLoadBalancers', 'LoadBalancerArns.member.1': arn },
    }[kind];
    return params === undefined || (await this.elbv2(arn, params)) !== null;
  }

  /** `network`, `application`, ...; null when there is no such load balancer. */
  async loadBalancerType(arn) {
    if (this.types.has(arn)) return this.types.get(arn);
    const xml = await this.elbv2(arn,
      { Action: 'DescribeLoadBalancers', 'LoadBalancerArns.member.1': arn });
    const type = xml?.match(/<Type>([a-z]+)<\/Type>/)?.[1] ?? null;
    if (type !== null) this.types.set(arn, type);
    return type;
  }

  /** The listeners of a load balancer ({arn, port, protocol, targetGroupArn}); null when
   * there is no such load balancer. moto answers with every listener on one page. */
  async listeners(lbArn) {
    const xml = await this.elbv2(lbArn, { Action: 'DescribeListeners', LoadBalancerArn: lbArn });
    if (xml === null) return null;
    return xml.split('<member><ListenerArn>').slice(1).map((chunk) => ({
      arn: unescapeXml(chunk.slice(0, chunk.indexOf('</ListenerArn>'))),
      port: Number(chunk.match(/<Port>(\d+)<\/Port>/)?.[1]),
      protocol: chunk.match(/<Protocol>([A-Z_]+)<\/Protocol>/)?.[1],
      targetGroupArn: unescapeXml(chunk.match(/<TargetGroupArn>([^<]*)<\/TargetGroupArn>/)?.[1] ?? ''),
    }));
  }

  // null when moto answers with an error (the resource is not there).
  elbv2(arn, params) {
    const region = arn.split(':')[3] || 'us-east-1';
    const body = new URLSearchParams({ Version: '2015-12-01', ...params }).toString();
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: this.upstream.hostname, port: this.upstream.port, method: 'POST', path: '/',
        agent: this.agent,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `AWS4-HMAC-SHA256 Credential=${ADMIN_ACCESS_KEY}/20260101/${region}/elasticloadbalancing/aws4_request, SignedHeaders=host, Signature=0`,
        },
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve(res.statusCode === 200 ? Buffer.concat(chunks).toString('utf8') : null));
      });
      req.on('error', reject);
      req.end(body);
    });
  }
}

function unescapeXml(text) {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}
