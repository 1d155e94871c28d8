/**
 * The kernel's own UDP counters (Linux `/proc/net/snmp`), read to say why UDP
 * lost probes: `RcvbufErrors` counts datagrams dropped because a socket's
 * receive buffer was full. Counters are system-wide (per network namespace),
 * so a figure is "during the run", not "caused by this run" alone.
 *
 * Deno asks for `--allow-all` to read anything under `/proc/net`, which the
 * binary does not get: under its own permissions this returns `undefined` and
 * reports fall back to other evidence. It answers under `deno run -A`, through
 * handles {@linkcode openKernelCounters} opened before privileges were dropped.
 *
 * @example
 * ```ts
 * import { readUdpCounters } from "./udp_counters.ts";
 *
 * const before = await readUdpCounters();
 * console.log(before?.RcvbufErrors);
 * ```
 *
 * @module
 */

import { readAll } from "@std/io/read-all";

/** UDP counters by name, e.g. `InDatagrams`, `RcvbufErrors`; undefined where unreadable. */
export function readUdpCounters(): Promise<Record<string, number> | undefined> {
  return readSnmpCounters("Udp");
}

/**
 * One section of `/proc/net/snmp` by name (`Udp: RcvbufErrors`, `Tcp: RetransSegs`);
 * undefined where unreadable.
 */
export async function readSnmpCounters(
  section: "Udp" | "Tcp",
): Promise<Record<string, number> | undefined> {
  const text = await readProc("/proc/net/snmp");
  if (text === undefined) return undefined;
  const lines = text.split("\n").filter((line) => line.startsWith(`${section}: `));
  const [names, values] = lines.map((line) => line.slice(section.length + 2).trim().split(/\s+/));
  if (!names || !values || names.length !== values.length) return undefined;
  return Object.fromEntries(names.map((name, i) => [name, Number(values[i])]));
}

/**
 * Datagrams the kernel dropped on the UDP sockets bound to local `port`
 * (the `drops` column of `/proc/net/udp` and `/proc/net/udp6`): for one of
 * netkit's own sockets, exactly what its receiver failed to read in time.
 * Undefined where unreadable or when no such socket is listed.
 */
export async function readUdpSocketDrops(port: number): Promise<number | undefined> {
  let found = false;
  let drops = 0;
  for (const path of ["/proc/net/udp", "/proc/net/udp6"]) {
    const text = await readProc(path);
    if (text === undefined) continue;
    const drop = parseUdpSocketDrops(text, port);
    if (drop !== undefined) {
      found = true;
      drops += drop;
    }
  }
  return found ? drops : undefined;
}

/** The summed `drops` of the sockets on local `port` in one `/proc/net/udp*` text. */
export function parseUdpSocketDrops(text: string, port: number): number | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  let found = false;
  let drops = 0;
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    const local = fields[1];
    const drop = Number(fields[fields.length - 1]);
    if (local === undefined || fields.length < 13 || !Number.isFinite(drop)) continue;
    if (local.slice(local.lastIndexOf(":") + 1) !== hexPort) continue;
    found = true;
    drops += drop;
  }
  return found ? drops : undefined;
}

/** Handles opened by {@linkcode openKernelCounters}, by path; each read in turn. */
const held = new Map<string, { file: Deno.FsFile; turn: Promise<unknown> }>();

/** The kernel counter files netkit reads. */
const COUNTER_FILES = ["/proc/net/snmp", "/proc/net/udp", "/proc/net/udp6"];

/**
 * Open the kernel's counter files while the process may still read them:
 * Deno lets a program read `/proc/net` only with every permission, which
 * `main.ts` revokes right after parsing (lib/privileges.ts). Later reads go
 * through these handles (seek to 0, read again: the kernel regenerates the
 * text). Does nothing off Linux or when not permitted (the binary's own
 * permissions): reports then say less.
 */
export function openKernelCounters(): void {
  if (Deno.build.os !== "linux") return;
  for (const path of COUNTER_FILES) {
    if (held.has(path)) continue;
    try {
      held.set(path, { file: Deno.openSync(path), turn: Promise.resolve() });
    } catch {
      // not permitted or not there
    }
  }
}

async function readProc(path: string): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return undefined;
  const handle = held.get(path);
  if (handle) {
    // One read at a time per handle: a seek and a read must not interleave with another's.
    const read = handle.turn.then(async () => {
      await handle.file.seek(0, Deno.SeekMode.Start);
      return new TextDecoder().decode(await readAll(handle.file));
    });
    handle.turn = read.catch(() => {});
    return await read.catch(() => undefined);
  }
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined; // not permitted or not there: the report just says less
  }
}

/** What {@linkcode receiveDrops} read: one socket's drops, and the host's RcvbufErrors. */
export interface DropCounters {
  socket: number | undefined;
  host: number | undefined;
}

/** Read the drop counters that tell whether `socket`'s receiver kept up. */
export async function receiveDrops(socket: { addr: Deno.Addr }): Promise<DropCounters> {
  const port = (socket.addr as Deno.NetAddr).port;
  return {
    socket: await readUdpSocketDrops(port),
    host: (await readUdpCounters())?.RcvbufErrors,
  };
}

/**
 * Datagrams dropped for a full receive buffer between two readings: the
 * socket's own count where readable, else the host's; null when neither is.
 */
export function dropsDuring(before: DropCounters, after: DropCounters): number | null {
  if (before.socket !== undefined && after.socket !== undefined) {
    return after.socket - before.socket;
  }
  if (before.host !== undefined && after.host !== undefined) return after.host - before.host;
  return null;
}
