/**
 * The example applications of the demo: which manifests, with which addresses, and how they are deployed — with the
 * same library `trellis app deploy` uses (src/app). Shared by the demo and its end-to-end test.
 * @module
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { deployApp, parseManifestText, undeployApp, type DeployResult } from "../app/index.ts";
import type { CtlClient } from "../control/client.ts";
import { ErrorCode, TrellisError } from "../core/errors.ts";
import { EXAMPLES_DIR } from "./build.ts";

/** The hello app's HTTP address in examples/hello/app.yaml. */
export const HELLO_ADDRESS = "127.0.0.1:8080";
/** The counter app's HTTP address in examples/counter/app*.yaml. */
export const COUNTER_ADDRESS = "127.0.0.1:8081";
/** The Redis URL in examples/counter/app.yaml. */
export const MANIFEST_REDIS_URL = "redis://127.0.0.1:6379";

/** Which key-value provider serves the counter's `default` link. */
export type DefaultKv = "redis" | "nats";

/** Where the apps listen and what they use; the defaults are the manifests' own values. */
export interface ExampleSettings {
  /** @default {@link HELLO_ADDRESS} */
  helloAddress?: string;
  /** @default {@link COUNTER_ADDRESS} */
  counterAddress?: string;
  /** `redis`: examples/counter/app.yaml; `nats`: examples/counter/app-nats.yaml. */
  defaultKv: DefaultKv;
  /** Redis URL for the counter's `default` link (redis only). @default {@link MANIFEST_REDIS_URL} */
  redisUrl?: string;
}

/** One example app to deploy. */
export interface ExampleApp {
  /** App name (`hello`, `counter`). */
  name: string;
  /** Manifest path relative to the repository root, e.g. `examples/counter/app.yaml`. */
  file: string;
  /** The manifest text, with the requested addresses and URL substituted. */
  text: string;
  /** `http://address/`. */
  url: string;
}

function replaceValue(text: string, key: string, from: string, to: string): string {
  if (from === to) return text;
  const re = new RegExp(`^(\\s*${key}:\\s*)${from.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}\\s*$`, "m");
  if (!re.test(text)) throw new TrellisError(ErrorCode.Internal, `the manifest has no line "${key}: ${from}" to change`);
  return text.replace(re, `$1${to}`);
}

/**
 * Reads the example manifests (examples/hello/app.yaml and examples/counter/app.yaml or app-nats.yaml) and applies
 * the settings that differ from the manifests' values (tests use other ports; the text is otherwise unchanged).
 */
export async function exampleApps(s: ExampleSettings): Promise<ExampleApp[]> {
  const helloAddress = s.helloAddress ?? HELLO_ADDRESS;
  const counterAddress = s.counterAddress ?? COUNTER_ADDRESS;
  const counterFile = s.defaultKv === "redis" ? "app.yaml" : "app-nats.yaml";
  const read = (f: string) => readFile(path.join(EXAMPLES_DIR, f), "utf8");
  const hello = replaceValue(await read("hello/app.yaml"), "address", HELLO_ADDRESS, helloAddress);
  let counter = replaceValue(await read(`counter/${counterFile}`), "address", COUNTER_ADDRESS, counterAddress);
  if (s.defaultKv === "redis") counter = replaceValue(counter, "url", MANIFEST_REDIS_URL, s.redisUrl ?? MANIFEST_REDIS_URL);
  return [
    { name: "hello", file: "examples/hello/app.yaml", text: hello, url: `http://${helloAddress}/` },
    { name: "counter", file: `examples/counter/${counterFile}`, text: counter, url: `http://${counterAddress}/` },
  ];
}

/**
 * Deploys one example app (`trellis app deploy FILE --wait`).
 * @throws TrellisError when the manifest is invalid, no host answers, or the app ends `failed`.
 */
export async function deployExample(client: CtlClient, app: ExampleApp, waitTimeoutMs = 60_000): Promise<DeployResult> {
  const { manifest } = parseManifestText(app.text, app.file);
  const r = await deployApp(client, manifest, { wait: true, waitTimeoutMs });
  if (r.status.status === "failed" || r.failures.length > 0) {
    const why = [...r.failures.map((f) => `${f.action}: ${f.message}`), ...r.status.problems].join("; ");
    throw new TrellisError(ErrorCode.Application, `deploying ${app.file} failed: ${why || r.status.message || r.status.status}`);
  }
  return r;
}

/**
 * Undeploys the example apps (`trellis app undeploy NAME --wait`: the host's reconciler removes them before the demo
 * stops its host); failures are returned, not thrown.
 */
export async function undeployExamples(client: CtlClient, names: readonly string[]): Promise<string[]> {
  const problems: string[] = [];
  for (const n of names) {
    try {
      const r = await undeployApp(client, n, { wait: true, waitTimeoutMs: 10_000 });
      for (const f of r.failures) problems.push(`${n}: ${f.action}: ${f.message}`);
      if (r.timed_out) problems.push(`${n}: not removed within 10 s`);
    } catch (err) {
      problems.push(`${n}: ${(err as Error).message}`);
    }
  }
  return problems;
}
