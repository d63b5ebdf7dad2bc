// PutEvents refused entry by entry, as AWS refuses it: HTTP 200, FailedEntryCount, an error
// code per refused entry, the others sent on in order.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { entryErrorCode, partialPutEvents } from '../put_events.mjs';

test('a refused condition names the key it failed; no grant at all refuses the whole call', () => {
  assert.equal(entryErrorCode('statements matching action and resource: P:S fails ForAllValues:StringEquals events:source ["a"]'),
    'NotAuthorizedForSourceException');
  assert.equal(entryErrorCode('statements matching action and resource: P:S fails ForAllValues:StringEquals events:detail-type ["a"]'),
    'NotAuthorizedForDetailTypeException');
  assert.equal(entryErrorCode('no statement allows events:PutEvents on arn:aws:events:r:1:event-bus/x'), null);
});

test('the entries allowed go on; the answer lists every entry in request order', async () => {
  // GIVEN three entries, the middle one refused
  const json = { Entries: [{ Source: 'a' }, { Source: 'evil' }, { Source: 'c' }] };
  const refused = new Map([[1, { code: 'NotAuthorizedForSourceException', message: 'no' }]]);
  let sent;
  const send = async (text) => {
    sent = JSON.parse(text);
    return { status: 200, headers: {}, body: Buffer.from(JSON.stringify({
      FailedEntryCount: 0, Entries: [{ EventId: 'e1' }, { EventId: 'e3' }] })) };
  };

  // WHEN the gate answers
  const answer = await partialPutEvents(json, refused, send);

  // THEN the bus got the two others, and the caller a 200 naming the refused one
  assert.deepEqual(sent.Entries.map((e) => e.Source), ['a', 'c']);
  assert.equal(answer.status, 200);
  const body = JSON.parse(answer.body);
  assert.equal(body.FailedEntryCount, 1);
  assert.deepEqual(body.Entries, [{ EventId: 'e1' },
    { ErrorCode: 'NotAuthorizedForSourceException', ErrorMessage: 'no' }, { EventId: 'e3' }]);
});

test('every entry refused: nothing reaches the bus, still HTTP 200', async () => {
  const refused = new Map([[0, { code: 'NotAuthorizedForDetailTypeException', message: 'no' }]]);
  const answer = await partialPutEvents({ Entries: [{ Source: 'a' }] }, refused,
    async () => assert.fail('nothing is sent'));
  assert.equal(answer.status, 200);
  assert.equal(JSON.parse(answer.body).FailedEntryCount, 1);
});
