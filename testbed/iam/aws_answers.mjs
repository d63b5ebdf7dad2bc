// Where moto answers an ELBv2 call differently from AWS, and the difference matters to the
// project, the gate answers as AWS does (DESIGN.md section 10):
// - CreateListener on a port that already has a listener: AWS returns that listener when the
//   settings are the same (the call is idempotent, so an SDK retry after a lost answer makes no
//   second listener) and refuses with DuplicateListener otherwise; moto makes a second one.
// - CreateListener on an NLB with 50 listeners: AWS refuses with TooManyListeners (the quota
//   is not adjustable); moto has no quota.
// - DescribeLoadBalancers and DescribeTags take at most 20 ARNs (or names); moto takes any number.
// - EKS DescribeCluster: moto gives a made-up endpoint and 1,400 random characters as the CA
//   (not base64 PEM). A test that registers a cluster's answer (POST /_gate/eks-clusters) gets
//   the bed's kube-apiserver endpoint and CA in moto's answer instead, as AWS would give them.
// CreateListener calls are serialized per load balancer here, so two at once see each other.

import { memberList } from './authorizations.mjs';

/** Listeners per network load balancer, as AWS enforces it. */
export const LISTENERS_PER_NLB = 50;

/** ARNs one DescribeLoadBalancers or DescribeTags call may name. */
export const MAX_ARNS_PER_DESCRIBE = 20;

const XMLNS = 'http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/';

function error(code, message) {
  return {
    status: 400,
    body: `<ErrorResponse xmlns="${XMLNS}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${
      message}</Message></Error><RequestId>iam-gate</RequestId></ErrorResponse>`,
  };
}

export class AwsAnswers {
  constructor(lookups) {
    this.lookups = lookups;
    this.tails = new Map();
    /** `region/name` -> { endpoint, caData }: what AWS says of a cluster moto made up. */
    this.clusters = new Map();
  }

  /** Registers AWS's answer for EKS cluster `name` of `region`: its endpoint and CA data. */
  registerCluster({ region, name, endpoint, caData }) {
    for (const [field, value] of Object.entries({ region, name, endpoint, caData })) {
      if (typeof value !== 'string' || value === '') throw new Error(`a cluster answer needs ${field}`);
    }
    this.clusters.set(`${region}/${name}`, { endpoint, caData });
  }

  /** moto's answer to an EKS call, with a registered cluster's endpoint and CA in it. */
  async eks(call, send) {
    const answer = await send();
    const name = call.method === 'GET' ? call.path.match(/^\/clusters\/([^/]+)$/)?.[1] : undefined;
    const known = name && this.clusters.get(`${call.region}/${decodeURIComponent(name)}`);
    if (!known || answer.status !== 200) return answer;
    const json = JSON.parse(answer.body.toString('utf8'));
    json.cluster.endpoint = known.endpoint;
    json.cluster.certificateAuthority = { data: known.caData };
    const body = Buffer.from(JSON.stringify(json));
    return { ...answer, headers: { ...answer.headers, 'content-length': String(body.length) }, body };
  }

  /**
   * AWS's answer to an ELBv2 call where it differs from moto's, else what `send()` (moto)
   * answers. `send` resolves to {status, headers, body}.
   */
  async elbv2(call, send) {
    const p = call.params;
    if (call.operation === 'DescribeLoadBalancers' || call.operation === 'DescribeTags') {
      const lists = call.operation === 'DescribeTags' ? ['ResourceArns'] : ['LoadBalancerArns', 'Names'];
      const [list, count] = lists.map((l) => [l, memberList(p, l).length]).sort((a, b) => b[1] - a[1])[0];
      if (count > MAX_ARNS_PER_DESCRIBE) {
        return error('ValidationError', `1 validation error detected: Value at '${
          list.charAt(0).toLowerCase()}${list.slice(1)}' failed to satisfy constraint: Member must have length less than or equal to ${
          MAX_ARNS_PER_DESCRIBE} (got ${count})`);
      }
    }
    if (call.operation !== 'CreateListener' || !p.LoadBalancerArn) return send();
    return this.serialized(p.LoadBalancerArn, () => this.createListener(p, send));
  }

  async createListener(p, send) {
    const listeners = await this.lookups.listeners(p.LoadBalancerArn);
    if (listeners === null) return send(); // no such load balancer: moto says so
    const port = Number(p.Port);
    const targetGroup = p['DefaultActions.member.1.TargetGroupArn'];
    const same = listeners.find((l) => l.port === port);
    if (same) {
      if (same.protocol === p.Protocol && same.targetGroupArn === targetGroup) {
        return { status: 200, body: createListenerResponse(same, p.LoadBalancerArn) };
      }
      return error('DuplicateListener', `A listener already exists on port ${port} of load balancer '${
        p.LoadBalancerArn}' (${same.arn})`);
    }
    if (listeners.length >= LISTENERS_PER_NLB) {
      return error('TooManyListeners', `You've reached the limit on the number of listeners per load balancer (${
        LISTENERS_PER_NLB})`);
    }
    return send();
  }

  // One call at a time per key; a failed call does not stop the next.
  serialized(key, run) {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(run, run);
    const tail = result.catch(() => {});
    this.tails.set(key, tail);
    tail.then(() => { if (this.tails.get(key) === tail) this.tails.delete(key); });
    return result;
  }
}

function createListenerResponse(l, loadBalancerArn) {
  return `<CreateListenerResponse xmlns="${XMLNS}"><CreateListenerResult><Listeners><member>`
    + `<ListenerArn>${l.arn}</ListenerArn><LoadBalancerArn>${loadBalancerArn}</LoadBalancerArn>`
    + `<Port>${l.port}</Port><Protocol>${l.protocol}</Protocol><DefaultActions><member>`
    + `<Type>forward</Type><TargetGroupArn>${l.targetGroupArn}</TargetGroupArn></member>`
    + '</DefaultActions></member></Listeners></CreateListenerResult>'
    + '<ResponseMetadata><RequestId>iam-gate</RequestId></ResponseMetadata></CreateListenerResponse>';
}
