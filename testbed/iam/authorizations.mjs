// What AWS authorizes for one API request: a list of (IAM action, resource ARN, context keys).
//
// This is the gate's model of AWS's authorization, written from the Service Authorization
// Reference and the services' tagging docs. An operation the model does not know is refused
// ("not modelled"), so a new call in the code cannot slip through unchecked.
//
// moto differs from AWS in ARNs: network load balancers and their listeners read
// `loadbalancer/app/...` and `listener/app/...` in moto, `/net/` in AWS. Every ARN is put in
// AWS's form (by the load balancer's Type) before it is evaluated.

/** A fake resource id for what a create request is about to make (AWS uses the new ARN). */
export const NEW_ID = '0000000000000000';

/**
 * @typedef {object} Authorization
 * @property {string} action    e.g. elasticloadbalancing:CreateListener
 * @property {string} resource  ARN in AWS's form, or "*"
 * @property {Record<string, string|string[]>} context  condition keys of the request
 */

/**
 * @typedef {object} Lookups  read-only views of moto, for what AWS knows about a resource
 * @property {(arn: string) => Promise<Record<string,string>|null>} tags  null: no such resource
 * @property {(lbArn: string) => Promise<string|null>} loadBalancerType   network/application
 */

/** The authorizations an AWS request needs. Throws `NotModelled` for unknown operations. */
export async function authorizationsFor(call, lookups) {
  switch (call.service) {
    case 'elasticloadbalancing': return elbv2(call, lookups);
    case 'dynamodb': return dynamodb(call);
    case 'events': return events(call);
    case 'acm': return acm(call);
    case 'sqs': return sqs(call);
    case 'ssm': return ssm(call);
    case 'eks': return eks(call);
    default: throw new NotModelled(`${call.service}:${call.operation}`);
  }
}

/** An operation the gate has no authorization model for. */
export class NotModelled extends Error {}

// ---------------------------------------------------------------- ELBv2 (query protocol)

const ELB_DESCRIBE = new Set(['DescribeLoadBalancers', 'DescribeListeners', 'DescribeTargetGroups',
  'DescribeTags', 'DescribeTargetHealth', 'DescribeLoadBalancerAttributes',
  'DescribeTargetGroupAttributes', 'DescribeListenerAttributes', 'DescribeListenerCertificates',
  'DescribeSSLPolicies']);

const ON_TARGET_GROUP = new Set(['ModifyTargetGroup', 'RegisterTargets', 'DeregisterTargets',
  'DeleteTargetGroup', 'ModifyTargetGroupAttributes']);

const ON_LISTENER = new Set(['ModifyListener', 'DeleteListener', 'ModifyListenerAttributes',
  'AddListenerCertificates', 'RemoveListenerCertificates']);

const ON_LOAD_BALANCER = new Set(['DeleteLoadBalancer', 'ModifyLoadBalancerAttributes']);

/** The ARN segment of each load balancer Type (CreateLoadBalancer's Type parameter). */
const LB_KIND = { network: 'net', application: 'app', gateway: 'gwy' };

