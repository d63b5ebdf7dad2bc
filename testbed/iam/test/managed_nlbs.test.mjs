// Managed NLBs (README "Elastic pools"): the pool function makes, modifies and deletes NLBs of
// its own (npp- names, the project's tags for this cluster); allocate, sweep and pool open
// listeners on them by those tags and ask the pool to grow (Pool Low). The template's policies,
// resolved and evaluated the way the gate does; no server: the lookups moto would answer are
// given here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { authorizationsFor, NEW_ID } from '../authorizations.mjs';
import { evaluate } from '../evaluate.mjs';
import { Stacks } from '../stacks.mjs';
import { ROLE_OF, readTemplate, rolePolicies } from '../template.mjs';

const TEMPLATE = fileURLToPath(new URL('../../../template.yaml', import.meta.url));
const REGION = 'us-west-2';
const ACCOUNT = '123456789012';
const ELB = `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}`;
const OURS = { 'nlb-port-pool/managed': 'true', 'nlb-port-pool/cluster': 'bed' };

// NLBs as moto names them (loadbalancer/app/ for a network LB too).
const MANAGED = `${ELB}:loadbalancer/app/npp-bed-1/3333`;
const UNTAGGED_NPP = `${ELB}:loadbalancer/app/npp-stray/4444`;
const OTHER_CLUSTERS = `${ELB}:loadbalancer/app/npp-other-1/5555`;
const PREMADE = `${ELB}:loadbalancer/app/pool-a/1111`;
// A pre-made NLB someone tagged as the project's: its name keeps it out of the pool's reach.
const PREMADE_TAGGED = `${ELB}:loadbalancer/app/pool-b/6666`;

const tagsOf = {
  [MANAGED]: { ...OURS, team: 'games' },
  [UNTAGGED_NPP]: {},
  [OTHER_CLUSTERS]: { ...OURS, 'nlb-port-pool/cluster': 'other' },
  [PREMADE]: {},
  [PREMADE_TAGGED]: OURS,
};
const lookups = {
  tags: async (arn) => tagsOf[arn] ?? null,
  loadBalancerType: async (arn) => (tagsOf[arn] ? 'network' : null),
};
const net = (arn) => arn.replace(':loadbalancer/app/', ':loadbalancer/net/');

const template = readTemplate(TEMPLATE);

function stackValues(parameters) {
  return {
    parameters: {
      ClusterName: 'bed', ExtraPoolNlbArns: [''], ClusterEndpoint: 'https://127.0.0.1',
      ClusterCertificateAuthority: 'Y2E=', VpcId: 'vpc-1', OidcProviderUrl: 'oidc.example/id/1',
      ...parameters,
    },
    accountId: ACCOUNT, region: REGION, stackName: 'npp', refs: { ClaimsTable: 'claims' },
    attributes: {
      'ClaimsTable.Arn': `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/claims`,
      'EventBus.Arn': `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/npp`,
      'DeadLetterQueue.Arn': `arn:aws:sqs:${REGION}:${ACCOUNT}:npp-dlq`,
    },
  };
}

// Pre-made NLBs and managed ones in the default pool.
const MIXED = stackValues({ PoolNlbArns: [net(PREMADE)], ManagedNlbMax: '3', ManagedSubnets: ['subnet-1'] });
// The default pool managed only: no PoolNlbArns.
const MANAGED_ONLY = stackValues({ PoolNlbArns: [''], ManagedNlbMax: '1', ManagedSubnets: ['subnet-1'] });

async function decide(fn, call, stack = MIXED) {
  const role = ROLE_OF[fn];
  const policies = rolePolicies(template, role, stack);
  const full = { region: REGION, accountId: ACCOUNT, ...call };
  const out = [];
  for (const authz of await authorizationsFor(full, lookups)) {
    out.push({ authz, ...await evaluate(policies, `arn:aws:iam::${ACCOUNT}:role/${role}`, authz, ACCOUNT) });
  }
  return out;
}

async function allowed(fn, call, stack) {
  const results = await decide(fn, call, stack);
  for (const r of results) assert.ok(r.allowed, `${fn}: ${r.authz.action} on ${r.authz.resource}: ${r.missing}`);
  return results;
}

async function denied(fn, call, stack) {
  const results = await decide(fn, call, stack);
  const refused = results.filter((r) => !r.allowed);
  assert.ok(refused.length > 0, `${fn}: ${call.operation} ${JSON.stringify(call.params ?? call.json)} was allowed`);
  return refused;
}

const elb = (operation, params) => ({ service: 'elasticloadbalancing', protocol: 'query', operation, params });
const tags = (t) => Object.fromEntries(Object.entries(t).flatMap(([k, v], i) => [
  [`Tags.member.${i + 1}.Key`, k], [`Tags.member.${i + 1}.Value`, v]]));
