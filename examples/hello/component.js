// The hello example component: answers every HTTP request with a greeting that names the request.
// Built with componentize-js (StarlingMonkey) by src/demo/build.ts; the guest exports wasi:http/incoming-handler
// directly (a fetch-event handler hangs when the instance is reused, see the toolchain notes).
import { Fields, OutgoingBody, OutgoingResponse, ResponseOutparam } from 'wasi:http/types@0.2.12';

const encoder = new TextEncoder();

export const incomingHandler = {
  handle(request, responseOut) {
    const method = request.method();
    const name = method.tag === 'other' ? method.val : method.tag.toUpperCase();
    const text = `Hello from Trellis! You asked for ${name} ${request.pathWithQuery() ?? '/'}\n`;
    const headers = new Fields();
    headers.append('content-type', encoder.encode('text/plain; charset=utf-8'));
    const response = new OutgoingResponse(headers);
    response.setStatusCode(200);
    const body = response.body();
    const stream = body.write();
    stream.blockingWriteAndFlush(encoder.encode(text));
    stream[Symbol.dispose]?.();
    OutgoingBody.finish(body, undefined);
    ResponseOutparam.set(responseOut, { tag: 'ok', val: response });
  },
};
