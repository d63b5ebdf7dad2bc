// The IAM gate: an HTTP proxy in front of moto that authorizes every AWS call of the functions
// and the forwarder against the policy of that caller's role, as template.yaml defines it.
//
//   node testbed/iam/gate.mjs --port P --upstream http://127.0.0.1:MOTO --template template.yaml
//        [--log FILE]
//
// Who is calling: the SigV4 access key names a registered stack (POST /_gate/stacks), and the
// SDK's app id in the user agent (`app/npp-<function>`, set by the functions themselves) names
// the function, hence its role (a stack's operator key is its OperatorRole whatever the app id:
// an operator's shell). The bed's own fixtures sign with the admin key and no function
// app id; they pass unchecked. Anything else is refused: a function of an unregistered stack,
// an unknown app id, an operation the gate does not model.
//
// A refused call gets AWS's AccessDenied answer in the service's protocol, and is kept for
// GET /_gate/denials?key=KEY (and written to --log) so tests and `make test` can fail naming
// the function, action, resource and what is missing. GET /_gate/unused lists the grants of
// the template that no allowed call needed (usage.mjs), for `make test` to fail on.

import http from 'node:http';
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { authorizationsFor, NotModelled } from './authorizations.mjs';
import { AwsAnswers } from './aws_answers.mjs';
import { evaluate } from './evaluate.mjs';
import { callerOf, parseCall } from './request.mjs';
import { MotoLookups } from './moto.mjs';
import { entryErrorCode, partialPutEvents } from './put_events.mjs';
import { Stacks } from './stacks.mjs';
import { Usage } from './usage.mjs';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    upstream: { type: 'string' },
    template: { type: 'string' },
    log: { type: 'string' },
  },
});
for (const required of ['port', 'upstream', 'template']) {
  if (!args[required]) {
    console.error(`iam gate: --${required} is required`);
    process.exit(2);
  }
}

const upstream = new URL(args.upstream);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const lookups = new MotoLookups(upstream, agent);
const stacks = new Stacks(args.template, lookups);
const awsAnswers = new AwsAnswers(lookups);
const usage = new Usage();
const denials = [];
// Calls on resources that were gone, answered AccessDenied as AWS would (not denials).
const gone = [];
const totals = { checked: 0, denied: 0, admin: 0, gone: 0 };

function record(denial) {
  denials.push(denial);
  if (args.log) appendFileSync(args.log, `${JSON.stringify(denial)}\n`);
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function forward(req, body, res) {
  const up = http.request({
    host: upstream.hostname, port: upstream.port, method: req.method, path: req.url,
    headers: req.headers, agent,
  }, (upRes) => {
    res.writeHead(upRes.statusCode ?? 502, upRes.headers);
    upRes.pipe(res);
  });
  up.on('error', (e) => {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`iam gate: moto did not answer: ${e.message}`);
  });
  up.end(body);
}

// Forwards and keeps moto's whole answer, for calls the gate may answer itself instead.
function send(req, body) {
  return new Promise((resolve, reject) => {
    const up = http.request({
      host: upstream.hostname, port: upstream.port, method: req.method, path: req.url,
      headers: { ...req.headers, 'content-length': String(body.length) }, agent,
    }, (upRes) => {
      const chunks = [];
      upRes.on('data', (c) => chunks.push(c));
      upRes.on('end', () => resolve({
        status: upRes.statusCode ?? 502, headers: upRes.headers, body: Buffer.concat(chunks),
      }));
    });
    up.on('error', reject);
    up.end(body);
  });
}

// A call of anyone (fixtures too) on ELBv2, answered as AWS would where moto would not.
async function elbv2AsAws(req, body, res, call) {
  const answer = await awsAnswers.elbv2(call, () => send(req, body));
  res.writeHead(answer.status, answer.headers ?? { 'content-type': 'text/xml' });
  res.end(answer.body);
}

// An EKS call, with a registered cluster's endpoint and CA where moto makes them up.
async function eksAsAws(req, body, res, call) {
  const answer = await awsAnswers.eks(call, () => send(req, body));
  res.writeHead(answer.status, answer.headers);
  res.end(answer.body);
}

// AccessDenied as each protocol spells it; none of them is retried by the SDKs.
function deny(res, call, message) {
  totals.denied += 1;
  if (call.protocol === 'query') {
    res.writeHead(403, { 'content-type': 'text/xml' });
    res.end(`<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>${
      escapeXml(message)}</Message></Error><RequestId>iam-gate</RequestId></ErrorResponse>`);
    return;
  }
  const type = call.service === 'dynamodb'
    ? 'com.amazon.coral.service#AccessDeniedException' : 'AccessDeniedException';
  res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
  res.end(JSON.stringify({ __type: type, message }));
}

