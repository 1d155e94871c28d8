/**
 * Tests for the stdout writer of each output format. `Output` writes to the
 * process's stdout directly, so each case runs a tiny `deno eval` child that
 * imports the module and the test asserts on the child's captured stdout.
 *
 * @example
 * ```sh
 * deno test --allow-run --allow-read lib/output_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertNotStrictEquals, assertStrictEquals } from "@std/assert";
import { Output } from "./output.ts";
import { NO_PROGRESS } from "./progress.ts";
import { COLOR, PLAIN, type TerminalFacts } from "./terminal.ts";

const OUTPUT_URL = import.meta.resolve("./output.ts");
const ERRORS_URL = import.meta.resolve("./errors.ts");
const CONFIG_PATH = new URL("../deno.json", import.meta.url).pathname;

interface Child {
  stdout: string;
  stderr: string;
  code: number;
}

/**
 * Run `body` in a child where `out` is an `Output` for `format` and
 * `NetkitError` is in scope; returns what the child printed.
 */
async function runOutput(format: string, body: string): Promise<Child> {
  const script = [
    `import { Output } from ${JSON.stringify(OUTPUT_URL)};`,
    `import { NetkitError } from ${JSON.stringify(ERRORS_URL)};`,
    `const out = new Output(${JSON.stringify(format)});`,
    `void NetkitError;`,
    body,
  ].join("\n");
  const result = await new Deno.Command(Deno.execPath(), {
    // deno.json's import map: output.ts imports std (@std/io, @std/fmt, @std/cli).
    args: ["eval", "-q", "--config", CONFIG_PATH, script],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  const child = {
    stdout: decoder.decode(result.stdout),
    stderr: decoder.decode(result.stderr),
    code: result.code,
  };
  assertEquals(child.code, 0, `child failed: ${child.stderr}`);
  assertEquals(child.stderr, "", "Output must never write to stderr");
  return child;
}

/** Calls every method once, with a NaN and an Infinity in the figures. */
const EVERY_METHOD = `
out.text("line one", "line two");
out.event("interval", { sent: 10, rate: NaN });
out.result({ total: 20, loss: NaN, rtt: Infinity, ok: true });
`;

Deno.test("Output 'text' prints text lines only, each ending in a newline; events and results print nothing", async () => {
  const child = await runOutput("text", EVERY_METHOD);
  assertEquals(child.stdout, "line one\nline two\n");
});

Deno.test("Output 'text' error() prints nothing on stdout (main reports text failures on stderr)", async () => {
  const child = await runOutput("text", `out.error(new NetkitError("timeout", "too slow"));`);
  assertEquals(child.stdout, "");
});

Deno.test("Output 'json' prints exactly one parseable document: the result, with no text or events", async () => {
  const child = await runOutput("json", EVERY_METHOD);
  const doc = JSON.parse(child.stdout);
  assertEquals(doc, { total: 20, loss: null, rtt: null, ok: true });
  assert(child.stdout.endsWith("}\n"), "document ends with one newline");
  assert(!child.stdout.includes("line one"));
  assert(!child.stdout.includes("interval"));
});

Deno.test("Output 'json' never prints NaN or Infinity: non-finite numbers become null", async () => {
  const child = await runOutput("json", `out.result({ a: NaN, b: [Infinity, -Infinity, 1.5] });`);
  assert(!/NaN|Infinity/.test(child.stdout), child.stdout);
  assertEquals(JSON.parse(child.stdout), { a: null, b: [null, null, 1.5] });
});

Deno.test("Output 'json' error() prints one document {error, exit_code} with the NetkitError's code", async () => {
  const child = await runOutput("json", `out.error(new NetkitError("timeout", "timed out"));`);
  assertEquals(JSON.parse(child.stdout), { error: "timed out", exit_code: 5 });
});

Deno.test("Output 'json' error() gives exit_code 1 for a plain Error and a thrown non-Error", async () => {
  const plain = await runOutput("json", `out.error(new Error("boom"));`);
  assertEquals(JSON.parse(plain.stdout), { error: "boom", exit_code: 1 });
  const str = await runOutput("json", `out.error("just a string");`);
  assertEquals(JSON.parse(str.stdout), { error: "just a string", exit_code: 1 });
});

Deno.test("Output 'json-stream' prints one {event, data} line per event and the result as 'end'", async () => {
  const child = await runOutput("json-stream", EVERY_METHOD);
  assert(child.stdout.endsWith("\n"));
  const lines = child.stdout.slice(0, -1).split("\n");
  assertEquals(lines.map((l) => JSON.parse(l)), [
    { event: "interval", data: { sent: 10, rate: null } },
    { event: "end", data: { total: 20, loss: null, rtt: null, ok: true } },
  ]);
  assert(!/NaN|Infinity/.test(child.stdout), child.stdout);
  assert(!child.stdout.includes("line one"));
});

Deno.test("Output 'json-stream' writes each event as a single compact line, even for nested data", async () => {
  const child = await runOutput(
    "json-stream",
    `out.event("interval", { nested: { list: [1, 2, { deep: "a\\nb" }] } });`,
  );
  assertEquals(
    child.stdout,
    '{"event":"interval","data":{"nested":{"list":[1,2,{"deep":"a\\nb"}]}}}\n',
  );
});

Deno.test("Output 'json-stream' error() prints an 'error' event carrying {error, exit_code}", async () => {
  const child = await runOutput(
    "json-stream",
    `out.event("interval", { n: 1 });\nout.error(new NetkitError("refused", "Connection refused"));`,
  );
  const lines = child.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
  assertEquals(lines, [
    { event: "interval", data: { n: 1 } },
    { event: "error", data: { error: "Connection refused", exit_code: 3 } },
  ]);
});

Deno.test("Output carries lib/terminal.ts's decision: colour and a live line only for text on a terminal", () => {
  const tty: TerminalFacts = { noColor: false, stdoutIsTerminal: true, stderrIsTerminal: true };
  assertStrictEquals(new Output("text", tty).style, COLOR);
  assertStrictEquals(new Output("text", { ...tty, noColor: true }).style, PLAIN);
  assertStrictEquals(new Output("json", tty).style, PLAIN);
  assertStrictEquals(new Output("json-stream", tty).progress(), NO_PROGRESS);
  assertStrictEquals(
    new Output("text", { ...tty, stderrIsTerminal: false }).progress(),
    NO_PROGRESS,
  );
  // Stopped long before its 2 s delay: it never draws, and leaves no timer behind.
  using live = new Output("text", tty).progress();
  assertNotStrictEquals(live, NO_PROGRESS);
});