async function elbv2(call, lookups) {
  const p = call.params;
  const op = call.operation;
  const action = `elasticloadbalancing:${op}`;
  if (ELB_DESCRIBE.has(op)) return [{ action, resource: '*', context: {} }];
  const region = call.region;
  const account = call.accountId;
  if (op === 'CreateTargetGroup') {
    const arn = `arn:aws:elasticloadbalancing:${region}:${account}:targetgroup/${p.Name}/${NEW_ID}`;
    return withTagOnCreate({ action, resource: arn, context: requestTags(p) }, 'CreateTargetGroup', p);
  }
  if (op === 'CreateLoadBalancer') {
    // Authorized on the load balancer about to be made: its ARN names its type (`net/` for
    // Type network, `app/` for application, the default; `gwy/` for gateway).
    const kind = LB_KIND[p.Type ?? 'application'];
    if (!kind) throw new NotModelled(`CreateLoadBalancer of Type ${p.Type}`);
    const arn = `arn:aws:elasticloadbalancing:${region}:${account}:loadbalancer/${kind}/${p.Name}/${NEW_ID}`;
    return withTagOnCreate({ action, resource: arn, context: requestTags(p) }, 'CreateLoadBalancer', p);
  }
  if (op === 'CreateListener') {
    if (!p.LoadBalancerArn) throw new NotModelled('CreateListener without LoadBalancerArn');
    const type = await lookups.loadBalancerType(p.LoadBalancerArn);
    // A load balancer that is gone has no tags and no type to read: every one the project
    // addresses is a network load balancer, so its ARN is judged in AWS's `/net/` form.
    if (type === null) {
      const gone = p.LoadBalancerArn.replace(':loadbalancer/app/', ':loadbalancer/net/');
      return [{ action, resource: gone, context: requestTags(p), missing: true }];
    }
    const lb = type === 'network'
      ? p.LoadBalancerArn.replace(':loadbalancer/app/', ':loadbalancer/net/') : p.LoadBalancerArn;
    const listener = lb.replace(':loadbalancer/', ':listener/') + `/${NEW_ID}`;
    // AWS evaluates CreateListener with both the load balancer's tags (aws:ResourceTag/*) and
    // the new listener's (aws:RequestTag/*, aws:TagKeys).
    const lbTags = resourceTags(await lookups.tags(p.LoadBalancerArn));
    return [
      { action, resource: lb, context: { ...lbTags, ...requestTags(p) } },
      ...tagOnCreate(listener, 'CreateListener', p),
    ];
  }
  if (ON_LOAD_BALANCER.has(op)) return [await onExisting(action, p.LoadBalancerArn, lookups)];
  if (ON_TARGET_GROUP.has(op)) return [await onExisting(action, p.TargetGroupArn, lookups)];
  if (ON_LISTENER.has(op)) return [await onExisting(action, p.ListenerArn, lookups)];
  if (op === 'AddTags' || op === 'RemoveTags') {
    const arns = memberList(p, 'ResourceArns');
    const context = op === 'AddTags' ? requestTags(p) : { 'aws:TagKeys': memberList(p, 'TagKeys') };
    return Promise.all(arns.map(async (arn) => {
      const a = await onExisting(action, arn, lookups);
      return { ...a, context: { ...a.context, ...context } };
    }));
  }
  throw new NotModelled(action);
}

function withTagOnCreate(create, createAction, p) {
  return [create, ...tagOnCreate(create.resource, createAction, p)];
}

// Tags given to a create call are authorized as AddTags on the new resource, with
// elasticloadbalancing:CreateAction naming the create; without tags AddTags is not evaluated.
function tagOnCreate(resource, createAction, p) {
  if (memberList(p, 'Tags', 'Key').length === 0) return [];
  return [{
    action: 'elasticloadbalancing:AddTags',
    resource,
    context: { ...requestTags(p), 'elasticloadbalancing:CreateAction': createAction },
  }];
}

async function onExisting(action, rawArn, lookups) {
  if (!rawArn) throw new NotModelled(`${action} without a resource ARN`);
  const resource = await awsArn(rawArn, lookups);
  const tags = await lookups.tags(rawArn);
  return { action, resource, context: resourceTags(tags), missing: tags === null };
}

// A resource's tags as the condition keys AWS gives them.
function resourceTags(tags) {
  const context = {};
  for (const [k, v] of Object.entries(tags ?? {})) {
    context[`aws:ResourceTag/${k}`] = v;
    context[`elasticloadbalancing:ResourceTag/${k}`] = v;
  }
  return context;
}

function requestTags(p) {
  const keys = memberList(p, 'Tags', 'Key');
  const values = memberList(p, 'Tags', 'Value');
  const context = {};
  keys.forEach((k, i) => { context[`aws:RequestTag/${k}`] = values[i] ?? ''; });
  if (keys.length > 0) context['aws:TagKeys'] = keys;
  return context;
}

/** `Name.member.N[.field]` values of a query request, in order. */
export function memberList(params, name, field) {
  const out = [];
  for (let i = 1; ; i += 1) {
    const key = field ? `${name}.member.${i}.${field}` : `${name}.member.${i}`;
    if (params[key] === undefined) return out;
    out.push(params[key]);
  }
}

/** Any ELBv2 ARN in AWS's form. */
export async function awsArn(arn, lookups) {
  const m = arn.match(/^(arn:[^:]+:elasticloadbalancing:[^:]+:[^:]+:)(loadbalancer|listener)\/app\/([^/]+)\/([^/]+)(\/.*)?$/);
  if (!m) return arn;
  const [, prefix, kind, name, id, rest = ''] = m;
  const type = await lookups.loadBalancerType(`${prefix}loadbalancer/app/${name}/${id}`);
  return type === 'network' ? `${prefix}${kind}/net/${name}/${id}${rest}` : arn;
}

