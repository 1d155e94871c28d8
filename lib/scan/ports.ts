/**
 * Port lists as `nc -z` and nmap take them: `22`, `22,80,443`, `5000-5100`,
 * mixed, each port once in the order first given.
 *
 * @example
 * ```ts
 * import { parsePortList } from "./ports.ts";
 *
 * parsePortList("22,80,5000-5002"); // [22, 80, 5000, 5001, 5002]
 * parsePortList("80-20"); // "'80-20' runs backwards: write 20-80"
 * ```
 *
 * @module
 */

/**
 * Parse a port list.
 *
 * @returns the ports, or a sentence saying what is wrong.
 */
export function parsePortList(text: string): number[] | string {
  const seen = new Set<number>();
  const ports: number[] = [];
  const port = (p: string): number | undefined => {
    if (!/^\d{1,5}$/.test(p)) return undefined;
    const n = Number(p);
    return n >= 1 && n <= 65535 ? n : undefined;
  };
  for (const item of text.split(",")) {
    if (item === "") return `'${text}' has an empty item: write e.g. 22,80,443 or 1-1024`;
    const dash = item.indexOf("-");
    const [lo, hi] = dash < 0
      ? [port(item), port(item)]
      : [port(item.slice(0, dash)), port(item.slice(dash + 1))];
    if (lo === undefined || hi === undefined) {
      return `'${item}' is not a port (1 to 65535) or a range such as 1-1024`;
    }
    if (lo > hi) return `'${item}' runs backwards: write ${hi}-${lo}`;
    for (let p = lo; p <= hi; p++) {
      if (!seen.has(p)) {
        seen.add(p);
        ports.push(p);
      }
    }
  }
  return ports;
}
