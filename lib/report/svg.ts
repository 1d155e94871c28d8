/**
 * Charts as inline SVG text, generated here with no library: line charts on
 * linear or log axes (gaps where a value is missing), rows of event markers
 * above the plot (loss, reordering, duplication), and grouped bar charts.
 * Colours come from CSS classes (`s-0` … `s-7`, `m-lost`, …) that the page's
 * stylesheet (`lib/report/html.ts`) sets for light, dark and print, so one
 * SVG reads in all three. Each chart is a `<figure class="chart">` whose
 * `data-series` lists its series by name, which tests check.
 *
 * @example
 * ```ts
 * import { lineChart } from "./svg.ts";
 *
 * const svg = lineChart({
 *   id: "rtt",
 *   title: "RTT over time",
 *   x: { label: "time (s)" },
 *   y: { label: "RTT (ms)", log: true },
 *   lines: [{ name: "p50", color: 0, points: [[0, 1.2], [1, 1.4], [2, null], [3, 1.1]] }],
 * });
 * console.log(svg.length);
 * ```
 *
 * @module
 */

/** An axis: its label (with the unit), log or linear, how tick values print. */
export interface AxisSpec {
  label: string;
  /** Log scale (base 10). @default {false} */
  log?: boolean;
  /** Tick label text. @default {compact number} */
  format?: (value: number) => string;
  /** Force the axis to include 0 (linear only). @default {false} */
  zero?: boolean;
}

/** One line: points `[x, y]`, `y` null for a gap. */
export interface LineSeries {
  name: string;
  /** Colour index 0…7 (class `s-N`). */
  color: number;
  points: readonly (readonly [number, number | null])[];
  dashed?: boolean;
}

/** A row of markers above the plot: one mark at each `x` whose count is above 0. */
export interface MarkerRow {
  name: string;
  /** Class `m-KIND`: lost, reordered, duplicated. */
  kind: "lost" | "reordered" | "duplicated";
  /** Colour index of the transport it belongs to. */
  color: number;
  points: readonly (readonly [number, number])[];
}

/** A line chart. */
export interface LineChartSpec {
  id: string;
  title: string;
  x: AxisSpec;
  y: AxisSpec;
  lines: readonly LineSeries[];
  markers?: readonly MarkerRow[];
}

/** One group of bars: values at the same x positions as the others. */
export interface BarSeries {
  name: string;
  color: number;
  /** `[x, value]`: the bar covers `[x, x + width)`. */
  points: readonly (readonly [number, number])[];
}

/** A bar chart over x intervals (e.g. time buckets). */
export interface BarChartSpec {
  id: string;
  title: string;
  x: AxisSpec;
  y: AxisSpec;
  /** Width of each bar's interval in x units. */
  width: number;
  bars: readonly BarSeries[];
}

const W = 760;
const H = 270;
const M = { left: 70, right: 18, top: 14, bottom: 42 };
const ROW = 11;

/** Escape text for HTML and SVG. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A number in at most 3 significant digits, with k/M/G above 10,000. */
export function compactNumber(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a >= 1e9) return `${trim(v / 1e9)}G`;
  if (a >= 1e6) return `${trim(v / 1e6)}M`;
  if (a >= 1e4) return `${trim(v / 1e3)}k`;
  return trim(v);
}

function trim(v: number): string {
  return String(Number(v.toPrecision(3)));
}

interface Scale {
  (v: number): number;
  ticks: number[];
}

function linearTicks(lo: number, hi: number): number[] {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  // From the tick at or below lo to the one at or above hi: the data never touches the frame.
  for (let t = Math.floor(lo / step) * step; t < hi + step * (1 - 1e-9); t += step) {
    ticks.push(Number(t.toPrecision(12)));
  }
  return ticks;
}

function logTicks(lo: number, hi: number): number[] {
  const a = Math.floor(Math.log10(lo));
  const b = Math.ceil(Math.log10(hi));
  const steps = b - a <= 2 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let e = a; e <= b; e++) {
    for (const m of steps) {
      const t = Number((m * 10 ** e).toPrecision(6));
      if (t >= lo * 0.999 && t <= hi * 1.001) ticks.push(t);
    }
  }
  return ticks;
}

/**
 * A scale from the data's extent onto `[p0, p1]` pixels; `snap` widens a
 * linear one to whole ticks (values), else the data spans it and ticks fall
 * inside (time).
 */
