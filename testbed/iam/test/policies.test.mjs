// The template's policies, resolved and evaluated the way the gate does, on requests the
// functions make and on requests a compromised function could make. No server is needed:
// the lookups moto would answer are given here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { authorizationsFor, NotModelled } from '../authorizations.mjs';
import { evaluate } from '../evaluate.mjs';
import { ROLE_OF, readTemplate, rolePolicies } from '../template.mjs';

const TEMPLATE = fileURLToPath(new URL('../../../template.yaml', import.meta.url));
const REGION = 'us-west-2';
const ACCOUNT = '123456789012';
const ELB = `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}`;
const POOL_NLB = `${ELB}:loadbalancer/app/pool-a/1111`;
const OTHER_NLB = `${ELB}:loadbalancer/app/someone-else/2222`;
const OURS = { 'nlb-port-pool/managed': 'true', 'nlb-port-pool/cluster': 'bed' };

const resources = {
  [`${ELB}:listener/app/pool-a/1111/aaaa`]: OURS,
  [`${ELB}:listener/app/pool-a/1111/ffff`]: {},
  [`${ELB}:targetgroup/npp-ours/1`]: OURS,
  [`${ELB}:targetgroup/npp-theirs/2`]: { ...OURS, 'nlb-port-pool/cluster': 'other' },
};
const lookups = {
  tags: async (arn) => resources[arn] ?? null,
  loadBalancerType: async () => 'network',
};

const template = readTemplate(TEMPLATE);
const stack = {
  parameters: {
    ClusterName: 'bed', PoolNlbArns: [POOL_NLB.replace('/app/', '/net/')], ExtraPoolNlbArns: [''],
    ClusterEndpoint: 'https://127.0.0.1', ClusterCertificateAuthority: 'Y2E=', VpcId: 'vpc-1',
    OidcProviderUrl: 'oidc.example/id/1',
  },
  accountId: ACCOUNT, region: REGION, stackName: 'npp', refs: { ClaimsTable: 'claims' },
  attributes: {
    'ClaimsTable.Arn': `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/claims`,
    'EventBus.Arn': `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/npp`,
    'DeadLetterQueue.Arn': `arn:aws:sqs:${REGION}:${ACCOUNT}:npp-dlq`,
  },
};

async function decide(fn, call) {
  const role = ROLE_OF[fn];
  const policies = rolePolicies(template, role, stack);
  const full = { region: REGION, accountId: ACCOUNT, ...call };
  const out = [];
  for (const authz of await authorizationsFor(full, lookups)) {
    out.push({ authz, ...await evaluate(policies, `arn:aws:iam::${ACCOUNT}:role/${role}`, authz, ACCOUNT) });
  }
  return out;
}

const elb = (operation, params) => ({ service: 'elasticloadbalancing', protocol: 'query', operation, params });
const ddb = (operation, json) => ({ service: 'dynamodb', protocol: 'json', operation, json });
const tags = (t) => Object.fromEntries(Object.entries(t).flatMap(([k, v], i) => [
  [`Tags.member.${i + 1}.Key`, k], [`Tags.member.${i + 1}.Value`, v]]));
const projectTags = tags({ ...OURS, 'nlb-port-pool/namespace': 'ns' });

async function allowed(fn, call) {
  const results = await decide(fn, call);
  for (const r of results) assert.ok(r.allowed, `${fn}: ${r.authz.action} on ${r.authz.resource}: ${r.missing}`);
  return results;
}

async function denied(fn, call) {
  const results = await decide(fn, call);
  const refused = results.filter((r) => !r.allowed);
  assert.ok(refused.length > 0, `${fn}: ${call.operation} was allowed`);
  return refused;
}

test('allocate creates a tagged target group and a tagged listener on a pool NLB', async () => {
  const tg = await allowed('allocate', elb('CreateTargetGroup', { Name: 'npp-x', ...projectTags }));
  assert.deepEqual(tg.map((r) => r.authz.action),
    ['elasticloadbalancing:CreateTargetGroup', 'elasticloadbalancing:AddTags']);
  const listener = await allowed('allocate', elb('CreateListener', { LoadBalancerArn: POOL_NLB, ...projectTags }));
  assert.equal(listener[0].authz.resource, POOL_NLB.replace('/app/', '/net/'), 'judged as a network LB');
});

test('the sweep reads its cursor (GetItem) and claims items', async () => {
  await allowed('sweep', ddb('GetItem', { TableName: 'claims' }));
  await allowed('sweep', ddb('Query', { TableName: 'claims' }));
});

test('a claim transaction is authorized per item', async () => {
  const call = ddb('TransactWriteItems', { TransactItems: [
    { Put: { TableName: 'claims' } }, { Update: { TableName: 'claims' } }] });
  const results = await allowed('allocate', call);
  assert.deepEqual(results.map((r) => r.authz.action), ['dynamodb:PutItem', 'dynamodb:UpdateItem']);
  await allowed('sync-targets', call); // per-pod mode: endpoint changes allocate pods
  await denied('release', ddb('TransactWriteItems', { TransactItems: [{ Put: { TableName: 'claims' } }] }));
});

