// template.yaml's CloudWatch dashboard, resolved for a stack: valid JSON, and every
// NlbPortPool metric it shows is one the functions print (shared/src/reconcile/metrics.rs), so a
// renamed metric cannot leave an empty graph behind.

import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { readTemplate, resolve } from '../template.mjs';

const root = (p) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));
const template = readTemplate(root('template.yaml'));
const stack = {
  parameters: { ClusterName: 'c', ClusterEndpoint: 'https://k', ClusterCertificateAuthority: 'ca',
    VpcId: 'vpc-1', PoolNlbArns: ['arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/a/1'],
    OidcProviderUrl: 'oidc.example/id/1' },
  accountId: '123456789012', region: 'us-west-2', stackName: 's', refs: { AllocateFn: 's-allocate' },
  attributes: { 'DeadLetterQueue.QueueName': 's-dlq' },
};

test('the dashboard is JSON once resolved, and shows only metrics the functions print', () => {
  const body = JSON.parse(resolve(template.Resources.Dashboard.Properties.DashboardBody, stack, template));
  assert.ok(body.widgets.length >= 8);
  const text = JSON.stringify(body);
  const shown = new Set([
    ...[...text.matchAll(/"NlbPortPool","(\w+)"/g)].map((m) => m[1]),
    ...[...text.matchAll(/MetricName=\\"(\w+)\\"/g)].map((m) => m[1]),
  ]);
  assert.ok(shown.size >= 12, [...shown].join(','));
  const printed = readFileSync(root('shared/src/reconcile/metrics.rs'), 'utf8');
  for (const name of shown) assert.ok(printed.includes(`"${name}"`), `${name} is on the dashboard but no function prints it`);
  assert.match(text, /"QueueName","s-dlq"/);
  assert.match(text, /"FunctionName","s-allocate"/);
});

test('PendingTooLongAlarm watches the metric the sweep prints, at the parameter', () => {
  const alarm = resolve(template.Resources.PendingTooLongAlarm.Properties, stack, template);
  assert.equal(alarm.MetricName, 'OldestPendingSeconds');
  assert.deepEqual(alarm.Dimensions, [{ Name: 'Function', Value: 'sweep' }]);
  assert.equal(alarm.Threshold, '900');
});

test('SignalsRefusedAlarm watches the metric the functions print when the bus refuses an event', () => {
  const alarm = resolve(template.Resources.SignalsRefusedAlarm.Properties, stack, template);
  const expression = alarm.Metrics[0].Expression;
  assert.match(expression, /SUM\(SignalsRefused\)/);
  assert.match(expression, /SCHEMA\("NlbPortPool", DetailType, Function\)/);
  const printed = readFileSync(root('shared/src/reconcile/metrics.rs'), 'utf8');
  assert.ok(printed.includes('"SignalsRefused"'));
  assert.ok(printed.includes('("Function", function), ("DetailType", detail_type)'));
});