function scale(values: number[], axis: AxisSpec, p0: number, p1: number, snap = true): Scale {
  let lo: number;
  let hi: number;
  if (axis.log) {
    const pos = values.filter((v) => v > 0);
    lo = pos.length ? Math.min(...pos) : 1;
    hi = pos.length ? Math.max(...pos) : 10;
    lo = 10 ** (Math.floor(Math.log10(lo) * 2) / 2);
    hi = 10 ** (Math.ceil(Math.log10(hi) * 2) / 2);
    if (hi <= lo) hi = lo * 10;
    const l0 = Math.log10(lo);
    const l1 = Math.log10(hi);
    const f = ((v: number) =>
      p0 + ((Math.log10(Math.max(v, lo)) - l0) / (l1 - l0)) * (p1 - p0)) as Scale;
    f.ticks = logTicks(lo, hi);
    return f;
  }
  lo = values.length ? Math.min(...values) : 0;
  hi = values.length ? Math.max(...values) : 1;
  if (axis.zero) {
    lo = Math.min(0, lo);
    hi = Math.max(0, hi);
  }
  if (hi === lo) hi = lo + 1;
  let ticks = linearTicks(lo, hi);
  if (snap) {
    lo = Math.min(lo, ticks[0] ?? lo);
    hi = Math.max(hi, ticks[ticks.length - 1] ?? hi);
  } else {
    const inside = ticks.filter((t) => t >= lo - 1e-12 && t <= hi + 1e-12);
    ticks = inside.length >= 2 ? inside : ticks;
    lo = Math.min(lo, ticks[0] ?? lo);
    hi = Math.max(hi, ticks[ticks.length - 1] ?? hi);
  }
  const f = ((v: number) => p0 + ((v - lo) / (hi - lo)) * (p1 - p0)) as Scale;
  f.ticks = ticks;
  return f;
}

function px(v: number): string {
  return String(Math.round(v * 10) / 10);
}

function axes(sx: Scale, sy: Scale, x: AxisSpec, y: AxisSpec, top: number): string {
  const fx = x.format ?? compactNumber;
  const fy = y.format ?? compactNumber;
  const bottom = H - M.bottom;
  const parts: string[] = [];
  for (const t of sy.ticks) {
    const yy = px(sy(t));
    parts.push(
      `<line class="grid" x1="${M.left}" x2="${W - M.right}" y1="${yy}" y2="${yy}"/>`,
      `<text class="tick" x="${
        M.left - 6
      }" y="${yy}" text-anchor="end" dominant-baseline="middle">${escapeXml(fy(t))}</text>`,
    );
  }
  for (const t of sx.ticks) {
    const xx = px(sx(t));
    parts.push(
      `<line class="grid" x1="${xx}" x2="${xx}" y1="${top}" y2="${bottom}"/>`,
      `<text class="tick" x="${xx}" y="${bottom + 15}" text-anchor="middle">${
        escapeXml(fx(t))
      }</text>`,
    );
  }
  parts.push(
    `<line class="axis" x1="${M.left}" x2="${W - M.right}" y1="${bottom}" y2="${bottom}"/>`,
    `<line class="axis" x1="${M.left}" x2="${M.left}" y1="${top}" y2="${bottom}"/>`,
    `<text class="label" x="${(M.left + W - M.right) / 2}" y="${H - 6}" text-anchor="middle">${
      escapeXml(x.label)
    }</text>`,
    `<text class="label" transform="translate(14 ${
      (top + bottom) / 2
    }) rotate(-90)" text-anchor="middle">${escapeXml(y.label)}</text>`,
  );
  return parts.join("");
}

function figure(
  id: string,
  title: string,
  series: string[],
  body: string,
  legend: string,
): string {
  return `<figure class="chart" id="${escapeXml(id)}" data-series="${
    escapeXml(series.join("|"))
  }"><figcaption>${
    escapeXml(title)
  }</figcaption><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${
    escapeXml(title)
  }">${body}</svg><div class="legend">${legend}</div></figure>`;
}

function swatch(cls: string, name: string, shape = "line"): string {
  const mark = shape === "line"
    ? `<line class="${cls}" x1="1" x2="21" y1="6" y2="6"/>`
    : shape === "bar"
    ? `<rect class="${cls}" x="4" y="1" width="14" height="10"/>`
    : markerShape(shape as MarkerRow["kind"], 11, 6, cls);
  return `<span><svg width="22" height="12" aria-hidden="true">${mark}</svg>${
    escapeXml(name)
  }</span>`;
}