test('only a claim key\'s taker tags an existing listener: one of the project\'s, as its cluster\'s', async () => {
  const ours = `${ELB}:listener/app/pool-a/1111/aaaa`;
  const foreign = `${ELB}:listener/app/pool-a/1111/ffff`;
  for (const fn of ['release', 'sync-targets', 'reachable']) { // they never allocate a keyed Service
    for (const arn of [foreign, ours]) {
      await denied(fn, elb('AddTags', { 'ResourceArns.member.1': arn, ...projectTags }));
    }
  }
  for (const fn of ['allocate', 'sweep']) {
    await allowed(fn, elb('AddTags', { 'ResourceArns.member.1': ours, ...projectTags }));
    await denied(fn, elb('AddTags', { 'ResourceArns.member.1': foreign, ...projectTags }));
    // Never as another cluster's, never with keys of its own choosing.
    const asOther = tags({ ...OURS, 'nlb-port-pool/cluster': 'other' });
    await denied(fn, elb('AddTags', { 'ResourceArns.member.1': ours, ...asOther }));
    await denied(fn, elb('AddTags', { 'ResourceArns.member.1': ours, ...tags({ ...OURS, owner: 'me' }) }));
  }
});

test('a foreign listener may be neither modified nor deleted', async () => {
  const foreign = `${ELB}:listener/app/pool-a/1111/ffff`;
  for (const fn of ['allocate', 'sweep', 'release']) {
    await denied(fn, elb('DeleteListener', { ListenerArn: foreign }));
    await denied(fn, elb('ModifyListener', { ListenerArn: foreign }));
  }
  await allowed('release', elb('DeleteListener', { ListenerArn: `${ELB}:listener/app/pool-a/1111/aaaa` }));
});

test('no listener on an NLB outside the pools, and none untagged', async () => {
  const [refused] = await denied('allocate', elb('CreateListener', { LoadBalancerArn: OTHER_NLB, ...projectTags }));
  assert.match(refused.missing, /no statement allows|fails/);
  await denied('allocate', elb('CreateListener', { LoadBalancerArn: POOL_NLB }));
  await denied('release', elb('CreateListener', { LoadBalancerArn: POOL_NLB, ...projectTags }));
});

test('a target group of another cluster is out of reach', async () => {
  const theirs = `${ELB}:targetgroup/npp-theirs/2`;
  for (const op of ['RegisterTargets', 'DeregisterTargets', 'DeleteTargetGroup', 'ModifyTargetGroup']) {
    await denied('allocate', elb(op, { TargetGroupArn: theirs }));
  }
  await denied('sync-targets', elb('RegisterTargets', { TargetGroupArn: theirs }));
  await allowed('sync-targets', elb('RegisterTargets', { TargetGroupArn: `${ELB}:targetgroup/npp-ours/1` }));
  await denied('allocate', elb('CreateTargetGroup', { Name: 'npp-y', ...tags({ ...OURS, 'nlb-port-pool/cluster': 'other' }) }));
});

test('the forwarder puts its own events on its own bus only', async () => {
  const put = (bus, source, detailType = 'Service Changed') => ({ service: 'events', protocol: 'json',
    operation: 'PutEvents', json: { Entries: [{ EventBusName: bus, Source: source, DetailType: detailType }] } });
  await allowed('forwarder', put('npp', 'nlb-port-pool.forwarder'));
  await denied('forwarder', put('someone-elses-bus', 'nlb-port-pool.forwarder'));
  await denied('forwarder', put('default', 'nlb-port-pool.forwarder'));
  await denied('forwarder', put('npp', 'aws.events', 'Scheduled Event'));
  await denied('allocate', put('npp', 'nlb-port-pool.forwarder'));
});

test('a denial names what is missing', async () => {
  const [refused] = await denied('allocate', elb('DeleteListener', { ListenerArn: `${ELB}:listener/app/pool-a/1111/ffff` }));
  assert.match(refused.missing, /aws:ResourceTag\/nlb-port-pool\/managed/);
  assert.match(refused.missing, /request: absent/);
});

test('an operation the gate does not model is refused', async () => {
  await assert.rejects(decide('allocate', elb('SetSubnets', {})), NotModelled);
  await assert.rejects(decide('allocate', { service: 'sqs', protocol: 'json', operation: 'SendMessage', json: {} }), NotModelled);
});

