/**
 * Test harness: a NATS server (with JetStream and a WebSocket listener) for one test file.
 *
 * If env `NATS_URL` is set, that server is used and `stop()` is a no-op (the lattice name from
 * {@link uniqueLattice} keeps concurrent test runs apart). Otherwise a throwaway nats-server is
 * started with a temp store dir, removed again by `stop()`.
 */
import { startNatsServer, type NatsServerOptions } from "../lattice/nats-server.ts";

/** A NATS server for tests. */
export interface TestNats {
  /** Client URL, e.g. `"nats://127.0.0.1:40211"`. */
  readonly url: string;
  /** WebSocket URL (`"ws://…"`), if the server has a WebSocket listener (always when we started it; from env `NATS_WS_URL` otherwise). */
  readonly websocketUrl?: string;
  /** `true` if the server came from env `NATS_URL` (shared; do not assume it is empty). */
  readonly external: boolean;
  /** Stop the server if we started it (removing its temp dirs); no-op for an external one. Never rejects. */
  stop(): Promise<void>;
}

/** Options for {@link startTestNats}. */
export interface TestNatsOptions {
  /** Ignore env `NATS_URL` and always start a private server. Default `false`. */
  private?: boolean;
  /** Open a WebSocket listener on a free port. Default `true`. */
  websocket?: boolean;
  /** Passed through to {@link startNatsServer} (e.g. `extraConfig`, `startTimeoutMs`). */
  server?: Omit<NatsServerOptions, "websocketPort">;
}

/**
 * Get a NATS server for a test: env `NATS_URL` if set (handle with a no-op `stop()`), else a fresh
 * local nats-server with JetStream on free ports.
 *
 * @throws {import("../lattice/nats-server.ts").NatsServerError} if a server must be started and cannot be.
 */
export async function startTestNats(opts: TestNatsOptions = {}): Promise<TestNats> {
  const envUrl = process.env["NATS_URL"];
  if (envUrl !== undefined && envUrl !== "" && opts.private !== true) {
    const ws = process.env["NATS_WS_URL"];
    return {
      url: envUrl,
      external: true,
      stop: () => Promise.resolve(),
      ...(ws !== undefined && ws !== "" ? { websocketUrl: ws } : {}),
    };
  }
  const server = await startNatsServer({
    ...opts.server,
    ...(opts.websocket === false ? {} : { websocketPort: 0 }),
  });
  return {
    url: server.url,
    external: false,
    stop: () => server.stop(),
    ...(server.websocketUrl !== undefined ? { websocketUrl: server.websocketUrl } : {}),
  };
}
