/** Benchmark module "raw-nats": the baseline (see raw-nats.ts). */
import { measureRawNats } from "./raw-nats.ts";

export default async function rawNats(ctx: { natsUrl: string }): Promise<Record<string, unknown>> {
  const r = await measureRawNats(ctx.natsUrl);
  return {
    payloadBytes: r.payloadBytes,
    serial: r.serial,
    serialCpu: r.serialCpu,
    pipelined: r.pipelined,
  };
}