test('listener options: own target groups and listeners only, certificates of this account', async () => {
  const ours = `${ELB}:targetgroup/npp-ours/1`;
  const theirs = `${ELB}:targetgroup/npp-theirs/2`;
  await allowed('allocate', elb('ModifyTargetGroupAttributes', { TargetGroupArn: ours }));
  await denied('allocate', elb('ModifyTargetGroupAttributes', { TargetGroupArn: theirs }));
  await denied('release', elb('ModifyTargetGroupAttributes', { TargetGroupArn: ours }));
  const own = `${ELB}:listener/app/pool-a/1111/aaaa`;
  const foreign = `${ELB}:listener/app/pool-a/1111/ffff`;
  for (const op of ['AddListenerCertificates', 'RemoveListenerCertificates']) {
    await allowed('sweep', elb(op, { ListenerArn: own }));
    await denied('allocate', elb(op, { ListenerArn: foreign }));
  }
  for (const op of ['DescribeTargetGroupAttributes', 'DescribeListenerCertificates', 'DescribeSSLPolicies']) {
    await allowed('reachable', elb(op, {}));
  }
  const describe = (arn) => ({ service: 'acm', protocol: 'json', operation: 'DescribeCertificate',
    json: { CertificateArn: arn } });
  await allowed('allocate', describe(`arn:aws:acm:${REGION}:${ACCOUNT}:certificate/abc`));
  await denied('allocate', describe(`arn:aws:acm:${REGION}:999999999999:certificate/abc`));
  await denied('allocate', describe(`arn:aws:acm:eu-west-1:${ACCOUNT}:certificate/abc`));
  await denied('release', describe(`arn:aws:acm:${REGION}:${ACCOUNT}:certificate/abc`));
  await assert.rejects(decide('allocate', { service: 'acm', protocol: 'json',
    operation: 'ListCertificates', json: {} }), NotModelled);
});

test('the operator role reads the claims, the load balancers and the dead letters, and changes nothing', async () => {
  const sqs = (operation, json) => ({ service: 'sqs', protocol: 'json', operation, json });
  const dlq = `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/npp-dlq`;
  for (const call of [
    ddb('Query', { TableName: 'claims' }),
    ddb('BatchGetItem', { RequestItems: { claims: {} } }),
    elb('DescribeLoadBalancers', {}), elb('DescribeListeners', {}), elb('DescribeTags', {}),
    elb('DescribeTargetGroups', {}), elb('DescribeTargetHealth', {}),
    sqs('GetQueueAttributes', { QueueUrl: dlq }),
  ]) await allowed('operator', call);
  for (const call of [
    // Nothing it reads needs GetItem (the identity items and a key's item are queried).
    ddb('GetItem', { TableName: 'claims' }),
    ddb('PutItem', { TableName: 'claims' }), ddb('DeleteItem', { TableName: 'claims' }),
    ddb('Query', { TableName: 'another-table' }),
    elb('DeleteListener', { ListenerArn: `${ELB}:listener/app/pool-a/1111/aaaa` }),
    elb('DeregisterTargets', { TargetGroupArn: `${ELB}:targetgroup/npp-ours/1` }),
    sqs('GetQueueAttributes', { QueueUrl: `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/other` }),
  ]) await denied('operator', call);
  await assert.rejects(decide('operator', sqs('ReceiveMessage', { QueueUrl: dlq })), NotModelled);
});

test('a call on a resource that is gone is judged with no tags: AccessDenied where a tag grants it, as on AWS', async () => {
  // GIVEN a listener and a target group of ours that another run just deleted (no tags to read)
  const goneListener = `${ELB}:listener/app/pool-a/1111/dead`;
  const goneGroup = `${ELB}:targetgroup/npp-gone/9`;

  // WHEN release deletes them again
  // THEN AWS evaluates aws:ResourceTag against nothing: refused, not NotFound
  for (const call of [
    elb('DeleteListener', { ListenerArn: goneListener }),
    elb('DeleteTargetGroup', { TargetGroupArn: goneGroup }),
    elb('DeregisterTargets', { TargetGroupArn: goneGroup, 'Targets.member.1.Id': '10.0.0.1' }),
  ]) {
    const [refused] = await denied('release', call);
    assert.equal(refused.authz.context['aws:ResourceTag/nlb-port-pool/managed'], undefined);
  }
  // AND a listener on a pool NLB that is gone is judged on its ARN in AWS's form, which the
  // pool's grant names: allowed, so moto's LoadBalancerNotFound answers, as AWS's would
  const none = { tags: async () => null, loadBalancerType: async () => null };
  const call = { region: REGION, accountId: ACCOUNT,
    ...elb('CreateListener', { LoadBalancerArn: POOL_NLB, ...projectTags }) };
  const [onNlb] = await authorizationsFor(call, none);
  assert.equal(onNlb.resource, POOL_NLB.replace('/app/', '/net/'));
  assert.ok(onNlb.missing);
  const policies = rolePolicies(template, ROLE_OF.allocate, stack);
  const verdict = await evaluate(policies, `arn:aws:iam::${ACCOUNT}:role/AllocateRole`, onNlb, ACCOUNT);
  assert.ok(verdict.allowed, verdict.missing);
});
