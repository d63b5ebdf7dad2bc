// Which of template.yaml's grants the calls of a test run needed. A grant is one action of one
// Allow statement of one of the roles' policies (`AllocatorPolicy:ManageOwnListeners
// elasticloadbalancing:ModifyListener`); one no allowed call needed is privilege the template
// gives for nothing, or a call no test makes. `make test` fails on either (GET /_gate/unused).

import { allows } from './evaluate.mjs';

/**
 * Grants used outside the functions' code, which no call through the gate can show: each with
 * why it is needed.
 */
export const USED_OUTSIDE_THE_CODE = [
  {
    statement: 'DeadLetters',
    action: 'sqs:SendMessage',
    why: 'Lambda sends an event that failed every retry to the dead-letter queue as the function\'s role',
  },
];

/** `service:Prefix*` as a matcher of action names (IAM matches them case-insensitively). */
function actionMatcher(pattern) {
  const escaped = pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`, 'i');
}

/** The grants of a role's policies: { key, policy, statement, label, action, matches }. */
function grantsOf(policies) {
  const out = [];
  for (const { name, policy } of policies) {
    [policy.Statement].flat().forEach((statement, i) => {
      if (statement.Effect !== 'Allow' || statement.NotAction) return;
      const sid = statement.Sid ?? `#${i}`;
      const label = `${name.split('/').pop()}:${sid}`;
      for (const action of [statement.Action].flat()) {
        out.push({
          key: `${label} ${action}`, policyName: name, statement, sid, label, action,
          matches: actionMatcher(action),
        });
      }
    });
  }
  return out;
}

/** The grants of every role registered, and which of them allowed calls. */
export class Usage {
  constructor() {
    /** key -> { label, action, roles: Set } */
    this.granted = new Map();
    this.used = new Set();
  }

  /** Notes the grants of `role` (its resolved policies). */
  noteRole(role, policies) {
    for (const g of grantsOf(policies)) {
      const known = this.granted.get(g.key) ?? { label: g.label, sid: g.sid, action: g.action, roles: new Set() };
      known.roles.add(role);
      this.granted.set(g.key, known);
    }
  }

  /**
   * Notes which grants allowed `authz` (already allowed by the role's policies as a whole): those
   * whose statement alone allows it. Grants already known as used are not evaluated again, so
   * a run pays for this only until every grant it uses has been seen.
   */
  async noteAllowed(policies, principal, authz, accountId) {
    for (const g of grantsOf(policies)) {
      if (this.used.has(g.key) || !g.matches.test(authz.action)) continue;
      const alone = [{ name: g.policyName, policy: { Version: '2012-10-17', Statement: [g.statement] } }];
      if (await allows(alone, principal, authz, accountId)) this.used.add(g.key);
    }
  }

  /** The grants nothing used and nothing outside the code uses: [{ grant, roles }]. */
  unused(outside = USED_OUTSIDE_THE_CODE) {
    const exempt = (g) => outside.some((o) => o.statement === g.sid && o.action === g.action);
    return [...this.granted.entries()]
      .filter(([key, g]) => !this.used.has(key) && !exempt(g))
      .map(([key, g]) => ({ grant: key, roles: [...g.roles].sort() }))
      .sort((a, b) => a.grant.localeCompare(b.grant));
  }
}
