// The IAM policies of template.yaml's roles, resolved for one stack's parameters.
//
// The gate evaluates calls against these documents, never against a copy: the template is read
// from disk and its intrinsic functions (Ref, Fn::Sub, Fn::GetAtt, Fn::If, Fn::Join, Fn::Split,
// Fn::Select, and the conditions: Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition) are
// evaluated here for the values a test stack gives. `!If [Cond, {...}, !Ref AWS::NoValue]` in
// a list (a Statement list, say) drops the element, as CloudFormation does.

import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';

/** The functions (and the forwarder) and the role each runs as. */
export const ROLE_OF = {
  allocate: 'AllocateRole',
  release: 'ReleaseRole',
  'sync-targets': 'SyncTargetsRole',
  sweep: 'SweepRole',
  pool: 'PoolRole',
  reachable: 'ReachableRole',
  forwarder: 'ForwarderRole',
  // `kubectl nlb-pool` (cli/), as an operator who assumed the stack's read-only role.
  operator: 'OperatorRole',
};

// The CloudFormation short forms as tagged YAML nodes -> their long form objects.
const SHORT_FORMS = ['Ref', 'Sub', 'GetAtt', 'If', 'Join', 'Split', 'Equals', 'Not', 'And', 'Or',
  'Select', 'EachMemberEquals', 'Condition', 'ImportValue', 'FindInMap', 'Base64', 'GetAZs'];

function customTags() {
  return SHORT_FORMS.flatMap((name) => {
    const key = name === 'Ref' || name === 'Condition' ? name : `Fn::${name}`;
    const wrap = (value) => ({ [key]: value });
    return [
      { tag: `!${name}`, resolve: (str) => wrap(name === 'GetAtt' ? str.split('.') : str) },
      { tag: `!${name}`, collection: 'seq', resolve: (seq) => wrap(seq.toJSON()) },
      { tag: `!${name}`, collection: 'map', resolve: (map) => wrap(map.toJSON()) },
    ];
  });
}

/** Reads a CloudFormation YAML template into plain objects (long-form intrinsics). */
export function readTemplate(path) {
  const doc = parseDocument(readFileSync(path, 'utf8'), { customTags: customTags() });
  if (doc.errors.length > 0) {
    throw new Error(`reading ${path}: ${doc.errors.map((e) => e.message).join('; ')}`);
  }
  return doc.toJS({ maxAliasCount: -1 });
}

/**
 * The values of one stack, as the template's functions see them.
 * @typedef {object} StackValues
 * @property {Record<string, string|string[]>} parameters  template parameters (lists as arrays)
 * @property {string} accountId
 * @property {string} region
 * @property {string} stackName
 * @property {Record<string, string>} refs       `Ref` of resources (e.g. ClaimsTable -> table name)
 * @property {Record<string, string>} attributes `GetAtt` of resources, keyed `Resource.Attr`
 */

/** Evaluates intrinsic functions of `node` for `stack`. */
export function resolve(node, stack, template) {
  const r = (n) => resolve(n, stack, template);
  if (Array.isArray(node)) return node.map(r).filter((v) => v !== NO_VALUE);
  if (node === null || typeof node !== 'object') return node;
  const keys = Object.keys(node);
  if (keys.length === 1) {
    const [key] = keys;
    const arg = node[key];
    switch (key) {
      case 'Ref': return ref(arg, stack, template);
      case 'Fn::GetAtt': return getAtt(Array.isArray(arg) ? arg : String(arg).split('.'), stack);
      case 'Fn::Sub': return sub(arg, stack, template);
      case 'Fn::Join': { const [sep, list] = arg; return r(list).flat().join(sep); }
      case 'Fn::Split': { const [sep, text] = arg; return String(r(text)).split(sep); }
      case 'Fn::Select': { const [i, list] = arg; return r(list)[Number(r(i))]; }
      case 'Fn::If': {
        const [cond, yes, no] = arg;
        return r(condition(cond, stack, template) ? yes : no);
      }
      case 'Fn::Equals': { const [a, b] = r(arg); return JSON.stringify(a) === JSON.stringify(b); }
      case 'Fn::Not': return !r(arg[0]);
      case 'Fn::And': return r(arg).every(Boolean);
      case 'Fn::Or': return r(arg).some(Boolean);
      case 'Condition': return condition(arg, stack, template);
      default: break;
    }
    if (key.startsWith('Fn::')) throw new Error(`template function ${key} is not supported by the gate`);
  }
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    const value = r(v);
    if (value !== NO_VALUE) out[k] = value;
  }
  return out;
}

