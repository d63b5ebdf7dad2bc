// The report of grants no call needed, on the template's own policies and requests the
// functions make (no server: the lookups moto would answer are given here).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Usage } from '../usage.mjs';

const ACCOUNT = '123456789012';
const PRINCIPAL = `arn:aws:iam::${ACCOUNT}:role/r`;
const TABLE = `arn:aws:dynamodb:us-west-2:${ACCOUNT}:table/claims`;
const policies = [{
  name: 'FnRole/inline',
  policy: {
    Version: '2012-10-17',
    Statement: [
      { Sid: 'ClaimsTable', Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:Query'], Resource: TABLE },
      { Sid: 'Describe', Effect: 'Allow', Action: 'elasticloadbalancing:Describe*', Resource: '*' },
      { Sid: 'DeadLetters', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: '*' },
    ],
  },
}];
const call = (action, resource) => ({ action, resource, context: {} });

test('a grant an allowed call needed is used; the others are reported', async () => {
  const usage = new Usage();
  usage.noteRole('FnRole', policies);

  await usage.noteAllowed(policies, PRINCIPAL, call('dynamodb:GetItem', TABLE), ACCOUNT);
  await usage.noteAllowed(policies, PRINCIPAL, call('elasticloadbalancing:DescribeListeners', '*'), ACCOUNT);

  assert.deepEqual(usage.unused(), [{ grant: 'inline:ClaimsTable dynamodb:Query', roles: ['FnRole'] }]);
});

test('a grant used outside the code is not reported, unless the exemption is taken away', async () => {
  const usage = new Usage();
  usage.noteRole('FnRole', policies);
  for (const action of ['dynamodb:GetItem', 'dynamodb:Query']) {
    await usage.noteAllowed(policies, PRINCIPAL, call(action, TABLE), ACCOUNT);
  }
  await usage.noteAllowed(policies, PRINCIPAL, call('elasticloadbalancing:DescribeTags', '*'), ACCOUNT);

  assert.deepEqual(usage.unused(), []);
  assert.deepEqual(usage.unused([]).map((u) => u.grant), ['inline:DeadLetters sqs:SendMessage']);
});
