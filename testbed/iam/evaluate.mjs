// Evaluates one authorization against a role's identity policies with iam-simulate (the
// library's IAM evaluation logic: wildcards, condition operators, set operators, explicit
// denies), and says what is missing when the answer is no.

import { runUnsafeSimulation } from '@cloud-copilot/iam-simulate';

/**
 * @param {{name: string, policy: object}[]} policies  the role's identity policies
 * @param {string} principal  the role's ARN
 * @param {{action: string, resource: string, context: object}} authz
 * @param {string} accountId
 * @returns {{allowed: boolean, result: string, missing?: string}}
 */
export function evaluate(policies, principal, authz, accountId) {
  const result = simulate(policies, principal, authz, accountId);
  if (result === 'Allowed') return { allowed: true, result };
  return { allowed: false, result, missing: explain(policies, principal, authz, accountId) };
}

/** Whether `policies` allow `authz`, without saying why not (cheap when the answer is no). */
export function allows(policies, principal, authz, accountId) {
  return simulate(policies, principal, authz, accountId) === 'Allowed';
}

function simulate(policies, principal, authz, accountId) {
  return runUnsafeSimulation({
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
}

// Which statements come close: those whose Action and Resource match the request. For each,
// the condition blocks (operator and key) that fail. Without one, no statement names the
// action on that resource at all.
function explain(policies, principal, authz, accountId) {
  const near = [];
  for (const { name, policy } of policies) {
    const statements = [policy.Statement].flat();
    statements.forEach((statement, i) => {
      if (statement.Effect !== 'Allow') return;
      const label = `${name}:${statement.Sid ?? `#${i}`}`;
      const { Condition: condition, ...bare } = statement;
      const one = (s) => [{ name, policy: { Version: '2012-10-17', Statement: [s] } }];
      if (simulate(one(bare), principal, authz, accountId) !== 'Allowed') return;
      const failing = [];
      for (const [operator, keys] of Object.entries(condition ?? {})) {
        for (const [key, want] of Object.entries(keys)) {
          const single = { ...bare, Condition: { [operator]: { [key]: want } } };
          if (simulate(one(single), principal, authz, accountId) !== 'Allowed') {
            const had = authz.context[key];
            failing.push(`${operator} ${key} ${JSON.stringify(want)} (request: ${
              had === undefined ? 'absent' : JSON.stringify(had)})`);
          }
        }
      }
      near.push(failing.length > 0 ? `${label} fails ${failing.join(' and ')}` : label);
    });
  }
  const denies = policies.some(({ policy }) => [policy.Statement].flat()
    .some((s) => s.Effect === 'Deny'));
  if (near.length === 0) {
    return `no statement allows ${authz.action} on ${authz.resource}${
      denies ? ' (or an explicit Deny applies)' : ''}`;
  }
  return `statements matching action and resource: ${near.join('; ')}`;
}
