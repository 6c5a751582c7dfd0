/**
 * Responder process for the raw NATS baseline: `node bench/raw-nats-responder.ts URL SUBJECT`.
 * Replies to every request on SUBJECT with a 16-byte payload; prints "ready" on stdout once
 * subscribed; exits on SIGTERM/SIGINT or when stdin closes.
 */
import { connect } from "@nats-io/transport-node";

const [url, subject] = process.argv.slice(2);
if (url === undefined || subject === undefined) {
  console.error("usage: node bench/raw-nats-responder.ts URL SUBJECT");
  process.exit(2);
}

const nc = await connect({ servers: url });
const reply = new Uint8Array(16).fill(0x72);
nc.subscribe(subject, { callback: (_err, msg) => void msg.respond(reply) });
await nc.flush();
process.stdout.write("ready\n");

const shutdown = (): void => {
  nc.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
process.stdin.on("end", shutdown);
process.stdin.resume();
