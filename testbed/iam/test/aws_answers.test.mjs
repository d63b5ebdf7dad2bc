// AWS's answers where moto's differ: idempotent CreateListener, DuplicateListener,
// TooManyListeners, the 20-ARN limit of DescribeLoadBalancers and DescribeTags.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { AwsAnswers, LISTENERS_PER_NLB } from '../aws_answers.mjs';

const LB = 'arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/nlb/1';
const TG = 'arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/npp-a/1';

function setup(existing) {
  const made = [];
  const lookups = { listeners: async () => [...existing, ...made] };
  const answers = new AwsAnswers(lookups);
  const send = async () => {
    await new Promise((r) => setTimeout(r, 5));
    made.push({ arn: `${LB}/l${made.length}`, port: 30001, protocol: 'TCP', targetGroupArn: TG });
    return { status: 200, body: 'moto made one' };
  };
  return { answers, send, made };
}

const create = (port, protocol = 'TCP', tg = TG) => ({ service: 'elasticloadbalancing',
  operation: 'CreateListener', params: { LoadBalancerArn: LB, Port: String(port), Protocol: protocol,
    'DefaultActions.member.1.TargetGroupArn': tg } });

test('the same listener asked for twice at once is made once, and both get it', async () => {
  const { answers, send, made } = setup([]);
  const [a, b] = await Promise.all([answers.elbv2(create(30001), send), answers.elbv2(create(30001), send)]);
  assert.equal(made.length, 1);
  assert.equal(a.status, 200);
  assert.equal(b.status, 200);
  assert.match(b.body, /<ListenerArn>.*\/l0<\/ListenerArn>/);
});

test('another listener on the port is a DuplicateListener', async () => {
  const { answers, send, made } = setup([{ arn: `${LB}/theirs`, port: 30001, protocol: 'UDP', targetGroupArn: TG }]);
  const r = await answers.elbv2(create(30001), send);
  assert.equal(r.status, 400);
  assert.match(r.body, /<Code>DuplicateListener<\/Code>/);
  assert.equal(made.length, 0);
});

test('a full NLB answers TooManyListeners', async () => {
  const full = Array.from({ length: LISTENERS_PER_NLB }, (_, i) => ({ arn: `${LB}/x${i}`, port: 1000 + i, protocol: 'TCP', targetGroupArn: TG }));
  const { answers, send } = setup(full);
  const r = await answers.elbv2(create(30001), send);
  assert.match(r.body, /<Code>TooManyListeners<\/Code>/);
});

test('more than 20 ARNs in one describe is a ValidationError', async () => {
  const { answers, send } = setup([]);
  const params = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`LoadBalancerArns.member.${i + 1}`, `${LB}${i}`]));
  const r = await answers.elbv2({ service: 'elasticloadbalancing', operation: 'DescribeLoadBalancers', params }, send);
  assert.match(r.body, /<Code>ValidationError<\/Code>/);
  delete params['LoadBalancerArns.member.21'];
  assert.equal((await answers.elbv2({ service: 'elasticloadbalancing', operation: 'DescribeLoadBalancers', params }, send)).status, 200);
});

test('DescribeLoadBalancers takes at most 20 names too', async () => {
  const answers = new AwsAnswers({});
  const byNames = (n) => ({ service: 'elasticloadbalancing', operation: 'DescribeLoadBalancers',
    params: Object.fromEntries(Array.from({ length: n }, (_, i) => [`Names.member.${i + 1}`, `nlb-${i}`])) });
  const moto = async () => ({ status: 200, body: 'moto' });
  assert.equal((await answers.elbv2(byNames(20), moto)).body, 'moto');
  const refused = await answers.elbv2(byNames(21), moto);
  assert.equal(refused.status, 400);
  assert.match(refused.body, /ValidationError.*names.*\(got 21\)/);
});

test('DescribeCluster of a registered cluster answers its endpoint and CA; others as moto does', async () => {
  const answers = new AwsAnswers({});
  answers.registerCluster({ region: 'us-west-2', name: 'bed-1', endpoint: 'https://127.0.0.1:6443', caData: 'Q0E=' });
  const moto = async () => ({ status: 200, headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify({ cluster: { name: 'x', endpoint: 'https://made.up', certificateAuthority: { data: 'random' }, status: 'ACTIVE' } })) });
  const describe = (name, region = 'us-west-2') => ({ service: 'eks', region, method: 'GET', path: `/clusters/${name}` });
  const known = JSON.parse((await answers.eks(describe('bed-1'), moto)).body);
  assert.equal(known.cluster.endpoint, 'https://127.0.0.1:6443');
  assert.deepEqual(known.cluster.certificateAuthority, { data: 'Q0E=' });
  assert.equal(known.cluster.status, 'ACTIVE');
  for (const other of [describe('bed-2'), describe('bed-1', 'eu-west-1')]) {
    assert.equal(JSON.parse((await answers.eks(other, moto)).body).cluster.endpoint, 'https://made.up');
  }
  assert.throws(() => answers.registerCluster({ region: 'us-west-2', name: 'x' }), /needs endpoint/);
});
