// Stack registration: the functions' key names each caller's role by its app id; a stack's
// operator key is its OperatorRole whatever the app id (an operator's shell: kubectl nlb-pool,
// the AWS CLI); the bed's admin key names no stack.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { Stacks } from '../stacks.mjs';

const TEMPLATE = fileURLToPath(new URL('../../../template.yaml', import.meta.url));
// No pool NLB: registration then asks moto nothing.
const noLookups = { tags: async () => null, loadBalancerType: async () => null };

function spec(extra) {
  return {
    accessKeyId: 'AKIAFUNCTIONS', stackName: 'npp', region: 'us-west-2',
    parameters: { ClusterName: 'bed', PoolNlbArns: [], ExtraPoolNlbArns: [], VpcId: 'vpc-1' },
    ...extra,
  };
}

test('a stack\'s operator key is its OperatorRole, whatever app id the caller sends', async () => {
  // GIVEN a stack registered with an operator key
  const stacks = new Stacks(TEMPLATE, noLookups);
  await stacks.register(spec({ operatorAccessKeyId: 'AKIAOPERATOR' }));

  // WHEN calls come under each key
  const functions = stacks.get('AKIAFUNCTIONS');
  const operator = stacks.get('AKIAOPERATOR');

  // THEN the functions' key names roles by app id, the operator's key always OperatorRole
  assert.equal(functions.roleOf('allocate'), 'AllocateRole');
  assert.equal(functions.roleOf(undefined), undefined);
  for (const app of [undefined, 'operator', 'allocate', 'sweep']) {
    assert.equal(operator.roleOf(app), 'OperatorRole', `app id ${app}`);
  }
  // AND the operator's policies are the stack's OperatorRole's, resolved like the others
  assert.deepEqual(operator.policies('OperatorRole'), functions.policies('OperatorRole'));
  assert.equal(operator.principal('OperatorRole'), 'arn:aws:iam::123456789012:role/npp-OperatorRole');
});

test('the admin key or the functions\' own key cannot be a stack\'s operator key', async () => {
  const stacks = new Stacks(TEMPLATE, noLookups);
  await assert.rejects(stacks.register(spec({ operatorAccessKeyId: 'testing' })), /admin key/);
  await assert.rejects(stacks.register(spec({ operatorAccessKeyId: 'AKIAFUNCTIONS' })), /must differ/);
  assert.equal(stacks.get('AKIAFUNCTIONS'), undefined, 'nothing was registered');
});