const projectTags = tags({ ...OURS, 'nlb-port-pool/namespace': 'ns' });
const createNlb = (name, t, type = 'network') => elb('CreateLoadBalancer', {
  Name: name, Type: type, Scheme: 'internet-facing', 'Subnets.member.1': 'subnet-1', ...tags(t) });
const listenerOn = (nlb, t = projectTags) => elb('CreateListener', {
  LoadBalancerArn: nlb, Protocol: 'TCP', Port: '30000',
  'DefaultActions.member.1.Type': 'forward',
  'DefaultActions.member.1.TargetGroupArn': `${ELB}:targetgroup/npp-x/1`, ...t });
const putEvents = (source, detailType, bus = 'npp') => ({ service: 'events', protocol: 'json',
  operation: 'PutEvents', json: { Entries: [{ EventBusName: bus, Source: source, DetailType: detailType, Detail: '{}' }] } });

// sync-targets allocates a per-pod Service's new pods; reachable may register a pod new since.
const ALLOCATORS = ['allocate', 'sync-targets', 'sweep', 'pool', 'reachable'];
const NOT_ALLOCATORS = ['release'];

test('the pool function makes an npp- NLB with the project tags, and may add the user\'s', async () => {
  const made = await allowed('pool', createNlb('npp-bed-2', { ...OURS, team: 'games', 'cost-center': '42' }));
  assert.deepEqual(made.map((r) => [r.authz.action, r.authz.resource]), [
    ['elasticloadbalancing:CreateLoadBalancer', `${ELB}:loadbalancer/net/npp-bed-2/${NEW_ID}`],
    ['elasticloadbalancing:AddTags', `${ELB}:loadbalancer/net/npp-bed-2/${NEW_ID}`],
  ]);
  assert.equal(made[1].authz.context['elasticloadbalancing:CreateAction'], 'CreateLoadBalancer');
  await allowed('pool', createNlb('npp-bed-3', OURS));
});

test('no NLB without the project tags, for another cluster, by another name or type', async () => {
  await denied('pool', createNlb('npp-bed-2', {}));
  await denied('pool', createNlb('npp-bed-2', { 'nlb-port-pool/managed': 'true' }));
  await denied('pool', createNlb('npp-bed-2', { 'nlb-port-pool/cluster': 'bed', team: 'games' }));
  const [other] = await denied('pool', createNlb('npp-bed-2', { ...OURS, 'nlb-port-pool/cluster': 'other' }));
  assert.match(other.missing, /aws:RequestTag\/nlb-port-pool\/cluster/);
  const [named] = await denied('pool', createNlb('bed-2', OURS));
  assert.equal(named.authz.resource, `${ELB}:loadbalancer/net/bed-2/${NEW_ID}`);
  // An application load balancer's ARN says app/: not one the pool may make.
  const [alb] = await denied('pool', createNlb('npp-bed-2', OURS, 'application'));
  assert.equal(alb.authz.resource, `${ELB}:loadbalancer/app/npp-bed-2/${NEW_ID}`);
  for (const fn of [...ALLOCATORS.filter((f) => f !== 'pool'), ...NOT_ALLOCATORS]) {
    await denied(fn, createNlb('npp-bed-2', OURS));
  }
});

test('NLB tags are added at creation only, never to an NLB that exists', async () => {
  for (const nlb of [MANAGED, UNTAGGED_NPP, PREMADE]) {
    const [refused] = await denied('pool', elb('AddTags', { 'ResourceArns.member.1': nlb, ...tags(OURS) }));
    assert.equal(refused.authz.resource, net(nlb));
    // An npp- NLB is TagNlbsAtCreation's resource, but only while it is made.
    assert.match(refused.missing, nlb === PREMADE ? /no statement allows/ : /elasticloadbalancing:CreateAction/);
  }
  for (const fn of [...ALLOCATORS, ...NOT_ALLOCATORS]) {
    await denied(fn, elb('AddTags', { 'ResourceArns.member.1': MANAGED, ...tags(OURS) }));
  }
});

test('the pool function modifies and deletes its own NLBs only', async () => {
  for (const op of ['ModifyLoadBalancerAttributes', 'DeleteLoadBalancer']) {
    const [ok] = await allowed('pool', elb(op, { LoadBalancerArn: MANAGED }));
    assert.equal(ok.authz.resource, net(MANAGED), 'judged as a network LB');
    assert.equal(ok.authz.context['aws:ResourceTag/nlb-port-pool/cluster'], 'bed');
    for (const nlb of [UNTAGGED_NPP, OTHER_CLUSTERS, PREMADE, PREMADE_TAGGED]) {
      await denied('pool', elb(op, { LoadBalancerArn: nlb }));
    }
    for (const fn of [...ALLOCATORS.filter((f) => f !== 'pool'), ...NOT_ALLOCATORS]) {
      await denied(fn, elb(op, { LoadBalancerArn: MANAGED }));
    }
  }
});

