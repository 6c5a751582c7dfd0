/**
 * The example build (src/demo/build.ts, src/demo/bindings.ts, docs/adr/0029-guest-bindings-without-debug-log.md): the
 * guest bindings componentize-js generates lose their `_debugLog(…)` statements, and nothing else.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { withoutDebugLogs } from "../src/demo/bindings.ts";
import { buildExamples } from "../src/demo/build.ts";

/** The shapes componentize-js 0.23.0 generates, around code that must stay. */
const SAMPLE = `const _debugLog = (...args) => {
  if (!globalThis?.process?.env?.JCO_DEBUG) { return; }
  console.debug(...args);
};
function import_increment(arg0, arg1, arg2) {
  var encodeRes = _utf8AllocateAndEncode(arg1, $realloc, $memory);
  _debugLog('[Instruction::CallWasm] enter', {
    funcName: 'increment',
    paramCount: 4,
    async: false,
    postReturn: true,
  });
  let ret;
  ret = $increment(handle0, ptr2, len2, toUint64(arg2));
  _debugLog('[Instruction::Return]', { funcName: 'increment', paramCount: 1, async: false, postReturn: true });
  _debugLog(\`[Instruction::Return] \${String(ret)}\`, { n: f(g) });
  return ret;
}`;

test("withoutDebugLogs removes every _debugLog(…) statement and keeps the rest", () => {
  const { js, removed } = withoutDebugLogs(SAMPLE);
  assert.equal(removed, 3);
  assert.doesNotMatch(js, /_debugLog\(/);
  assert.match(js, /const _debugLog = \(\.\.\.args\) =>/, "the function stays defined");
  assert.match(js, /ret = \$increment\(handle0, ptr2, len2, toUint64\(arg2\)\);\n\s*\n\s*return ret;/);
  assert.match(js, /var encodeRes = _utf8AllocateAndEncode\(arg1, \$realloc, \$memory\);/);
  // bindings without any: unchanged
  assert.deepEqual(withoutDebugLogs("let a = 1;\nf(a);\n"), { js: "let a = 1;\nf(a);\n", removed: 0 });
});

test("the built examples carry no _debugLog call in their bindings (the JavaScript source is kept in the component)", async () => {
  const built = await buildExamples(["hello", "counter"]);
  for (const b of built) {
    const text = (await readFile(b.file)).toString("latin1");
    assert.ok(text.includes("const _debugLog = "), `${b.name}: the bindings are in the component`);
    assert.equal(text.split("_debugLog(").length - 1, 0, `${b.name}: no _debugLog( call left`);
    assert.ok(text.includes("[method]bucket.get") || text.includes("incomingHandler"), `${b.name}: the rest of the bindings are there`);
  }
});
