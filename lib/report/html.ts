/**
 * One self-contained HTML page: a title that says what was run (command line,
 * date, host, netkit version), then sections of charts (inline SVG from
 * `./svg.ts`), a table and findings. Nothing is loaded from anywhere: no
 * script, font, image or stylesheet from another address, so the file opens
 * offline and can be attached to a ticket. The stylesheet reads in light and
 * dark mode (`prefers-color-scheme`) and prints on white.
 *
 * @example
 * ```ts
 * import { renderHtml } from "./html.ts";
 *
 * const html = renderHtml("netkit probe", {
 *   commandLine: "netkit client --probe 127.0.0.1",
 *   date: new Date().toISOString(),
 *   host: "build-7",
 *   version: "0.1.0",
 * }, [{ heading: "udp", charts: [], table: { head: ["", "UDP"], rows: [["sent", "10"]] } }]);
 * console.log(html.startsWith("<!doctype html>"));
 * ```
 *
 * @module
 */

import { escapeXml } from "./svg.ts";

/** What was run, for the page's title block. */
export interface ReportMeta {
  commandLine: string;
  /** ISO 8601. */
  date: string;
  host: string;
  version: string;
}

/** A section of the page: charts, then a table, then findings. */
export interface ReportSection {
  heading: string;
  intro?: string;
  /** Chart markup from `./svg.ts`. */
  charts: string[];
  table?: { head: string[]; rows: string[][] };
  findings?: string[];
  /** Notes under the section, in small print. */
  notes?: string[];
}

const CSS = `
:root{color-scheme:light dark;--bg:#fff;--fg:#1d2228;--muted:#5b6470;--grid:#e3e6ea;--axis:#8a939e;
--s0:#1f6fd1;--s1:#d9480f;--s2:#2b8a3e;--s3:#7048e8;--s4:#c2255c;--s5:#0b7285;--s6:#a07400;--s7:#495057;
--lost:#e03131;--card:#f6f7f9}
@media (prefers-color-scheme:dark){:root{--bg:#15181c;--fg:#e6e9ed;--muted:#9aa4af;--grid:#2a2f36;
--axis:#6b7580;--s0:#5c9cff;--s1:#ff8a4c;--s2:#5fd17a;--s3:#a58cff;--s4:#ff6b9e;--s5:#3bc9db;
--s6:#ffd43b;--s7:#ced4da;--lost:#ff6b6b;--card:#1d2126}}
@media print{:root{--bg:#fff;--fg:#000;--muted:#444;--grid:#ddd;--axis:#666;--card:#fff;
--s0:#1f6fd1;--s1:#d9480f;--s2:#2b8a3e;--s3:#7048e8;--s4:#c2255c;--s5:#0b7285;--s6:#a07400;
--s7:#495057;--lost:#c00}figure{break-inside:avoid}section{break-before:auto}}
body{margin:0 auto;max-width:820px;padding:16px 20px 40px;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:20px;margin:8px 0 4px}h2{font-size:17px;margin:28px 0 6px;border-top:1px solid var(--grid);
padding-top:14px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0 10px;color:var(--muted)}
dl.meta dt{font-weight:600}dl.meta dd{margin:0;word-break:break-all}code{font-size:13px}
figure.chart{margin:14px 0;padding:8px 8px 4px;background:var(--card);border-radius:6px}
figure.chart figcaption{font-weight:600;margin:0 0 4px 4px}figure.chart svg{width:100%;height:auto;display:block}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin:2px 4px 2px;color:var(--muted);font-size:12px}
.legend span{display:inline-flex;align-items:center;gap:4px;white-space:nowrap}
.grid{stroke:var(--grid);stroke-width:1}.axis{stroke:var(--axis);stroke-width:1}
.tick{fill:var(--muted);font-size:11px}.label{fill:var(--fg);font-size:12px}
.line{fill:none;stroke-width:1.8;stroke-linejoin:round;stroke-linecap:round}.dashed{stroke-dasharray:5 3;stroke-width:1.3}
.s-0{stroke:var(--s0);fill:var(--s0)}.s-1{stroke:var(--s1);fill:var(--s1)}.s-2{stroke:var(--s2);fill:var(--s2)}
.s-3{stroke:var(--s3);fill:var(--s3)}.s-4{stroke:var(--s4);fill:var(--s4)}.s-5{stroke:var(--s5);fill:var(--s5)}
.s-6{stroke:var(--s6);fill:var(--s6)}.s-7{stroke:var(--s7);fill:var(--s7)}
path.line{fill:none}.bar rect{stroke:none}
.m-lost{fill:none;stroke-width:1.6}.m-reordered{stroke:none}.m-duplicated{fill:none;stroke-width:1.3}
table{border-collapse:collapse;margin:10px 0;font-variant-numeric:tabular-nums}
th,td{padding:3px 12px;text-align:right;border-bottom:1px solid var(--grid)}th:first-child,td:first-child{text-align:left}
ul.findings li{margin:3px 0}.notes{color:var(--muted);font-size:12px}
`;

/** The page: title block, then each section. */
export function renderHtml(title: string, meta: ReportMeta, sections: ReportSection[]): string {
  const body = sections.map((s) => {
    const table = s.table
      ? `<table><thead><tr>${
        s.table.head.map((h) => `<th>${escapeXml(h)}</th>`).join("")
      }</tr></thead><tbody>${
        s.table.rows.map((r) => `<tr>${r.map((c) => `<td>${escapeXml(c)}</td>`).join("")}</tr>`)
          .join("")
      }</tbody></table>`
      : "";
    const findings = s.findings?.length
      ? `<ul class="findings">${s.findings.map((f) => `<li>${escapeXml(f)}</li>`).join("")}</ul>`
      : "";
    const notes = s.notes?.length
      ? `<p class="notes">${s.notes.map(escapeXml).join("<br>")}</p>`
      : "";
    return `<section><h2>${escapeXml(s.heading)}</h2>${
      s.intro ? `<p>${escapeXml(s.intro)}</p>` : ""
    }${s.charts.join("\n")}${table}${findings}${notes}</section>`;
  }).join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeXml(title)}</title>
<style>${CSS}</style></head>
<body><header><h1>${escapeXml(title)}</h1><dl class="meta">
<dt>command</dt><dd><code>${escapeXml(meta.commandLine)}</code></dd>
<dt>date</dt><dd>${escapeXml(meta.date)}</dd>
<dt>host</dt><dd>${escapeXml(meta.host)}</dd>
<dt>netkit</dt><dd>${escapeXml(meta.version)}</dd></dl></header>
${body}
</body></html>
`;
}