// ---------------------------------------------------------------- DynamoDB (JSON 1.0)

// Transactions are authorized per item, as the item's own action; there is no IAM action
// named TransactWriteItems.
const TRANSACT_ITEM_ACTION = { Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem',
  ConditionCheck: 'ConditionCheckItem', Get: 'GetItem' };

function dynamodb(call) {
  const body = call.json ?? {};
  const table = (name) => `arn:aws:dynamodb:${call.region}:${call.accountId}:table/${name}`;
  const op = call.operation;
  if (op === 'TransactWriteItems' || op === 'TransactGetItems') {
    return (body.TransactItems ?? []).flatMap((item) => Object.entries(item).map(([kind, v]) => {
      const itemAction = TRANSACT_ITEM_ACTION[kind];
      if (!itemAction) throw new NotModelled(`dynamodb:${op} item ${kind}`);
      return { action: `dynamodb:${itemAction}`, resource: table(v.TableName), context: {} };
    }));
  }
  if (op === 'BatchGetItem' || op === 'BatchWriteItem') {
    return Object.keys(body.RequestItems ?? {}).map((name) => (
      { action: `dynamodb:${op}`, resource: table(name), context: {} }));
  }
  if (typeof body.TableName === 'string') {
    return [{ action: `dynamodb:${op}`, resource: table(body.TableName), context: {} }];
  }
  throw new NotModelled(`dynamodb:${op}`);
}

// ---------------------------------------------------------------- EventBridge (JSON 1.1)

function events(call) {
  const body = call.json ?? {};
  if (call.operation !== 'PutEvents') throw new NotModelled(`events:${call.operation}`);
  return (body.Entries ?? []).map((entry) => {
    const bus = entry.EventBusName ?? 'default';
    const resource = bus.startsWith('arn:')
      ? bus : `arn:aws:events:${call.region}:${call.accountId}:event-bus/${bus}`;
    return {
      action: 'events:PutEvents',
      resource,
      context: { 'events:source': entry.Source ?? '', 'events:detail-type': entry.DetailType ?? '' },
    };
  });
}

// ---------------------------------------------------------------- ACM (JSON 1.1)

// Certificate reads are authorized on the certificate named (ARNs come from the request as
// given; one of another account or region is that account's or region's resource).
function acm(call) {
  const body = call.json ?? {};
  if (call.operation !== 'DescribeCertificate' || typeof body.CertificateArn !== 'string') {
    throw new NotModelled(`acm:${call.operation}`);
  }
  return [{ action: 'acm:DescribeCertificate', resource: body.CertificateArn, context: {} }];
}

// ---------------------------------------------------------------- SQS (JSON 1.0)

// A queue's reads are authorized on the queue its URL names (`.../<account>/<name>`).
function sqs(call) {
  const body = call.json ?? {};
  if (call.operation !== 'GetQueueAttributes' || typeof body.QueueUrl !== 'string') {
    throw new NotModelled(`sqs:${call.operation}`);
  }
  const [account, name] = body.QueueUrl.replace(/\/+$/, '').split('/').slice(-2);
  return [{ action: 'sqs:GetQueueAttributes', resource: `arn:aws:sqs:${call.region}:${account}:${name}`, context: {} }];
}

// ---------------------------------------------------------------- SSM (JSON 1.1)

// A parameter is authorized on its ARN: `parameter/` and its name without the leading slash.
function ssm(call) {
  const body = call.json ?? {};
  if (call.operation !== 'GetParameter' || typeof body.Name !== 'string') {
    throw new NotModelled(`ssm:${call.operation}`);
  }
  const name = body.Name.replace(/^\//, '');
  return [{ action: 'ssm:GetParameter', resource: `arn:aws:ssm:${call.region}:${call.accountId}:parameter/${name}`, context: {} }];
}

// ---------------------------------------------------------------- EKS (REST JSON)

// DescribeCluster is `GET /clusters/<name>`, authorized on the cluster.
function eks(call) {
  const m = call.method === 'GET' ? call.path.match(/^\/clusters\/([^/]+)$/) : null;
  if (!m) throw new NotModelled(`eks:${call.operation}`);
  const name = decodeURIComponent(m[1]);
  return [{ action: 'eks:DescribeCluster', resource: `arn:aws:eks:${call.region}:${call.accountId}:cluster/${name}`, context: {} }];
}
