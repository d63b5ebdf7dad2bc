// PutEvents refused as AWS refuses it: entry by entry. A role allowed events:PutEvents on the
// bus but not an entry's source or detail-type gets HTTP 200, `FailedEntryCount`, and for
// that entry `NotAuthorizedForSourceException` or `NotAuthorizedForDetailTypeException`; the
// other entries go on to the bus. Only a role with no grant of PutEvents on the bus at all is
// refused the whole call (AccessDeniedException).

/** The per-entry error code for a denial's explanation, or null for a request-level denial. */
export function entryErrorCode(missing) {
  if (missing.startsWith('no statement allows')) return null;
  if (missing.includes('events:source')) return 'NotAuthorizedForSourceException';
  if (missing.includes('events:detail-type')) return 'NotAuthorizedForDetailTypeException';
  return null;
}

/**
 * The answer to a PutEvents request whose entries `refused` (index -> {code, message}) were
 * refused: the others are sent on with `send(bodyText)` (resolving to moto's {status, headers,
 * body}), and the result entries are put back in request order.
 */
export async function partialPutEvents(json, refused, send) {
  const entries = json.Entries ?? [];
  const kept = entries.filter((_, i) => !refused.has(i));
  let accepted = [];
  let failedUpstream = 0;
  if (kept.length > 0) {
    const answer = await send(JSON.stringify({ ...json, Entries: kept }));
    if (answer.status !== 200) return answer;
    const parsed = JSON.parse(answer.body.toString('utf8'));
    accepted = parsed.Entries ?? [];
    failedUpstream = parsed.FailedEntryCount ?? 0;
  }
  let next = 0;
  const results = entries.map((_, i) => {
    const r = refused.get(i);
    if (r) return { ErrorCode: r.code, ErrorMessage: r.message };
    const out = accepted[next] ?? { ErrorCode: 'InternalFailure', ErrorMessage: 'no result' };
    next += 1;
    return out;
  });
  const body = JSON.stringify({ FailedEntryCount: refused.size + failedUpstream, Entries: results });
  return { status: 200, headers: { 'content-type': 'application/x-amz-json-1.1' }, body };
}