test('allocate, sweep and pool open tagged listeners on a managed NLB by its tags', async () => {
  for (const fn of ALLOCATORS) {
    const [create] = await allowed(fn, listenerOn(MANAGED));
    assert.equal(create.authz.resource, net(MANAGED));
    // Both the NLB's tags and the new listener's are in the request's context.
    assert.equal(create.authz.context['aws:ResourceTag/nlb-port-pool/managed'], 'true');
    assert.equal(create.authz.context['elasticloadbalancing:ResourceTag/nlb-port-pool/cluster'], 'bed');
    assert.equal(create.authz.context['aws:RequestTag/nlb-port-pool/cluster'], 'bed');
    await denied(fn, listenerOn(UNTAGGED_NPP));
    await denied(fn, listenerOn(OTHER_CLUSTERS));
    await denied(fn, listenerOn(MANAGED, {}));
    await denied(fn, listenerOn(MANAGED, tags({ ...OURS, 'nlb-port-pool/cluster': 'other' })));
    // Tagged as the project's, but not named npp-: only PoolNlbArns would let it in.
    await denied(fn, listenerOn(PREMADE_TAGGED));
  }
  const [refused] = await denied('allocate', listenerOn(UNTAGGED_NPP));
  assert.match(refused.missing, /CreateListenersOnManagedNlbs fails .*aws:ResourceTag\/nlb-port-pool\/managed/);
  for (const fn of NOT_ALLOCATORS) await denied(fn, listenerOn(MANAGED));
});

test('the allocating functions may signal the pool and reachable functions, and put no other event', async () => {
  for (const fn of ALLOCATORS) {
    await allowed(fn, putEvents('nlb-port-pool.functions', 'Pool Low'));
    await allowed(fn, putEvents('nlb-port-pool.functions', 'Targets Registered'));
    await denied(fn, putEvents('nlb-port-pool.forwarder', 'Targets Registered'));
    await denied(fn, putEvents('nlb-port-pool.functions', 'Service Changed'));
    await denied(fn, putEvents('nlb-port-pool.forwarder', 'Pool Low'));
    await denied(fn, putEvents('aws.events', 'Scheduled Event'));
    await denied(fn, putEvents('nlb-port-pool.functions', 'Pool Low', 'someone-elses-bus'));
    await denied(fn, putEvents('nlb-port-pool.functions', 'Pool Low', 'default'));
  }
  for (const fn of NOT_ALLOCATORS) {
    await denied(fn, putEvents('nlb-port-pool.functions', 'Pool Low'));
    await denied(fn, putEvents('nlb-port-pool.functions', 'Targets Registered'));
  }
  // The forwarder's own events are not the functions' to put.
  await denied('forwarder', putEvents('nlb-port-pool.functions', 'Pool Low'));
});

const sids = (stack, role) => rolePolicies(template, role, stack)
  .flatMap(({ policy }) => [policy.Statement].flat().map((s) => s.Sid));

test('a managed-only stack resolves without the statement on pre-made NLBs', async () => {
  for (const role of Object.values(ROLE_OF)) rolePolicies(template, role, MANAGED_ONLY);
  for (const role of ['AllocateRole', 'SweepRole', 'PoolRole']) {
    const named = sids(MANAGED_ONLY, role);
    assert.ok(!named.includes('CreateListenersOnPoolNlbs'), `${role}: ${named}`);
    assert.ok(named.includes('CreateListenersOnManagedNlbs'), `${role}: ${named}`);
  }
  assert.ok(sids(MIXED, 'AllocateRole').includes('CreateListenersOnPoolNlbs'));
  await allowed('allocate', listenerOn(MANAGED), MANAGED_ONLY);
  await allowed('pool', createNlb('npp-bed-2', OURS), MANAGED_ONLY);
  const [refused] = await denied('allocate', listenerOn(PREMADE), MANAGED_ONLY);
  assert.match(refused.missing, /no statement allows/);
  await allowed('allocate', listenerOn(PREMADE), MIXED);
});

test('a stack registers with no pre-made NLBs, given as [] or [""], and names the pool role', async () => {
  const stacks = new Stacks(TEMPLATE, lookups);
  for (const [i, none] of [[], ['']].entries()) {
    const key = `AKIAMANAGED${i}`;
    const registered = await stacks.register({
      accessKeyId: key, stackName: `managed-${i}`, region: REGION,
      parameters: { ...MANAGED_ONLY.parameters, PoolNlbArns: none, ManagedNlbMax: 1 },
    });
    assert.ok(registered.roles.includes('PoolRole'), registered.roles.join(','));
    const stack = stacks.get(key);
    assert.equal(stack.roleOf('pool'), 'PoolRole');
    const named = stack.policies('AllocateRole').flatMap(({ policy }) => policy.Statement.map((s) => s.Sid));
    assert.ok(!named.includes('CreateListenersOnPoolNlbs'), named.join(','));
  }
});