const NO_VALUE = Symbol('AWS::NoValue');

function condition(name, stack, template) {
  const body = template.Conditions?.[name];
  if (body === undefined) throw new Error(`template condition ${name} is not defined`);
  return Boolean(resolve(body, stack, template));
}

function pseudo(name, stack) {
  switch (name) {
    case 'AWS::AccountId': return stack.accountId;
    case 'AWS::Region': return stack.region;
    case 'AWS::Partition': return 'aws';
    case 'AWS::URLSuffix': return 'amazonaws.com';
    case 'AWS::StackName': return stack.stackName;
    case 'AWS::StackId':
      return `arn:aws:cloudformation:${stack.region}:${stack.accountId}:stack/${stack.stackName}/bed`;
    case 'AWS::NoValue': return NO_VALUE;
    default: return undefined;
  }
}

function ref(name, stack, template) {
  const p = pseudo(name, stack);
  if (p !== undefined) return p;
  if (template.Parameters?.[name] !== undefined) {
    const given = stack.parameters[name];
    // CloudFormation's parameter values are text (a list parameter's members too), whatever
    // JSON type a stack registration gives: `!Equals [!Ref ManagedNlbMax, "0"]` compares text.
    if (given !== undefined) return Array.isArray(given) ? given.map(String) : String(given);
    const def = template.Parameters[name].Default;
    if (def === undefined) throw new Error(`template parameter ${name} has no value for this stack`);
    return template.Parameters[name].Type === 'CommaDelimitedList' ? String(def).split(',') : String(def);
  }
  if (stack.refs[name] !== undefined) return stack.refs[name];
  if (template.Resources?.[name] !== undefined) {
    // Ref of a resource whose value no policy evaluated here depends on (a role's ARN, say):
    // a placeholder that cannot match a real resource.
    return `unresolved-ref:${name}`;
  }
  throw new Error(`Ref ${name}: no such parameter or resource`);
}

function getAtt([resource, attribute], stack) {
  const value = stack.attributes[`${resource}.${attribute}`];
  return value ?? `unresolved-getatt:${resource}.${attribute}`;
}

function sub(arg, stack, template) {
  const [text, vars] = Array.isArray(arg) ? arg : [arg, {}];
  const local = Object.fromEntries(
    Object.entries(vars).map(([k, v]) => [k, resolve(v, stack, template)]));
  // `${!Literal}` is the text `${Literal}`; `${Name}` a variable, parameter, resource or
  // `Resource.Attribute`.
  return text.replace(/\$\{(!?)([^}]*)\}/g, (_, bang, name) => {
    if (bang) return `\${${name}}`;
    if (local[name] !== undefined) return String(local[name]);
    if (name.includes('.')) return String(getAtt(name.split('.'), stack));
    const value = ref(name, stack, template);
    return Array.isArray(value) ? value.join(',') : String(value);
  });
}

/**
 * The identity policies of `role`, resolved: its inline `Policies`, the template's
 * `AWS::IAM::Policy` resources naming it in `Roles` (inline policies too), and the template's
 * own `AWS::IAM::ManagedPolicy` resources it lists. AWS-managed policy ARNs are left out: those
 * used, AWSLambdaBasicExecutionRole and (in a VPC) AWSLambdaVPCAccessExecutionRole, grant
 * CloudWatch Logs and the EC2 network interface actions Lambda itself uses, which no code calls.
 * @returns {{name: string, policy: object}[]}
 */
