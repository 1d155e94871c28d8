/**
 * A real browser renders the HTML reports: headless Chromium (Debian's
 * `chromium`; CI installs it) loads a compare report and a throughput report
 * made by the real CLI, with no console error and no failed load, and every
 * chart's box in the screenshot is drawn (its pixels vary: not blank). The
 * screenshots are kept under a temp directory, whose path the test prints.
 *
 * With `NETKIT_SCREENSHOT_DIR=docs` the same run also writes the README's
 * picture, `docs/report-compare.png` (the top of the compare report).
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";
import { decode } from "npm:fast-png@8.0.0";
import { runNetkit, skipWithout, startServer } from "./support/cli.ts";

const WIDTH = 900;

/** Run headless Chromium on `url` with `extra` flags; returns stdout and stderr. */
async function chromium(
  url: string,
  extra: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const profile = await Deno.makeTempDir({ prefix: "netkit-chromium-" });
  try {
    const child = new Deno.Command("chromium", {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--enable-logging=stderr",
        "--v=0",
        `--user-data-dir=${profile}`,
        ...extra,
        url,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
    try {
      const { code, stdout, stderr } = await child.output();
      return {
        code,
        stdout: new TextDecoder().decode(stdout),
        stderr: new TextDecoder().decode(stderr),
      };
    } finally {
      clearTimeout(timer);
    }
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/** What the page says about itself once laid out: chart boxes, errors, height. */
interface Layout {
  boxes: [string, number, number, number, number][];
  errors: string[];
  height: number;
}

/**
 * A copy of the page with a script that records errors and, once laid out,
 * the box of every chart; `--dump-dom` prints the DOM with that record.
 */
async function layoutOf(htmlPath: string, dir: string): Promise<Layout> {
  const html = await Deno.readTextFile(htmlPath);
  const probe =
    `<script>window.__errors=[];addEventListener("error",(e)=>__errors.push(String(e.message||e.type)),true);</script>`;
  const measure = `<script>document.body.setAttribute("data-layout",JSON.stringify({
boxes:[...document.querySelectorAll("figure.chart > svg")].map((s)=>{const r=s.getBoundingClientRect();
return [s.parentElement.id,r.left+scrollX,r.top+scrollY,r.width,r.height];}),
errors:__errors,height:document.documentElement.scrollHeight}));</script>`;
  const copy = `${dir}/layout-${crypto.randomUUID()}.html`;
  await Deno.writeTextFile(
    copy,
    html.replace("<head>", `<head>${probe}`).replace("</body>", `${measure}</body>`),
  );
  const run = await chromium(`file://${copy}`, [`--window-size=${WIDTH},1200`, "--dump-dom"]);
  await Deno.remove(copy);
  const m = /data-layout="([^"]*)"/.exec(run.stdout);
  assert(m, `no layout record in the dumped DOM (exit ${run.code}):\n${run.stderr.slice(-2000)}`);
  const json = m[1]!.replaceAll("&quot;", '"').replaceAll("&amp;", "&");
  return JSON.parse(json) as Layout;
}

/** Screenshot `htmlPath` to `png`; assert a clean load and that every chart box is drawn. */
async function assertRendered(htmlPath: string, png: string, dir: string): Promise<void> {
  const layout = await layoutOf(htmlPath, dir);
  assertEquals(layout.errors, [], "errors on the page");
  assert(layout.boxes.length > 0, "no charts");
  const run = await chromium(`file://${htmlPath}`, [
    `--window-size=${WIDTH},${Math.ceil(layout.height)}`,
    `--screenshot=${png}`,
  ]);
  assertEquals(run.code, 0, run.stderr.slice(-2000));
  const complaints = run.stderr.split("\n").filter((l) =>
    /CONSOLE|Uncaught|Failed to load resource|net::ERR_/.test(l)
  );
  assertEquals(complaints, [], "console errors or failed loads");
  const image = decode(await Deno.readFile(png));
  const channels = image.channels;
  for (const [id, left, top, width, height] of layout.boxes) {
    assert(top + height <= image.height + 1, `${id} is outside the screenshot`);
    let n = 0;
    let sum = 0;
    let sumSq = 0;
    const colours = new Set<number>();
    let chromatic = 0; // pixels in a series' colour, not the greys of frame, grid and text
    for (let y = Math.ceil(top); y < Math.floor(top + height); y++) {
      for (let x = Math.ceil(left); x < Math.floor(left + width); x++) {
        const i = (y * image.width + x) * channels;
        const r = image.data[i]!;
        const g = image.data[i + 1]!;
        const b = image.data[i + 2]!;
        const lum = 0.299 * r + 0.587 * g + 0.114 * b;
        n++;
        sum += lum;
        sumSq += lum * lum;
        colours.add((r << 16) | (g << 8) | b);
        if (Math.max(r, g, b) - Math.min(r, g, b) > 80) chromatic++;
      }
    }
    const variance = sumSq / n - (sum / n) ** 2;
    assert(n > 10_000, `${id}: box of ${n} pixels`);
    assert(variance > 20, `${id}: blank (luminance variance ${variance.toFixed(2)})`);
    assert(colours.size > 8, `${id}: only ${colours.size} colours`);
    // Lines and curves are drawn in their series' colours; a loss chart may rightly be empty.
    if (!id.endsWith("-loss")) assert(chromatic > 100, `${id}: no data drawn (${chromatic} px)`);
  }
}

const noChromium = skipWithout("chromium");

Deno.test({
  name:
    "Chromium renders a compare report and a throughput report: no console error, no blank chart",
  ignore: noChromium,
  async fn() {
    const shots = await Deno.makeTempDir({ prefix: "netkit-report-screenshots-" });
    console.log(`screenshots in ${shots}`);
    const compare = `${shots}/compare.html`;
    const made = await runNetkit(["compare", "--report", compare], { timeoutMs: 60_000 });
    assertEquals(made.code, 0, made.stderr);
    await assertRendered(compare, `${shots}/compare.png`, shots);

    await using server = await startServer(["--proto", "both", "--host", "127.0.0.1"]);
    const throughput = `${shots}/throughput.html`;
    const tp = await runNetkit([
      "client",
      "--throughput",
      "--proto",
      "udp",
      `127.0.0.1:${server.port}`,
      "-t",
      "3s",
      "-P",
      "2",
      "-b",
      "50M",
      "--bidir",
      "--report",
      throughput,
    ]);
    assertEquals(tp.code, 0, tp.stderr);
    await assertRendered(throughput, `${shots}/throughput.png`, shots);

    const docs = Deno.env.get("NETKIT_SCREENSHOT_DIR");
    if (docs) {
      const run = await chromium(`file://${compare}`, [
        `--window-size=${WIDTH},1400`,
        `--screenshot=${docs}/report-compare.png`,
      ]);
      assertEquals(run.code, 0, run.stderr.slice(-2000));
    }
  },
});
