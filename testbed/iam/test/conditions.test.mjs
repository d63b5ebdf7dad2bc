// Every statement of template.yaml's roles that carries a Condition, tested both ways: a
// request that statement alone allows (and the role allows), and one that matches its action
// and resource but fails its condition (and the role refuses). A conditioned statement added
// to the template without its two cases fails here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { evaluate } from '../evaluate.mjs';
import { readTemplate, rolePolicies } from '../template.mjs';

const ACCOUNT = '123456789012';
const REGION = 'us-west-2';
const ELB = `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}`;
const POOL_NLB = `${ELB}:loadbalancer/net/pool-a/1111`;
const MADE_NLB = `${ELB}:loadbalancer/net/npp-default-0a1b2c-1/2222`;
const TG = `${ELB}:targetgroup/npp-0a1b2c3d/3333`;
const LISTENER = `${ELB}:listener/net/pool-a/1111/4444`;
const BUS = `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/npp`;

const template = readTemplate(fileURLToPath(new URL('../../../template.yaml', import.meta.url)));
const stack = {
  parameters: { ClusterName: 'bed', PoolNlbArns: [POOL_NLB], ExtraPoolNlbArns: [''], VpcId: 'vpc-1',
    OidcProviderUrl: 'oidc.example/id/1',
    ManagedNlbMax: '2' },
  accountId: ACCOUNT, region: REGION, stackName: 'npp', refs: { ClaimsTable: 'claims' },
  attributes: { 'ClaimsTable.Arn': `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/claims`, 'EventBus.Arn': BUS,
    'DeadLetterQueue.Arn': `arn:aws:sqs:${REGION}:${ACCOUNT}:npp-dlq` },
};

/** The project's tags as a request carries them (aws:RequestTag/*, aws:TagKeys). */
const requestTags = (cluster = 'bed') => ({
  'aws:RequestTag/nlb-port-pool/managed': 'true', 'aws:RequestTag/nlb-port-pool/cluster': cluster,
  'aws:TagKeys': ['nlb-port-pool/managed', 'nlb-port-pool/cluster'],
});
/** A resource's tags as AWS gives them (aws:ResourceTag/*). */
const resourceTags = (cluster = 'bed') => ({
  'aws:ResourceTag/nlb-port-pool/managed': 'true', 'aws:ResourceTag/nlb-port-pool/cluster': cluster,
});
const authz = (action, resource, context) => ({ action: `elasticloadbalancing:${action}`, resource, context });
const events = (source, detailType) => ({ action: 'events:PutEvents', resource: BUS,
  context: { 'events:source': source, 'events:detail-type': detailType } });

/** statement -> [role, allowed request, denied request (its condition fails)]. */
const CASES = {
  'AllocatorPolicy:CreateTaggedTargetGroups': ['AllocateRole',
    authz('CreateTargetGroup', TG, requestTags()),
    authz('CreateTargetGroup', TG, requestTags('another-cluster'))],
  'AllocatorPolicy:TagTargetGroupsAtCreation': ['AllocateRole',
    authz('AddTags', TG, { ...requestTags(), 'elasticloadbalancing:CreateAction': 'CreateTargetGroup' }),
    authz('AddTags', TG, requestTags())],
  'pool-nlb-listeners:CreateListenersOnPoolNlbs': ['AllocateRole',
    authz('CreateListener', POOL_NLB, requestTags()),
    authz('CreateListener', POOL_NLB, { 'aws:RequestTag/nlb-port-pool/managed': 'true', 'aws:TagKeys': ['nlb-port-pool/managed'] })],
  'AllocatorPolicy:CreateListenersOnManagedNlbs': ['AllocateRole',
    authz('CreateListener', MADE_NLB, { ...resourceTags(), ...requestTags() }),
    authz('CreateListener', MADE_NLB, { ...resourceTags('another-cluster'), ...requestTags() })],
  'KeyTakeOverPolicy:TakeOverListeners': ['AllocateRole',
    authz('AddTags', LISTENER, { ...resourceTags(), ...requestTags() }),
    authz('AddTags', LISTENER, { ...resourceTags('another-cluster'), ...requestTags() })],
  'AllocatorPolicy:SignalThePoolAndReachabilityFunctions': ['AllocateRole',
    events('nlb-port-pool.functions', 'Pool Low'),
    events('nlb-port-pool.functions', 'Service Changed')],
  'AllocatorPolicy:TagListenersAtCreation': ['AllocateRole',
    authz('AddTags', LISTENER, { ...requestTags(), 'elasticloadbalancing:CreateAction': 'CreateListener' }),
    authz('AddTags', LISTENER, { ...requestTags(), 'elasticloadbalancing:CreateAction': 'CreateTargetGroup' })],
  'AllocatorPolicy:ManageOwnTargetGroups': ['AllocateRole',
    authz('RegisterTargets', TG, resourceTags()),
    authz('RegisterTargets', TG, {})],
  'AllocatorPolicy:ManageOwnListeners': ['AllocateRole',
    authz('ModifyListener', LISTENER, resourceTags()),
    authz('ModifyListener', LISTENER, resourceTags('another-cluster'))],
  'release:DeleteOwnTargetGroups': ['ReleaseRole',
    authz('DeleteTargetGroup', TG, resourceTags()),
    authz('DeleteTargetGroup', TG, {})],
  'release:DeleteOwnListeners': ['ReleaseRole',
    authz('DeleteListener', LISTENER, resourceTags()),
    authz('DeleteListener', LISTENER, resourceTags('another-cluster'))],
  'managed-nlbs:CreateTaggedNlbs': ['PoolRole',
    authz('CreateLoadBalancer', MADE_NLB, requestTags()),
    authz('CreateLoadBalancer', MADE_NLB, {})],
  'managed-nlbs:TagNlbsAtCreation': ['PoolRole',
    authz('AddTags', MADE_NLB, { ...requestTags(), 'elasticloadbalancing:CreateAction': 'CreateLoadBalancer' }),
    authz('AddTags', MADE_NLB, requestTags())],
  'managed-nlbs:ManageOwnNlbs': ['PoolRole',
    authz('DeleteLoadBalancer', MADE_NLB, resourceTags()),
    authz('DeleteLoadBalancer', MADE_NLB, {})],
  'put-events:PutOwnEvents': ['ForwarderRole',
    events('nlb-port-pool.forwarder', 'Service Deleted'),
    events('aws.events', 'Scheduled Event')],
};

