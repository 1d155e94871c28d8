/**
 * End-to-end: `--report FILE.html` on compare, probe (and ping-pong) and
 * throughput writes one self-contained page with the expected charts, while
 * the command keeps no `write` permission (the file is opened before the
 * drop); an unwritable path fails at start with one line; and the terminal
 * chart ends a text report only on a terminal, not with `--no-chart`, in
 * ASCII with `TERM=dumb` or `NO_COLOR`.
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { getAvailablePort } from "@std/net";
import { assertNoExternalUrl, parseMarkup } from "./support/html.ts";
import { NETKIT_RUN, ROOT_DIR, runNetkit, skipWithout, startServer } from "./support/cli.ts";

const SMALL = ["--count", "3000", "--rate", "20000", "--interval-report", "0"];

/** The charts of a page: id → the series it names. */
function charts(html: string): Map<string, string> {
  const elements = parseMarkup(html);
  return new Map(
    elements.filter((e) => e.name === "figure" && e.attrs.class === "chart").map((
      e,
    ) => [e.attrs.id!, e.attrs["data-series"]!]),
  );
}

Deno.test("compare --report writes a self-contained page with three charts for its phase, and keeps no write", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/compare.html`;
    const run = await runNetkit(["compare", ...SMALL, "--report", path, "-v"]);
    assertEquals(run.code, 0, run.stderr);
    assertMatch(run.stderr, /permissions kept: net, read(, ffi)?; dropped: write/); // ffi: the native engine
    const html = await Deno.readTextFile(path);
    assertNoExternalUrl(html);
    const found = charts(html);
    assertEquals([...found.keys()], ["phase-1-rtt-time", "phase-1-rtt-cdf", "phase-1-loss"]);
    assertMatch(found.get("phase-1-rtt-time")!, /^TCP p50\|TCP p99\|UDP p50\|UDP p99/);
    assertEquals(found.get("phase-1-rtt-cdf"), "TCP|UDP");
    assertStringIncludes(html, `netkit compare --count 3000 --rate 20000`);
    assertStringIncludes(html, "<td>sent</td><td>3,000</td><td>3,000</td>");
    // The buckets' counts add up to the table's: the page says both, and they agree.
    const lostCell = /<td>lost<\/td><td>([\d,]+) \([^)]*\)<\/td><td>([\d,]+) \(/.exec(html);
    assert(lostCell, "no lost row");
    assertStringIncludes(
      html,
      `TCP: 3,000 sent, ${lostCell[1]} lost; UDP: 3,000 sent, ${lostCell[2]} lost`,
    );
    // Piped stdout: the text report has no chart.
    assert(!run.text.includes("one log scale"), run.text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("probe --ping-pong and throughput --report write their pages; probe keeps only net", async () => {
  await using server = await startServer(["--proto", "both", "--host", "127.0.0.1"]);
  const dir = await Deno.makeTempDir();
  try {
    const probe = await runNetkit([
      "client",
      "--probe",
      "--ping-pong",
      "--proto",
      "udp",
      `127.0.0.1:${server.port}`,
      "--count",
      "2000",
      "--report",
      `${dir}/pp.html`,
      "-v",
    ]);
    assertEquals(probe.code, 0, probe.stderr);
    assertMatch(probe.stderr, /permissions kept: net(, ffi)?; dropped: read, write/); // ffi: the native engine
    const pp = await Deno.readTextFile(`${dir}/pp.html`);
    assertNoExternalUrl(pp);
    assertEquals(charts(pp).get("udp-probe-rtt-cdf"), "UDP");
    assertEquals(charts(pp).size, 3);

    const tp = await runNetkit([
      "client",
      "--throughput",
      "--proto",
      "udp",
      `127.0.0.1:${server.port}`,
      "-t",
      "2s",
      "-P",
      "2",
      "-b",
      "20M",
      "--report",
      `${dir}/tp.html`,
    ]);
    assertEquals(tp.code, 0, tp.stderr);
    const html = await Deno.readTextFile(`${dir}/tp.html`);
    assertNoExternalUrl(html);
    const found = charts(html);
    assertEquals([...found.keys()], ["up-bitrate", "up-udp-loss", "up-udp-jitter"]);
    assertEquals(found.get("up-bitrate"), "stream 1|stream 2|total, receiver|total, sender");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--report to a path that cannot be written fails at start with one line and exit 7", async () => {
  const run = await runNetkit(["compare", ...SMALL, "--report", "/nonexistent-dir/r.html"]);
  assertEquals(run.code, 7);
  const lines = run.stderr.trim().split("\n");
  assertEquals(lines.length, 1, run.stderr);
  assertMatch(lines[0]!, /^error: Cannot write --report '\/nonexistent-dir\/r\.html'/);
  const usage = await runNetkit(["client", "--report", "x.html", "127.0.0.1"]);
  assertEquals(usage.code, 2);
  assertMatch(usage.stderr, /'--report' needs '--probe' or '--throughput'/);
});

Deno.test("a run that fails still leaves a page that says why", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const port = getAvailablePort();
    const run = await runNetkit([
      "client",
      "--probe",
      `127.0.0.1:${port}`,
      "--report",
      `${dir}/failed.html`,
    ]);
    assertEquals(run.code, 3, run.stderr);
    const html = await Deno.readTextFile(`${dir}/failed.html`);
    parseMarkup(html);
    assertStringIncludes(html, "The run failed");
    assertMatch(html, /[Rr]efused/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const noScript = skipWithout("script");

/** Run netkit with stdout on a pseudo-terminal (`script`); returns what the terminal showed. */
async function onTerminal(args: string[], env: Record<string, string>): Promise<string> {
  const quote = (a: string) => `'${a.replaceAll("'", `'\\''`)}'`;
  const vars = Deno.env.toObject();
  delete vars.NO_COLOR;
  const child = new Deno.Command("script", {
    args: [
      "-qefc",
      `${[Deno.execPath(), ...NETKIT_RUN, ...args].map(quote).join(" ")} 2>/dev/null`,
      "/dev/null",
    ],
    cwd: ROOT_DIR,
    clearEnv: true,
    env: { ...vars, TERM: "xterm", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    const { code, stdout } = await child.output();
    assertEquals(code, 0);
    return new TextDecoder().decode(stdout);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test({
  name:
    "on a terminal compare ends with the ladder and sparkline; --no-chart leaves it out; TERM=dumb and NO_COLOR draw ASCII",
  ignore: noScript,
  async fn() {
    const unicode = await onTerminal(["compare", ...SMALL], {});
    assertStringIncludes(unicode, "one log scale");
    assertMatch(unicode, /p50 +TCP █*[▏▎▍▌▋▊▉█]/);
    assertStringIncludes(unicode, "rtt p50 over the run");
    const none = await onTerminal(["compare", ...SMALL, "--no-chart"], {});
    assert(!none.includes("one log scale"), none);
    assertStringIncludes(none, "rtt p99 ms");
    for (const env of [{ TERM: "dumb" }, { NO_COLOR: "1" }] as Record<string, string>[]) {
      const ascii = await onTerminal(["compare", ...SMALL], env);
      const chart = ascii.slice(ascii.indexOf("one log scale"));
      assert(chart.length > 100, ascii);
      assertMatch(chart, /p50 +TCP #+/);
      assert(!/[▁-█]/.test(chart), chart);
    }
  },
});
