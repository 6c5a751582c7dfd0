// The counter example component. On every HTTP request it increments the key `hits` of bucket `counter` twice:
// once through its key-value link named `default` and once through its link named `cache`, and answers
// {"default": <count>, "cache": <count>}. It never names a provider: the links decide where each call goes
// (`default` → Redis or NATS KV, `cache` → the in-memory provider in examples/counter/app.yaml), so re-pointing a
// link shows in the numbers at once. The link name is chosen with wasmcloud:bus/lattice set-link-name; each request
// starts on `default`, so it counts there first and then switches to `cache`.
// Built with componentize-js (StarlingMonkey) by src/demo/build.ts.
import { Fields, OutgoingBody, OutgoingResponse, ResponseOutparam } from 'wasi:http/types@0.2.12';
import { open } from 'wasi:keyvalue/store@0.2.0-draft';
import { increment } from 'wasi:keyvalue/atomics@0.2.0-draft';
import { CallTargetInterface, setLinkName } from 'wasmcloud:bus/lattice@1.0.0';

const encoder = new TextEncoder();
const BUCKET = 'counter';
const KEY = 'hits';

function describe(e) {
  const p = e && e.payload;
  if (p && typeof p === 'object' && 'tag' in p) return p.val === undefined ? p.tag : `${p.tag}: ${p.val}`;
  return e && e.message ? e.message : String(e);
}

/**
 * Increments the counter through the key-value link named `linkName`. Every call into the component starts on the
 * link named `default`, so only another name needs `set-link-name` (each import call costs the guest tens of µs).
 */
function count(linkName) {
  if (linkName !== 'default') {
    setLinkName(linkName, [
      new CallTargetInterface('wasi', 'keyvalue', 'store'),
      new CallTargetInterface('wasi', 'keyvalue', 'atomics'),
    ]);
  }
  const bucket = open(BUCKET);
  try {
    return Number(increment(bucket, KEY, 1n));
  } finally {
    bucket[Symbol.dispose]?.();
  }
}

function respond(responseOut, status, text) {
  const headers = new Fields();
  headers.append('content-type', encoder.encode(status === 200 ? 'application/json' : 'text/plain; charset=utf-8'));
  const response = new OutgoingResponse(headers);
  response.setStatusCode(status);
  const body = response.body();
  const stream = body.write();
  stream.blockingWriteAndFlush(encoder.encode(text));
  stream[Symbol.dispose]?.();
  OutgoingBody.finish(body, undefined);
  ResponseOutparam.set(responseOut, { tag: 'ok', val: response });
}

export const incomingHandler = {
  handle(_request, responseOut) {
    let which = 'default';
    try {
      const counts = { default: count('default') };
      which = 'cache';
      counts.cache = count('cache');
      respond(responseOut, 200, `${JSON.stringify(counts)}\n`);
    } catch (e) {
      respond(responseOut, 500, `counting through the ${which} link failed: ${describe(e)}\n`);
    }
  },
};
