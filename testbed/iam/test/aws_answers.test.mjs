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