function markerShape(kind: MarkerRow["kind"], x: number, y: number, cls: string): string {
  const r = 3.5;
  if (kind === "lost") {
    return `<path class="${cls}" d="M${px(x - r)} ${px(y - r)}L${px(x + r)} ${px(y + r)}M${
      px(x - r)
    } ${px(y + r)}L${px(x + r)} ${px(y - r)}"/>`;
  }
  if (kind === "reordered") {
    return `<path class="${cls}" d="M${px(x)} ${px(y - r)}L${px(x + r)} ${px(y + r)}L${px(x - r)} ${
      px(y + r)
    }Z"/>`;
  }
  return `<circle class="${cls}" cx="${px(x)}" cy="${px(y)}" r="${r - 0.5}"/>`;
}

/** A line chart with optional marker rows above the plot. */
export function lineChart(spec: LineChartSpec): string {
  const markers = (spec.markers ?? []).filter((m) => m.points.some(([, n]) => n > 0));
  const top = M.top + markers.length * ROW;
  const xs = spec.lines.flatMap((l) => l.points.map(([x]) => x))
    .concat(markers.flatMap((m) => m.points.map(([x]) => x)));
  const ys = spec.lines.flatMap((l) =>
    l.points.map(([, y]) => y).filter((y): y is number => y !== null && Number.isFinite(y))
  );
  const sx = scale(xs, spec.x, M.left, W - M.right, false);
  const sy = scale(ys, spec.y, H - M.bottom, top);
  const parts = [axes(sx, sy, spec.x, spec.y, top)];
  for (const line of spec.lines) {
    let d = "";
    let pen = false;
    for (const [x, y] of line.points) {
      if (y === null || !Number.isFinite(y) || (spec.y.log && y <= 0)) {
        pen = false;
        continue;
      }
      // A segment's first point also draws a dot (a zero-length line with round caps), so a
      // value between two gaps still shows.
      d += `${pen ? "L" : "M"}${px(sx(x))} ${px(sy(y))}${pen ? "" : "h0"}`;
      pen = true;
    }
    parts.push(
      `<path class="line s-${line.color}${line.dashed ? " dashed" : ""}" d="${d}"><title>${
        escapeXml(line.name)
      }</title></path>`,
    );
  }
  markers.forEach((m, row) => {
    const y = M.top + row * ROW + ROW / 2;
    const marks = m.points.filter(([, n]) => n > 0).map(([x, n]) =>
      markerShape(m.kind, sx(x), y, `m-${m.kind} s-${m.color}`).replace(
        /\/>$/,
        `><title>${escapeXml(`${m.name}: ${n}`)}</title></${
          m.kind === "duplicated" ? "circle" : "path"
        }>`,
      )
    );
    parts.push(`<g class="markers">${marks.join("")}</g>`);
  });
  const legend = [
    ...spec.lines.map((l) => swatch(`line s-${l.color}${l.dashed ? " dashed" : ""}`, l.name)),
    ...markers.map((m) => swatch(`m-${m.kind} s-${m.color}`, m.name, m.kind)),
  ].join("");
  return figure(
    spec.id,
    spec.title,
    [...spec.lines.map((l) => l.name), ...markers.map((m) => m.name)],
    parts.join(""),
    legend,
  );
}

/** Grouped bars over x intervals. */
export function barChart(spec: BarChartSpec): string {
  const xs = spec.bars.flatMap((b) => b.points.flatMap(([x]) => [x, x + spec.width]));
  const ys = spec.bars.flatMap((b) => b.points.map(([, v]) => v));
  const sx = scale(xs, spec.x, M.left, W - M.right, false);
  const sy = scale(ys, { ...spec.y, zero: true }, H - M.bottom, M.top);
  const parts = [axes(sx, sy, spec.x, spec.y, M.top)];
  const groups = Math.max(1, spec.bars.length);
  const base = sy(0);
  spec.bars.forEach((b, g) => {
    const rects = b.points.filter(([, v]) => v !== 0).map(([x, v]) => {
      const x0 = sx(x);
      const w = Math.max(0.6, (sx(x + spec.width) - x0) / groups);
      const y = sy(v);
      return `<rect x="${px(x0 + g * w)}" y="${px(Math.min(y, base))}" width="${px(w)}" height="${
        px(Math.max(0.8, Math.abs(base - y)))
      }"/>`;
    });
    parts.push(
      `<g class="bar s-${b.color}"><title>${escapeXml(b.name)}</title>${rects.join("")}</g>`,
    );
  });
  const legend = spec.bars.map((b) => swatch(`bar s-${b.color}`, b.name, "bar")).join("");
  return figure(spec.id, spec.title, spec.bars.map((b) => b.name), parts.join(""), legend);
}
