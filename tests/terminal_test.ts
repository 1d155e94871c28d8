/**
 * End-to-end: colours and the live progress line of the real CLI, on a
 * pseudo-terminal made by `script` (util-linux) and off one. Colour appears
 * only when stdout is a terminal, without NO_COLOR and without --json; the
 * live line appears on a terminal's stderr once a run lasts 2 s, is wiped at
 * the end (and on Ctrl-C), and is never printed when stderr is not a terminal
 * or with --json.
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { NETKIT_RUN, ROOT_DIR, runNetkit, skipWithout, startServer } from "./support/cli.ts";

const LOCALHOST = "127.0.0.1";
const ESC = "\x1b[";
const WIPE = "\r\x1b[K";
const BOLD = "\x1b[1m";
const GREEN = "\x1b[32m";
const RED = "\x1b[31m";
/** 1,250 probes at 500/s: a run of about 2.5 s, past the live line's 2 s. */
const LONG_PROBE = ["--count", "1250", "--rate", "500", "--interval-report", "0"];
const SHORT_PROBE = ["--count", "100", "--rate", "1000", "--interval-report", "0"];
const noScript = skipWithout("script");

function quote(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** The environment of this test without NO_COLOR, plus `extra`. */
function env(extra: Record<string, string> = {}): Record<string, string> {
  const vars = Deno.env.toObject();
  delete vars.NO_COLOR;
  return { ...vars, ...extra };
}

/**
 * Run `netkit ARGS` inside `script`, so that the streams not redirected by
 * `redirect` (shell syntax, e.g. `2>/dev/null`) are a pseudo-terminal; returns
 * what reached the terminal and netkit's exit code.
 */
async function onTerminal(
  args: string[],
  redirect: string,
  options: { env?: Record<string, string>; prefix?: string } = {},
): Promise<{ code: number; terminal: string }> {
  const netkit = [Deno.execPath(), ...NETKIT_RUN, ...args].map(quote).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qefc", `${options.prefix ?? ""}${netkit} ${redirect}`, "/dev/null"],
    cwd: ROOT_DIR,
    clearEnv: true,
    env: env(options.env),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  try {
    const { code, stdout } = await child.output();
    return { code, terminal: new TextDecoder().decode(stdout) };
  } finally {
    clearTimeout(timer);
  }
}

async function withTempFile<T>(f: (path: string) => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ prefix: "netkit-terminal-" });
  try {
    return await f(path);
  } finally {
    await Deno.remove(path);
  }
}

function probeArgs(port: number, extra: string[]): string[] {
  return ["client", "--probe", "--proto", "udp", LOCALHOST, String(port), ...extra];
}

Deno.test({
  name: "probe report on a terminal's stdout is coloured: bold header, green for no loss",
  ignore: noScript,
  async fn() {
    await using server = await startServer(["--proto", "udp", "--host", LOCALHOST]);
    const { code, terminal } = await onTerminal(probeArgs(server.port, SHORT_PROBE), "2>/dev/null");
    assertEquals(code, 0, terminal);
    assertStringIncludes(terminal, `${BOLD}udp probe to ${LOCALHOST}:${server.port}`);
    assertStringIncludes(terminal, `lost ${GREEN}0 (0.00%)`);
  },
});

Deno.test({
  name: "NO_COLOR turns colour off on a terminal: not one escape code",
  ignore: noScript,
  async fn() {
    await using server = await startServer(["--proto", "udp", "--host", LOCALHOST]);
    const { code, terminal } = await onTerminal(
      probeArgs(server.port, SHORT_PROBE),
      "2>/dev/null",
      { env: { NO_COLOR: "1" } },
    );
    assertEquals(code, 0, terminal);
    assertStringIncludes(terminal, "udp probe to ");
    assert(!terminal.includes(ESC), JSON.stringify(terminal));
  },
});

Deno.test("a piped stdout gets no colour (and, stderr not a terminal, no live line)", async () => {
  await using server = await startServer(["--proto", "udp", "--host", LOCALHOST]);
  const result = await runNetkit(probeArgs(server.port, SHORT_PROBE), { env: env() });
  assertEquals(result.code, 0, result.stderr);
  assertStringIncludes(result.text, "udp probe to ");
  assert(!result.text.includes(ESC), JSON.stringify(result.text));
  assertEquals(result.stderr, "");
});

Deno.test({
  name: "--json on a terminal prints plain JSON: no escape codes, and it parses",
  ignore: noScript,
  async fn() {
    await using server = await startServer(["--proto", "udp", "--host", LOCALHOST]);
    const { code, terminal } = await onTerminal(
      probeArgs(server.port, [...SHORT_PROBE, "--json"]),
      "2>/dev/null",
    );
    assertEquals(code, 0, terminal);
    assert(!terminal.includes(ESC), JSON.stringify(terminal));
    assertEquals(JSON.parse(terminal.replaceAll("\r\n", "\n")).sent, 100);
  },
});

