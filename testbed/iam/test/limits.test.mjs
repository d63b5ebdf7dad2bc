// AWS's size limits and account limits, checked on template.yaml as CloudFormation would
// resolve it for the largest stack the docs describe (docs/deploy.md "Large pools"):
// - a function's environment holds 4 KB (Globals' variables and its own, keys and values);
// - the pools' SSM parameter holds 8 KB (Intelligent-Tiering: Advanced past 4 KB), and a
//   template parameter 4,096 bytes;
// - a managed policy holds 6,144 characters, a role's inline policies 10,240;
// and the switches for small accounts and private clusters, both ways: ReservedConcurrency 0
// reserves nothing, FunctionSubnetIds puts every function in the VPC.

import test from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { readTemplate, resolve, rolePolicies } from '../template.mjs';

const template = readTemplate(fileURLToPath(new URL('../../../template.yaml', import.meta.url)));
const ACCOUNT = '123456789012';
const REGION = 'ap-southeast-2';

/** Lambda's limit on a function's environment, AWS's count: keys and values, in bytes. */
const ENVIRONMENT_LIMIT = 4096;
const PARAMETER_VALUE_LIMIT = 4096; // a CloudFormation template parameter's value
const ADVANCED_PARAMETER_LIMIT = 8192; // an SSM parameter of the Advanced tier
const MANAGED_POLICY_LIMIT = 6144;
const ROLE_INLINE_LIMIT = 10240;

/** The largest documented pool: 100 pre-made NLBs, by names of 30 characters (AWS allows 32). */
const names = (count, prefix = 'n', length = 30) => Array.from({ length: count },
  (_, i) => `${prefix}${String(i).padStart(length - 1 - prefix.length, '0')}x`);
const arns = (count) => Array.from({ length: count }, (_, i) =>
  `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:loadbalancer/net/${names(1, `arn${i}-`, 32)[0]}/0123456789abcdef`);

// The longest values the other parameters take (stack names hold 128 characters, cluster
// names 100), so the sizes below are ceilings.
const STACK_NAME = `s${'x'.repeat(127)}`;
function stack(parameters = {}) {
  return {
    parameters: {
      ClusterName: `c${'x'.repeat(99)}`, VpcId: 'vpc-0123456789abcdef0', OidcProviderUrl: 'oidc.eks.ap-southeast-2.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF',
      LogLevel: 'info,nlb_port_pool=debug,handlers=debug',
      TrustedEndpointSliceManagers: 'endpointslice-controller.cilium.io,mesh.example.com,another-controller.example.org',
      TargetCidrs: '10.0.0.0/16,10.1.0.0/16,10.2.0.0/16,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10',
      ElbWritesPerSecond: '0.25', ...parameters,
    },
    accountId: ACCOUNT, region: REGION, stackName: STACK_NAME,
    refs: {
      // CloudFormation's physical names: stack name, logical id and a 12-13 character suffix.
      ClaimsTable: `${STACK_NAME}-ClaimsTable-ABCDEFGHIJKLM`,
      EventBus: STACK_NAME,
      PoolsParameter: `/nlb-port-pool/${STACK_NAME}/pools`,
    },
    attributes: {
      'ClaimsTable.Arn': `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${STACK_NAME}-ClaimsTable-ABCDEFGHIJKLM`,
      'EventBus.Arn': `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/${STACK_NAME}`,
      'DeadLetterQueue.Arn': `arn:aws:sqs:${REGION}:${ACCOUNT}:${STACK_NAME}-DeadLetterQueue-ABCDEFGHIJKL`,
    },
  };
}

const functions = Object.entries(template.Resources)
  .filter(([, r]) => r.Type === 'AWS::Serverless::Function');

/** Each function's environment as Lambda gets it (SAM merges Globals' variables into its own). */
function environments(s) {
  const globals = template.Globals.Function.Environment.Variables;
  return functions.map(([id, fn]) => {
    const own = fn.Properties.Environment?.Variables ?? {};
    const vars = resolve({ ...globals, ...own }, s, template);
    const bytes = Object.entries(vars)
      .reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(String(v)), 0);
    return { id, vars, bytes };
  });
}

test('the template runs six functions', () => assert.equal(functions.length, 6));

test('every function\'s environment stays under 4 KB with the largest pool, whatever the pool', (t) => {
  const large = environments(stack({ PoolNlbArns: arns(33), PoolNlbNames: names(100) }));
  const small = environments(stack({ PoolNlbArns: arns(1) }));
  for (const [i, { id, vars, bytes }] of large.entries()) {
    t.diagnostic(`${id}: ${bytes} bytes in ${Object.keys(vars).length} variables`);
    assert.ok(bytes <= ENVIRONMENT_LIMIT, `${id}'s environment is ${bytes} bytes (Lambda allows ${ENVIRONMENT_LIMIT})`);
    assert.equal(bytes, small[i].bytes, `${id}'s environment grows with the pool`);
    for (const v of Object.values(vars)) assert.equal(typeof v, 'string', `${id}: ${JSON.stringify(v)}`);
  }
});

const poolsValue = (parameters) => resolve(template.Resources.PoolsParameter.Properties.Value,
  stack(parameters), template);