function escapeXml(text) {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function authorize(req, body, res) {
  const call = parseCall(req, body);
  const caller = callerOf(req);
  const pass = () => {
    if (call.service === 'elasticloadbalancing') return elbv2AsAws(req, body, res, call);
    if (call.service === 'eks') return eksAsAws(req, body, res, call);
    return forward(req, body, res);
  };
  if (caller.admin) {
    totals.admin += 1;
    return pass();
  }
  // AWS allows GetCallerIdentity to anyone signed: no policy can deny it (SAM CLI asks it).
  if (call.service === 'sts' && call.operation === 'GetCallerIdentity') return pass();
  const stack = stacks.get(caller.accessKeyId);
  const who = `${caller.function ?? (stack?.fixedRole ? 'an operator' : 'an unknown caller')} (key ${caller.accessKeyId})`;
  const denialOf = (missing, authz) => ({
    key: caller.accessKeyId, function: caller.function, role: stack?.roleOf(caller.function),
    operation: `${call.service}:${call.operation}`, action: authz.action, resource: authz.resource,
    context: authz.context, missing, at: new Date().toISOString(),
  });
  const refuse = (missing, authz = {}) => {
    const denial = denialOf(missing, authz);
    record(denial);
    deny(res, call, `iam gate: ${who} is not authorized to perform ${authz.action ?? denial.operation}${
      authz.resource ? ` on resource ${authz.resource}` : ''}: ${missing}`);
  };
  if (!stack) return refuse(`no stack is registered for access key ${caller.accessKeyId}`);
  const role = stack.roleOf(caller.function);
  if (!role) return refuse(`app id ${caller.appId ?? '(none)'} names no function of the stack`);
  let authorizations;
  try {
    authorizations = await authorizationsFor(call, lookups);
  } catch (e) {
    if (e instanceof NotModelled) return refuse(`the gate has no authorization model for ${e.message}`);
    throw e;
  }
  const perEntry = call.service === 'events' && call.operation === 'PutEvents';
  const refusedEntries = new Map();
  for (const [i, authz] of authorizations.entries()) {
    totals.checked += 1;
    const verdict = await evaluate(stack.policies(role), stack.principal(role), authz, call.accountId);
    if (verdict.allowed) {
      await usage.noteAllowed(stack.policies(role), stack.principal(role), authz, call.accountId);
      continue;
    }
    // A resource that is gone has no tags, and AWS evaluates the call with none: a grant
    // conditioned on aws:ResourceTag refuses it (AccessDenied, not NotFound). That is AWS's
    // answer, not a defect of the policy: answered, kept apart (GET /_gate/gone), not a denial.
    // Where the policy allows the call all the same (by ARN), moto's NotFound answers.
    if (authz.missing) {
      totals.gone += 1;
      gone.push({ key: caller.accessKeyId, function: caller.function, action: authz.action,
        resource: authz.resource, at: new Date().toISOString() });
      return deny(res, call, `iam gate: ${who} is not authorized to perform ${authz.action} on resource ${
        authz.resource} (it no longer exists, so it has no tags)`);
    }
    const code = perEntry ? entryErrorCode(verdict.missing) : null;
    if (code === null) return refuse(`${verdict.result}: ${verdict.missing}`, authz);
    record(denialOf(`${code} (entry ${i}): ${verdict.missing}`, authz));
    refusedEntries.set(i, { code, message: `iam gate: ${who} may not put this entry: ${verdict.missing}` });
  }
  if (refusedEntries.size === 0) return pass();
  totals.denied += refusedEntries.size;
  const answer = await partialPutEvents(call.json, refusedEntries, (text) => send(req, Buffer.from(text)));
  res.writeHead(answer.status, answer.headers);
  return res.end(answer.body);
}

async function admin(req, body, res, url) {
  const reply = (status, value) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  if (req.method === 'POST' && url.pathname === '/_gate/stacks') {
    const spec = JSON.parse(body.toString('utf8'));
    const registered = await stacks.register(spec);
    const stack = stacks.get(spec.accessKeyId);
    for (const role of registered.roles) usage.noteRole(role, stack.policies(role));
    return reply(200, registered);
  }
  // AWS's answer for an EKS cluster: { region, name, endpoint, caData } (aws_answers.mjs).
  if (req.method === 'POST' && url.pathname === '/_gate/eks-clusters') {
    awsAnswers.registerCluster(JSON.parse(body.toString('utf8')));
    return reply(200, { registered: true });
  }
  // The grants of the registered stacks' roles that no allowed call needed (usage.mjs).
  if (req.method === 'GET' && url.pathname === '/_gate/unused') return reply(200, usage.unused());
  if (req.method === 'GET' && url.pathname === '/_gate/denials') {
    const key = url.searchParams.get('key');
    return reply(200, key ? denials.filter((d) => d.key === key) : denials);
  }
  if (req.method === 'GET' && url.pathname === '/_gate/gone') {
    const key = url.searchParams.get('key');
    return reply(200, key ? gone.filter((d) => d.key === key) : gone);
  }
  if (req.method === 'GET' && url.pathname === '/_gate/health') return reply(200, totals);
  return reply(404, { error: `no such gate endpoint ${url.pathname}` });
}

const server = http.createServer(async (req, res) => {
  try {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://gate');
    if (url.pathname.startsWith('/_gate/')) return await admin(req, body, res, url);
    // moto's own API (reset, health): not AWS, no identity.
    if (url.pathname.startsWith('/moto-api')) return forward(req, body, res);
    return await authorize(req, body, res);
  } catch (e) {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(`iam gate failed: ${e.stack ?? e}`);
    return undefined;
  }
});
server.keepAliveTimeout = 65_000;
server.listen(Number(args.port), args.host, () => {
  console.log(`iam gate on http://${args.host}:${args.port} -> ${upstream.origin}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
