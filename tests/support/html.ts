/**
 * Checks of a generated HTML report without a DOM parser (std has none): a
 * structural parse (every element closes in order, attributes quoted) and
 * the assertion that the page reaches nothing outside itself.
 *
 * @example
 * ```ts
 * import { assertNoExternalUrl, parseMarkup } from "./html.ts";
 *
 * const html = "<!doctype html><html><body><p>hi</p></body></html>";
 * parseMarkup(html);
 * assertNoExternalUrl(html);
 * ```
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";

/** HTML void elements; SVG ones must close themselves with `/>`. */
const VOID = new Set(["meta", "br", "hr", "img", "input", "link"]);

/**
 * A structural check of the markup (no DOM parser in std): every non-void
 * element closes in order, attributes are quoted, and what is left is text.
 * Returns the elements seen, in order, with their attributes.
 */
export function parseMarkup(html: string): { name: string; attrs: Record<string, string> }[] {
  const body = html.replace(/^<!doctype html>\s*/i, "");
  const stack: string[] = [];
  const seen: { name: string; attrs: Record<string, string> }[] = [];
  const tag = /<style>[\s\S]*?<\/style>|<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (const m of body.matchAll(tag)) {
    const between = body.slice(last, m.index);
    assert(!/[<>]/.test(between), `stray markup near: ${between.slice(0, 80)}`);
    last = m.index! + m[0].length;
    if (m[0].startsWith("<style>")) continue;
    const [, close, name, rawAttrs, selfClose] = m;
    const lower = name!.toLowerCase();
    if (close) {
      assertEquals(stack.pop(), lower, `</${lower}> closes the wrong element`);
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of rawAttrs!.matchAll(/([\w:-]+)="([^"]*)"/g)) attrs[a[1]!] = a[2]!;
    seen.push({ name: lower, attrs });
    if (!selfClose && !VOID.has(lower)) stack.push(lower);
  }
  assert(!/[<>]/.test(body.slice(last)), "stray markup at the end");
  assertEquals(stack, [], "unclosed elements");
  return seen;
}

/** Every way a page could reach out: a scheme, a protocol-relative address, url(), @import. */
export function assertNoExternalUrl(html: string): void {
  assert(!/https?:/i.test(html), "an http(s) URL");
  assert(!/\b(?:src|href|xlink:href)\s*=/i.test(html), "a src or href attribute");
  assert(!/url\(/i.test(html), "a CSS url()");
  assert(!/@import/i.test(html), "a CSS @import");
  assert(!/["'(\s]\/\/[\w.-]/.test(html), "a protocol-relative address");
  assert(!/<script/i.test(html), "a script");
}
