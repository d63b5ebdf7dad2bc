// Reads an AWS API request as the gate needs it: service, region, operation, parameters, and
// who signed it.

/** moto's account: every ARN it makes names this one. */
export const ACCOUNT_ID = '123456789012';

/** The bed's own access key (testbed::Bed::sdk_config); fixtures sign with it. */
export const ADMIN_ACCESS_KEY = 'testing';

/** The prefix of the functions' SDK app id: `npp-allocate`, `npp-forwarder`, ... */
export const APP_ID_PREFIX = 'npp-';

function credentialScope(req) {
  const auth = req.headers.authorization ?? '';
  const m = auth.match(/Credential=([^/,\s]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request/);
  if (!m) return null;
  return { accessKeyId: m[1], region: m[3], service: m[4] };
}

/** Service, region, operation and parameters of one request. */
export function parseCall(req, body) {
  const scope = credentialScope(req) ?? { region: 'us-east-1', service: 'unknown' };
  const target = req.headers['x-amz-target'];
  const base = { service: scope.service, region: scope.region, accountId: ACCOUNT_ID };
  if (typeof target === 'string') {
    let json = {};
    try { json = JSON.parse(body.toString('utf8') || '{}'); } catch { json = {}; }
    return { ...base, protocol: 'json', operation: target.split('.').pop(), json };
  }
  const url = new URL(req.url ?? '/', 'http://gate');
  // REST protocols (EKS): the operation is the method and path.
  if (scope.service === 'eks') {
    return { ...base, protocol: 'rest-json', operation: `${req.method} ${url.pathname}`, method: req.method, path: url.pathname };
  }
  const params = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
  for (const [k, v] of url.searchParams) params[k] ??= v;
  return { ...base, protocol: 'query', operation: params.Action ?? 'unknown', params };
}

/** Who signed the request, and which function (by its SDK app id) sent it. */
export function callerOf(req) {
  const accessKeyId = credentialScope(req)?.accessKeyId ?? '(unsigned)';
  const agents = `${req.headers['x-amz-user-agent'] ?? ''} ${req.headers['user-agent'] ?? ''}`;
  const appId = agents.match(/(?:^|\s)app\/(\S+)/)?.[1];
  const fn = appId?.startsWith(APP_ID_PREFIX) ? appId.slice(APP_ID_PREFIX.length) : undefined;
  return { accessKeyId, appId, function: fn, admin: accessKeyId === ADMIN_ACCESS_KEY && !fn };
}
