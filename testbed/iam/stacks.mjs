// The stacks the gate knows: each test stack (or the local stack) registers the values its
// template would be deployed with, and gets its roles' policies resolved from template.yaml.

import { awsArn } from './authorizations.mjs';
import { ROLE_OF, readTemplate, rolePolicies } from './template.mjs';
import { ACCOUNT_ID, ADMIN_ACCESS_KEY } from './request.mjs';

export class Stacks {
  constructor(templatePath, lookups) {
    this.templatePath = templatePath;
    this.lookups = lookups;
    this.byKey = new Map();
  }

  /**
   * Registers a stack. `spec`: { accessKeyId, stackName, region, parameters (template
   * parameters; PoolNlbArns and ExtraPoolNlbArns as arrays of moto ARNs, empty ([] or [""])
   * for none, as a managed-only default pool has: ManagedNlbMax above 0; parameters left out
   * take the template's defaults), tableName, busName, deadLetterQueueName,
   * operatorAccessKeyId }. The template is read anew, so an edit is seen without a restart.
   * Calls signed with `operatorAccessKeyId` are the stack's OperatorRole whatever their app id
   * (an operator's shell: `kubectl nlb-pool`, the AWS CLI).
   */
  async register(spec) {
    for (const field of ['accessKeyId', 'stackName', 'region', 'parameters']) {
      if (!spec[field]) throw new Error(`stack registration needs ${field}`);
    }
    const operatorKey = spec.operatorAccessKeyId;
    if ([spec.accessKeyId, operatorKey].includes(ADMIN_ACCESS_KEY)) {
      throw new Error(`the admin key ${ADMIN_ACCESS_KEY} cannot name a stack`);
    }
    if (operatorKey !== undefined && operatorKey === spec.accessKeyId) {
      throw new Error('a stack\'s operator key must differ from its functions\' key');
    }
    const region = spec.region;
    const arn = (service, resource) => `arn:aws:${service}:${region}:${ACCOUNT_ID}:${resource}`;
    const parameters = { ...spec.parameters };
    for (const list of ['PoolNlbArns', 'ExtraPoolNlbArns']) {
      let arns = parameters[list];
      if (arns === undefined) continue;
      if (typeof arns === 'string') arns = arns.split(',');
      // CloudFormation gives an empty list parameter as one empty member.
      if (arns.length === 0) arns = [''];
      parameters[list] = await Promise.all(arns.map((a) => (a ? awsArn(a, this.lookups) : a)));
    }
    const values = {
      parameters,
      accountId: ACCOUNT_ID,
      region,
      stackName: spec.stackName,
      refs: { ClaimsTable: spec.tableName ?? `${spec.stackName}-claims`, EventBus: spec.busName ?? spec.stackName },
      attributes: {
        'ClaimsTable.Arn': arn('dynamodb', `table/${spec.tableName ?? `${spec.stackName}-claims`}`),
        'EventBus.Arn': arn('events', `event-bus/${spec.busName ?? spec.stackName}`),
        'DeadLetterQueue.Arn': arn('sqs', spec.deadLetterQueueName ?? `${spec.stackName}-dlq`),
      },
    };
    const template = readTemplate(this.templatePath);
    const policies = {};
    for (const role of Object.values(ROLE_OF)) policies[role] = rolePolicies(template, role, values);
    const stack = new RegisteredStack(spec.stackName, policies);
    this.byKey.set(spec.accessKeyId, stack);
    if (operatorKey) this.byKey.set(operatorKey, new RegisteredStack(spec.stackName, policies, ROLE_OF.operator));
    return { stackName: spec.stackName, roles: Object.keys(policies) };
  }

  get(accessKeyId) {
    return this.byKey.get(accessKeyId);
  }
}

class RegisteredStack {
  /** `fixedRole`: the one role of every call under this key (an operator's key), if any. */
  constructor(stackName, policies, fixedRole = undefined) {
    this.stackName = stackName;
    this.byRole = policies;
    this.fixedRole = fixedRole;
  }

  roleOf(fn) {
    if (this.fixedRole) return this.fixedRole;
    return fn ? ROLE_OF[fn] : undefined;
  }

  policies(role) {
    return this.byRole[role];
  }

  principal(role) {
    return `arn:aws:iam::${ACCOUNT_ID}:role/${this.stackName}-${role}`;
  }
}
