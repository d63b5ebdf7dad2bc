// The pools' JSON template.yaml puts in its SSM parameter (the functions read it at start,
// POOLS_PARAMETER), resolved for a few stacks' parameters: it must be JSON, with the default
// pool's fields as the parameters say (the functions refuse to start on a bad one, so a
// template slip would only show at deploy time).

import test from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { readTemplate, resolve } from '../template.mjs';

const TEMPLATE = fileURLToPath(new URL('../../../template.yaml', import.meta.url));
const template = readTemplate(TEMPLATE);
const NLB = 'arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/net/games-a/0123';

const pools = (parameters) => {
  const stack = { parameters: { ClusterName: 'c', VpcId: 'vpc-1', ...parameters },
    accountId: '123456789012', region: 'us-west-2', stackName: 's', refs: {}, attributes: {} };
  const text = resolve(template.Resources.PoolsParameter.Properties.Value, stack, template);
  return JSON.parse(text);
};

test('the default pool: its NLBs, range, quota, balanced placement and no blocked ports', () => {
  const { default: pool, ...others } = pools({ PoolNlbArns: [NLB] });
  assert.deepEqual(others, {});
  assert.deepEqual(pool, { nlbArns: [NLB], ports: '30000-32767', listenerQuota: 50,
    placement: 'balanced', crossZone: true, blockedPorts: [] });
});

test('PoolCrossZone reaches the default pool (target groups cross-zone unless it is false)', () => {
  assert.equal(pools({ PoolNlbArns: [NLB], PoolCrossZone: 'false' }).default.crossZone, false);
});

test('PoolPlacement and PoolBlockedPorts reach the default pool', () => {
  const { default: pool } = pools({ PoolNlbArns: [NLB], PoolPlacement: 'pack',
    PoolBlockedPorts: ['30080', '30400-30499'] });
  assert.equal(pool.placement, 'pack');
  assert.deepEqual(pool.blockedPorts, ['30080', '30400-30499']);
});

test('a managed default pool and ExtraPools stay JSON beside the new fields', () => {
  const all = pools({ PoolNlbArns: [''], ManagedNlbMax: '4', ManagedSubnets: ['subnet-a', 'subnet-b'],
    ExtraPools: '"eu":{"nlbArns":["arn:x"],"ports":"7000-7099","listenerQuota":50,"placement":"spread"}' });
  assert.deepEqual(all.default.nlbArns, []);
  assert.equal(all.default.managed.max, 4);
  assert.deepEqual(all.default.managed.subnets, ['subnet-a', 'subnet-b']);
  assert.equal(all.eu.placement, 'spread');
});

test('PoolNlbNames follow PoolNlbArns in the default pool\'s nlbArns, alone or together', () => {
  assert.deepEqual(pools({ PoolNlbArns: [NLB], PoolNlbNames: ['games-1', 'games-2'] }).default.nlbArns,
    [NLB, 'games-1', 'games-2']);
  assert.deepEqual(pools({ PoolNlbArns: [''], PoolNlbNames: ['games-1'] }).default.nlbArns, ['games-1']);
  assert.deepEqual(pools({ PoolNlbArns: [NLB], PoolNlbNames: [''] }).default.nlbArns, [NLB]);
});

test('the functions are told the parameter\'s name, not the pools', () => {
  const vars = template.Globals.Function.Environment.Variables;
  assert.deepEqual(vars.POOLS_PARAMETER, { Ref: 'PoolsParameter' });
  for (const gone of ['POOLS', 'EKS_ENDPOINT', 'EKS_CA_DATA']) assert.equal(vars[gone], undefined, gone);
});