Deno.test({
  name: "a probe of 2.5 s shows a live line on a terminal's stderr and wipes it at the end",
  ignore: noScript,
  async fn() {
    await using server = await startServer(["--proto", "udp", "--host", LOCALHOST]);
    await withTempFile(async (report) => {
      const { code, terminal } = await onTerminal(
        probeArgs(server.port, LONG_PROBE),
        `>${quote(report)}`,
      );
      assertEquals(code, 0, terminal);
      // The line: a bar and the counts so far, redrawn in place.
      assert(
        /\[[#-]{20}\] udp probe {2}sent [\d,]+ of 1,250 {2}echoed [\d,]+/.test(terminal),
        terminal,
      );
      // Wiped at the end: the last thing on stderr is the wipe.
      assert(terminal.endsWith(WIPE), JSON.stringify(terminal.slice(-200)));
      // stdout (a file) has the report, uncoloured.
      const text = await Deno.readTextFile(report);
      assertStringIncludes(text, "udp probe to ");
      assert(!text.includes(ESC), JSON.stringify(text));
    });
  },
});

Deno.test({
  name:
    "a throughput test of 2.5 s shows a live line on a terminal's stderr and wipes it at the end",
  ignore: noScript,
  async fn() {
    await using server = await startServer(["--proto", "tcp", "--host", LOCALHOST]);
    await withTempFile(async (report) => {
      const { code, terminal } = await onTerminal(
        ["client", "--throughput", LOCALHOST, String(server.port), "-t", "2.5s", "-b", "50M"],
        `>${quote(report)}`,
      );
      assertEquals(code, 0, terminal);
      assert(/\[[#-]{20}\] tcp up {2}sent [\d.]+ [KMG]?i?B/.test(terminal), terminal);
      assert(terminal.endsWith(WIPE), JSON.stringify(terminal.slice(-200)));
      assertStringIncludes(await Deno.readTextFile(report), "tcp throughput, 1 stream");
    });
  },
});

Deno.test("a probe of 2.5 s prints no live line when stderr is not a terminal", async () => {
  await using server = await startServer(["--proto", "udp", "--host", LOCALHOST]);
  const result = await runNetkit(probeArgs(server.port, LONG_PROBE), { env: env() });
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.stderr, "");
  assertStringIncludes(result.text, "udp probe to ");
});

Deno.test({
  name: "with --json a terminal's stderr gets no live line, however long the run",
  ignore: noScript,
  async fn() {
    await using server = await startServer(["--proto", "udp", "--host", LOCALHOST]);
    await withTempFile(async (report) => {
      const { code, terminal } = await onTerminal(
        probeArgs(server.port, [...LONG_PROBE, "--json"]),
        `>${quote(report)}`,
      );
      assertEquals(code, 0, terminal);
      assertEquals(terminal, "");
      assertEquals(JSON.parse(await Deno.readTextFile(report)).sent, 1250);
    });
  },
});

Deno.test({
  name:
    "Ctrl-C while the live line shows wipes it, the report of what ran is printed marked interrupted, exit 130",
  ignore: noScript,
  async fn() {
    await using server = await startServer(["--proto", "udp", "--host", LOCALHOST]);
    await withTempFile(async (report) => {
      // 5,000 probes at 500/s would take 10 s; SIGINT comes at 3 s, after the line appeared.
      const { code, terminal } = await onTerminal(
        probeArgs(server.port, ["--count", "5000", "--rate", "500", "--interval-report", "0"]),
        `>${quote(report)}`,
        { prefix: "timeout --preserve-status -s INT 3 " },
      );
      assertEquals(code, 130, terminal);
      assertStringIncludes(terminal, "udp probe  sent");
      assert(terminal.endsWith(WIPE), JSON.stringify(terminal.slice(-200)));
      assertMatch(await Deno.readTextFile(report), /interrupted/);
    });
  },
});

Deno.test({
  name:
    "compare on a terminal: coloured table and a live line per phase that is wiped before the table",
  ignore: noScript,
  async fn() {
    await using server = await startServer(["--proto", "both", "--host", LOCALHOST]);
    // 1,250 probes at 500/s, TCP and UDP at once (a paced phase runs both together): about 2.5 s.
    const { code, terminal } = await onTerminal(
      ["compare", LOCALHOST, String(server.port), "--count", "1250", "--rate", "500"],
      "",
    );
    assertEquals(code, 0, terminal);
    assertStringIncludes(terminal, `${BOLD}netkit compare: TCP vs UDP against`);
    assert(/phase 1\/1 {2}\[[#-]{20}\] (tcp|udp) probe {2}sent/.test(terminal), terminal);
    const lastFrame = terminal.lastIndexOf("phase 1/1  [");
    const wipe = terminal.indexOf(WIPE, lastFrame);
    const table = terminal.indexOf("\r\n  sent ", lastFrame);
    assert(wipe > lastFrame && wipe < table, JSON.stringify(terminal.slice(lastFrame)));
    const lostRow = terminal.split("\r\n").find((line) => line.startsWith("  lost ")) ?? "";
    assert(lostRow.includes(GREEN) || lostRow.includes(RED), JSON.stringify(lostRow));
  },
});

Deno.test({
  name:
    "the server's summary on a terminal's stderr has a bold label (piped, existing tests see it plain)",
  ignore: noScript,
  async fn() {
    const netkit = [Deno.execPath(), ...NETKIT_RUN, "server", "--once", "--host", LOCALHOST]
      .concat(["--port", "0"]).map(quote).join(" ");
    const child = new Deno.Command("script", {
      args: ["-qefc", netkit, "/dev/null"],
      cwd: ROOT_DIR,
      clearEnv: true,
      env: env(),
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let terminal = "";
      let port: string | undefined;
      while (port === undefined) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`server ended before listening: ${terminal}`);
        terminal += value;
        port = /listening on tcp [\d.]+:(\d+)/.exec(terminal)?.[1];
      }
      // --once: one client served, then the summary and exit.
      const conn = await Deno.connect({ hostname: LOCALHOST, port: Number(port) });
      conn.close();
      for (let r = await reader.read(); !r.done; r = await reader.read()) terminal += r.value;
      assertEquals((await child.status).code, 0, terminal);
      assertStringIncludes(terminal, `${BOLD}summary:\x1b[22m 1 connection served`);
    } finally {
      clearTimeout(killer);
    }
  },
});
