/**
 * The provider conformance suite (test/conformance) against both providers: the SDK example provider kv-memory and
 * the Python provider written from docs/protocol.md alone (issue 4 parts 6 and 7). The Python provider is started by
 * its path, as any executable would be (`#!/usr/bin/env python3`, standard library only). A deliberately broken
 * provider checks that the suite fails when it should.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { registerConformanceTests, runConformance } from "./conformance/suite.ts";
import { startTestRedis, type TestRedis } from "../src/testing/index.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

registerConformanceTests("kv-memory (TypeScript SDK)", "kv-memory");
// the Python provider speaks only the binary form of docs/protocol.md §5
registerConformanceTests("python-kv (Python standard library)", path.join(root, "providers", "python-kv", "provider.py"), { except: ["json-handles"] });

let redis: TestRedis | undefined;
before(async () => {
  redis = await startTestRedis();
});
after(async () => {
  await redis?.stop();
});
registerConformanceTests("kv-redis (JSON-form handles)", "kv-redis", { only: ["json-handles"], kvLinkConfig: () => ({ url: redis!.url }) });

test("the suite catches a provider that breaks the contract (negative control)", async () => {
  const naive = path.join(root, "test", "conformance", "fixtures", "naive-provider.ts");
  const report = await runConformance(naive, { only: ["link-after-start", "duplicate-put", "delete", "changed-link", "health"], timeoutMs: 2000 });
  const failed = report.results.filter((r) => !r.ok).map((r) => r.name);
  assert.deepEqual(failed, ["duplicate-put", "delete", "changed-link", "health"], JSON.stringify(report.results, null, 2));
});
