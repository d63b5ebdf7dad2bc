// Evaluates one authorization against a role's identity policies as AWS does, with
// iam-simulate's full simulation (`runSimulation`): the action must exist, the resource must
// be one of the action's resource types, the policies must be valid, and each context key is
// typed from AWS's data (`ArrayOf*` keys become lists, so a single-valued operator such as
// StringEquals does not match them, as on AWS). A key the action does not have in AWS's data
// is a modelling error of the gate, not something to ignore. Says what is missing when the
// answer is no.

import { runSimulation } from '@cloud-copilot/iam-simulate';

import { patchIamData } from './iam_data_patches.mjs';

await patchIamData();

/**
 * @param {{name: string, policy: object}[]} policies  the role's identity policies
 * @param {string} principal  the role's ARN
 * @param {{action: string, resource: string, context: object}} authz
 * @param {string} accountId
 * @returns {Promise<{allowed: boolean, result: string, missing?: string}>}
 */
export async function evaluate(policies, principal, authz, accountId) {
  const verdict = await simulate(policies, principal, authz, accountId);
  if (verdict.error) return { allowed: false, result: 'NotJudged', missing: verdict.error };
  if (verdict.result === 'Allowed') return { allowed: true, result: verdict.result };
  return {
    allowed: false,
    result: verdict.result,
    missing: await explain(policies, principal, authz, accountId),
  };
}

/** Whether `policies` allow `authz`, without saying why not (cheap when the answer is no). */
export async function allows(policies, principal, authz, accountId) {
  return (await simulate(policies, principal, authz, accountId)).result === 'Allowed';
}

/** The simulation's overall result, or why the request could not be judged. */
async function simulate(policies, principal, authz, accountId) {
  const out = await runSimulation({
    identityPolicies: policies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    request: {
      action: authz.action,
      principal,
      resource: { resource: authz.resource, accountId },
      contextVariables: authz.context,
    },
  }, {});
  if (out.resultType === 'error') {
    return { error: `the simulator cannot judge ${authz.action} on ${authz.resource}: ${JSON.stringify(out.errors)}` };
  }
  const ignored = out.resultType === 'single' ? out.result.ignoredContextKeys : [];
  if (ignored.length > 0) {
    return {
      error: `the gate gave ${authz.action} context keys AWS's data does not have for it: ${ignored.join(', ')}`,
    };
  }
  return { result: out.overallResult };
}

// Which statements come close: those whose Action and Resource match the request. For each,
// the condition blocks (operator and key) that fail. Without one, no statement names the
// action on that resource at all.
async function explain(policies, principal, authz, accountId) {
  const near = [];
  for (const { name, policy } of policies) {
    const statements = [policy.Statement].flat();
    for (const [i, statement] of statements.entries()) {
      if (statement.Effect !== 'Allow') continue;
      const label = `${name}:${statement.Sid ?? `#${i}`}`;
      const { Condition: condition, ...bare } = statement;
      const one = (s) => [{ name, policy: { Version: '2012-10-17', Statement: [s] } }];
      if (!(await allows(one(bare), principal, authz, accountId))) continue;
      const failing = [];
      for (const [operator, keys] of Object.entries(condition ?? {})) {
        for (const [key, want] of Object.entries(keys)) {
          const single = { ...bare, Condition: { [operator]: { [key]: want } } };
          if (!(await allows(one(single), principal, authz, accountId))) {
            const had = authz.context[key];
            failing.push(`${operator} ${key} ${JSON.stringify(want)} (request: ${
              had === undefined ? 'absent' : JSON.stringify(had)})`);
          }
        }
      }
      near.push(failing.length > 0 ? `${label} fails ${failing.join(' and ')}` : label);
    }
  }
  const denies = policies.some(({ policy }) => [policy.Statement].flat()
    .some((s) => s.Effect === 'Deny'));
  if (near.length === 0) {
    return `no statement allows ${authz.action} on ${authz.resource}${
      denies ? ' (or an explicit Deny applies)' : ''}`;
  }
  return `statements matching action and resource: ${near.join('; ')}`;
}