/** Every conditioned statement of the roles: label -> { role, statement }. */
function conditionedStatements() {
  const found = new Map();
  for (const role of ['AllocateRole', 'ReleaseRole', 'SyncTargetsRole', 'SweepRole', 'PoolRole',
    'ReachableRole', 'ForwarderRole', 'OperatorRole']) {
    for (const { name, policy } of rolePolicies(template, role, stack)) {
      for (const statement of [policy.Statement].flat()) {
        if (!statement.Condition) continue;
        const label = `${name.split('/').pop()}:${statement.Sid}`;
        if (!found.has(label)) found.set(label, { role, statement });
      }
    }
  }
  return found;
}

const principal = (role) => `arn:aws:iam::${ACCOUNT}:role/npp-${role}`;
const alone = (statement) => [{ name: 's', policy: { Version: '2012-10-17', Statement: [statement] } }];

test('every conditioned statement of the template has an allowed and a denied case', () => {
  const statements = [...conditionedStatements().keys()].sort();
  assert.deepEqual(statements, Object.keys(CASES).sort());
});

for (const [label, [role, allowedRequest, deniedRequest]] of Object.entries(CASES)) {
  test(`${label}: allows what it names, refuses what fails its condition`, async () => {
    const { statement } = conditionedStatements().get(label);
    const policies = rolePolicies(template, role, stack);
    // The allowed request: by this statement alone, and by the role.
    const byItself = await evaluate(alone(statement), principal(role), allowedRequest, ACCOUNT);
    assert.ok(byItself.allowed, `${label} alone: ${byItself.missing}`);
    assert.ok((await evaluate(policies, principal(role), allowedRequest, ACCOUNT)).allowed);
    // The denied request matches the statement's action and resource, and fails its condition.
    const { Condition: _, ...bare } = statement;
    const unconditioned = await evaluate(alone(bare), principal(role), deniedRequest, ACCOUNT);
    assert.ok(unconditioned.allowed, `${label}: the denied case must match action and resource: ${unconditioned.missing}`);
    assert.equal((await evaluate(alone(statement), principal(role), deniedRequest, ACCOUNT)).allowed, false);
    const byRole = await evaluate(policies, principal(role), deniedRequest, ACCOUNT);
    assert.equal(byRole.allowed, false, `${role} allows ${label}'s denied case through another statement`);
  });
}

// SharedClusters (two clusters, one pool): a made NLB and a listener tagged with a cluster it
// names may be used and taken over; everything this stack tags is still its own cluster's.
test('SharedClusters widens the NLBs and listeners used, never what is made or tagged', async () => {
  const shared = { ...stack, parameters: { ...stack.parameters, SharedClusters: 'green,canary' } };
  const policies = rolePolicies(template, 'AllocateRole', shared);
  const judge = async (request) => (await evaluate(policies, principal('AllocateRole'), request, ACCOUNT)).allowed;
  for (const cluster of ['bed', 'green', 'canary']) {
    assert.ok(await judge(authz('CreateListener', MADE_NLB, { ...resourceTags(cluster), ...requestTags() })), cluster);
    assert.ok(await judge(authz('AddTags', LISTENER, { ...resourceTags(cluster), ...requestTags() })), cluster);
  }
  assert.equal(await judge(authz('CreateListener', MADE_NLB, { ...resourceTags('other'), ...requestTags() })), false);
  assert.equal(await judge(authz('AddTags', LISTENER, { ...resourceTags('other'), ...requestTags() })), false);
  assert.equal(await judge(authz('AddTags', LISTENER, { ...resourceTags('green'), ...requestTags('green') })), false);
  assert.equal(await judge(authz('CreateListener', MADE_NLB, { ...resourceTags('green'), ...requestTags('green') })), false);
  assert.equal(await judge(authz('ModifyListener', LISTENER, resourceTags('green'))), false,
    'a listener is modified only once tagged as this cluster\'s');
});