test('a 100-NLB pool by names fits a template parameter and the pools\' SSM parameter', (t) => {
  const given = names(100);
  const parameterText = given.join(',');
  t.diagnostic(`PoolNlbNames: ${parameterText.length} bytes`);
  assert.ok(parameterText.length <= PARAMETER_VALUE_LIMIT, `PoolNlbNames is ${parameterText.length} bytes`);
  // With the other fields at their longest: blocked ports, a managed section, another pool.
  const value = poolsValue({ PoolNlbNames: given, PoolBlockedPorts: ['30080', '30400-30499', '31000-31099'],
    ManagedNlbMax: '10', ManagedSubnets: ['subnet-0123456789abcdef0:eipalloc-0123456789abcdef0', 'subnet-0123456789abcdef1:eipalloc-0123456789abcdef1', 'subnet-0123456789abcdef2:eipalloc-0123456789abcdef2'],
    ManagedTags: '"team":"games","cost-center":"42"' });
  const bytes = Buffer.byteLength(value);
  t.diagnostic(`the pools' parameter: ${bytes} bytes`);
  assert.ok(bytes <= ADVANCED_PARAMETER_LIMIT, `the pools' parameter is ${bytes} bytes`);
  assert.equal(template.Resources.PoolsParameter.Properties.Tier, 'Intelligent-Tiering');
  assert.equal(JSON.parse(value).default.nlbArns.length, 100);
  // PoolNlbArns holds 33 ARNs of the longest names (about 40 of short ones): more need names.
  assert.ok(arns(33).join(',').length <= PARAMETER_VALUE_LIMIT);
  assert.ok(arns(34).join(',').length > PARAMETER_VALUE_LIMIT, 'the docs say 33 to 40 ARNs fit');
});

const policySize = (document) => JSON.stringify(document).length;

// CreateListener on pre-made NLBs names each one: 100 by name (or 20 by ARN and 70 by name) is
// what the pool function's role holds beside its own inline policy (docs/deploy.md).
test('the roles\' policies stay within IAM\'s sizes with 100 pre-made NLBs', (t) => {
  for (const parameters of [{ PoolNlbNames: names(100) }, { PoolNlbArns: arns(20), PoolNlbNames: names(70) }]) {
    const s = stack({ ManagedNlbMax: '10', ManagedSubnets: ['subnet-a'], ...parameters });
    for (const role of ['AllocateRole', 'ReleaseRole', 'SyncTargetsRole', 'SweepRole', 'PoolRole', 'ReachableRole']) {
      const policies = rolePolicies(template, role, s);
      const inline = policies.filter(({ name }) => name.startsWith(`${role}/`))
        .reduce((n, { policy }) => n + policySize(policy), 0);
      t.diagnostic(`${role}: inline ${inline} characters`);
      assert.ok(inline <= ROLE_INLINE_LIMIT, `${role}'s inline policies are ${inline} characters`);
      for (const { name, policy } of policies.filter(({ name: n }) => !n.includes('/'))) {
        assert.ok(policySize(policy) <= MANAGED_POLICY_LIMIT, `${name} is ${policySize(policy)} characters`);
      }
    }
  }
});

const reserved = (parameters) => Object.fromEntries(functions.map(([id, fn]) => [id,
  resolve({ r: fn.Properties.ReservedConcurrentExecutions }, stack(parameters), template).r]));

test('ReservedConcurrency 0 reserves nothing; otherwise each function its own, 13 by default', () => {
  const on = reserved({ PoolNlbArns: arns(1) });
  assert.deepEqual(on, { AllocateFn: '4', ReleaseFn: '2', SyncTargetsFn: '4', SweepFn: 1, PoolFn: 1, ReachableFn: 1 });
  assert.equal(Object.values(on).reduce((n, v) => n + Number(v), 0), 13);
  assert.deepEqual(reserved({ PoolNlbArns: arns(1), ReservedConcurrency: '1', AllocateConcurrency: '10' }).AllocateFn, '10');
  const off = reserved({ PoolNlbArns: arns(1), ReservedConcurrency: '0' });
  assert.deepEqual(off, Object.fromEntries(functions.map(([id]) => [id, undefined])));
  // Nothing else sets it: the switch covers every function.
  for (const [id, fn] of functions) {
    assert.ok('ReservedConcurrentExecutions' in fn.Properties, `${id} has no ReservedConcurrentExecutions`);
  }
});

test('FunctionSubnetIds puts every function in the VPC, with the VPC access policy', () => {
  const vpc = (parameters) => resolve({ v: template.Globals.Function.VpcConfig }, stack(parameters), template).v;
  assert.equal(vpc({}), undefined, 'no subnets: outside any VPC');
  assert.deepEqual(vpc({ FunctionSubnetIds: ['subnet-a', 'subnet-b'], FunctionSecurityGroupIds: ['sg-1'] }),
    { SubnetIds: ['subnet-a', 'subnet-b'], SecurityGroupIds: ['sg-1'] });
  const managed = (parameters) => functions.map(([, fn]) => {
    const role = template.Resources[fn.Properties.Role['Fn::GetAtt'][0]];
    return resolve(role.Properties.ManagedPolicyArns, stack(parameters), template)
      .filter((a) => typeof a === 'string' && a.includes(':aws:policy/'));
  });
  for (const arnsOf of managed({})) {
    assert.deepEqual(arnsOf, ['arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole']);
  }
  for (const arnsOf of managed({ FunctionSubnetIds: ['subnet-a'], FunctionSecurityGroupIds: ['sg-1'] })) {
    assert.deepEqual(arnsOf, ['arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole']);
  }
});