export function rolePolicies(template, role, stack) {
  const res = template.Resources?.[role];
  if (!res || res.Type !== 'AWS::IAM::Role') throw new Error(`template has no role ${role}`);
  // A role the stack's conditions leave out does not exist: it is allowed nothing.
  if (!exists(res, stack, template)) return [];
  const props = res.Properties ?? {};
  const out = [];
  for (const p of chosen(props.Policies, stack, template)) {
    const { PolicyName: name, PolicyDocument: document } = resolve(p, stack, template);
    out.push({ name: `${role}/${name}`, policy: document });
  }
  for (const [id, res] of Object.entries(template.Resources)) {
    if (res.Type !== 'AWS::IAM::Policy' || !exists(res, stack, template)) continue;
    const roles = chosen(res.Properties?.Roles, stack, template);
    if (!roles.some((r) => typeof r === 'object' && r.Ref === role)) continue;
    const { PolicyName: name, PolicyDocument: document } = resolve(
      { PolicyName: res.Properties.PolicyName ?? id, PolicyDocument: res.Properties.PolicyDocument },
      stack, template);
    out.push({ name: `${role}/${name}`, policy: document });
  }
  for (const arn of chosen(props.ManagedPolicyArns, stack, template)) {
    const managed = typeof arn === 'object' && 'Ref' in arn ? template.Resources[arn.Ref] : undefined;
    if (managed?.Type === 'AWS::IAM::ManagedPolicy' && exists(managed, stack, template)) {
      out.push({ name: arn.Ref, policy: resolve(managed.Properties.PolicyDocument, stack, template) });
    }
  }
  return out.map(({ name, policy }) => {
    const normalized = normalizePolicy(policy);
    checkResources(name, normalized);
    return { name, policy: normalized };
  });
}

// Whether a resource is made for this stack (its `Condition` attribute).
function exists(resource, stack, template) {
  return resource.Condition === undefined || condition(resource.Condition, stack, template);
}

// The members of a list property, each `Fn::If` at the top of a member decided (`AWS::NoValue`
// drops it) and the rest left unresolved: a managed policy is found by its `Ref`.
function chosen(list, stack, template) {
  const decide = (node) => {
    if (node !== null && typeof node === 'object' && !Array.isArray(node)
      && Object.keys(node).length === 1 && 'Fn::If' in node) {
      const [cond, yes, no] = node['Fn::If'];
      return decide(condition(cond, stack, template) ? yes : no);
    }
    if (node !== null && typeof node === 'object' && node.Ref === 'AWS::NoValue') return NO_VALUE;
    return node;
  };
  return (list ?? []).map(decide).filter((m) => m !== NO_VALUE);
}

// IAM refuses a policy with an empty Resource (MalformedPolicyDocument: not an ARN, not "*"),
// which an empty CommaDelimitedList parameter gives where a condition does not leave it out:
// the deploy would fail, so the stack is refused here too.
function checkResources(name, policy) {
  [policy.Statement].flat().forEach((statement, i) => {
    for (const key of ['Resource', 'NotResource']) {
      if (statement[key] === undefined) continue;
      const resources = [statement[key]].flat();
      if (resources.length === 0 || resources.some((r) => typeof r !== 'string' || r === '')) {
        throw new Error(`${name}:${statement.Sid ?? `#${i}`} resolves to ${key} ${
          JSON.stringify(statement[key])} for this stack; IAM would refuse the policy`);
      }
    }
  });
}

// A policy document written as text (`!Sub |` JSON) is parsed; sids are kept for explanations.
function normalizePolicy(policy) {
  return typeof policy === 'string' ? JSON.parse(policy) : policy;
}
