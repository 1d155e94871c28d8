/**
 * Least privilege per command, in the spirit of OpenBSD's `pledge`: ONE table
 * says which Deno permissions each command (and mode) keeps; `main.ts` calls
 * {@linkcode dropPrivileges} once, after the flags are parsed and the files
 * they name are read, and every other permission is revoked with
 * `Deno.permissions.revoke` for the rest of the run. `-v` prints
 * {@linkcode formatPrivileges}: what the process really holds afterwards.
 *
 * Deno revokes a permission as a whole: a global `read` grant cannot be
 * narrowed to one path. So a command on a Unix socket keeps `read` and `write`
 * (Deno checks both on the socket path), and `compare` keeps `read` (its
 * embedded server is a Worker whose module is loaded from disk after the drop;
 * workers inherit the permissions left).
 *
 * `run` (granted by the binary for the lab's programs only: ip, nft, tc,
 * nstat, unshare and netkit's own executable, see `lib/lab/programs.ts`) is
 * kept by `lab` and by `compare` with impairment flags, and dropped by every
 * other command.
 *
 * `ffi` (granted by the binary for the libc paths only, see
 * `lib/engine/native/libc.ts`) is kept only by a role whose row says
 * `withNativeEngine` (UDP probe or TCP ping-pong, UDP messages, UDP
 * throughput, compare, a UDP scan, a server whose throughput tests open UDP
 * ports), and only when the
 * native engine was selected for the run (`--engine native`, or `auto` where
 * libc is found: Linux, a checked layout, a granted path that exists): its
 * calls need `ffi`, and a server's `auto` only opens the library at its first
 * UDP test port (see `lib/engine/select.ts`). Every other
 * command, and those with `--engine deno`, drop it.
 *
 * @example
 * ```ts
 * import { dropPrivileges, formatPrivileges } from "./privileges.ts";
 * import { parseCommandLine } from "./cli/parse.ts";
 *
 * const config = parseCommandLine(["client", "127.0.0.1", "5050"]);
 * console.log(formatPrivileges(dropPrivileges(config))); // "permissions kept: net; dropped: read, write, ffi"
 * ```
 *
 * @module
 */

import type { Config } from "./config.ts";
import { LIBC_PATHS } from "./engine/native/libc.ts";
import { RUN_PATHS } from "./lab/programs.ts";
import { findNativeEngine } from "./engine/native/engine.ts";
import {
  type EngineChoice,
  type EngineSelection,
  formatSelection,
  selectEngine,
} from "./engine/select.ts";
import { logEvent } from "./io.ts";
import { readTlsFiles } from "./tls_files.ts";
import { openKernelCounters } from "./udp_counters.ts";

/** The Deno permissions a command can keep or lose (`import` and hrtime stay as granted). */
export type PermissionName = "net" | "read" | "write" | "ffi" | "run" | "env" | "sys";

/** Every permission this module manages, in the order they are printed. */
export const PERMISSION_NAMES: readonly PermissionName[] = [
  "net",
  "read",
  "write",
  "ffi",
  "run",
  "env",
  "sys",
];

/** A command or mode with its own row in {@linkcode PRIVILEGES}. */
export type Role =
  | "server"
  | "server-tls"
  | "server-unix"
  | "client-netcat"
  | "client-unix"
  | "client-tls"
  | "message"
  | "probe"
  | "throughput"
  | "compare"
  | "relay"
  | "relay-unix"
  | "scan"
  | "compare-lab"
  | "lab"
  | "text";

/** One row: what a role keeps, and why (the README's permissions table says the same). */
export interface Privilege {
  keep: readonly PermissionName[];
  why: string;
  /** Kept as well when the run's UDP goes through the native engine. */
  withNativeEngine?: readonly PermissionName[];
}

/** THE table: what each command keeps once flags and files are read. Everything else is revoked. */
export const PRIVILEGES: Readonly<Record<Role, Privilege>> = {
  server: {
    keep: ["net"],
    why:
      "listens and serves; nothing on disk; ffi (libc only) while test UDP runs on the native engine",
    withNativeEngine: ["ffi"],
  },
  "server-tls": {
    keep: ["net"],
    why: "reads --cert and --key at start, then drops read",
    withNativeEngine: ["ffi"],
  },
  "server-unix": {
    keep: ["net", "read", "write"],
    why: "Deno checks read and write on the socket path; write removes it at exit",
  },
  "client-netcat": { keep: ["net"], why: "stdin to the socket, the socket to stdout" },
  "client-unix": {
    keep: ["net", "read", "write"],
    why: "Deno checks read and write on the socket path",
  },
  "client-tls": { keep: ["net"], why: "reads --ca at start, then drops read" },
  message: {
    keep: ["net"],
    why: "request/reply exchanges; ffi (libc only) while UDP runs on the native engine",
    withNativeEngine: ["ffi"],
  },
  probe: {
    keep: ["net"],
    why:
      "probes and echoes; ffi (libc only) while UDP, or a TCP ping-pong, runs on the native engine",
    withNativeEngine: ["ffi"],
  },
  throughput: {
    keep: ["net"],
    why: "control connection and data streams; ffi (libc only) while UDP runs on the native engine",
    withNativeEngine: ["ffi"],
  },
  compare: {
    keep: ["net", "read"],
    why:
      "the embedded server's Worker module is read from disk; /proc/net/snmp where allowed; ffi (libc only) while UDP runs on the native engine",
    withNativeEngine: ["ffi"],
  },
  relay: {
    keep: ["net"],
    why: "listens and connects; --cert, --key and --ca are read at start, then read is dropped",
  },
  "relay-unix": {
    keep: ["net", "read", "write"],
    why: "Deno checks read and write on a unix: socket path; write removes a listening one at exit",
  },
  scan: {
    keep: ["net"],
    why:
      "connects and sends probes; nothing on disk; ffi (libc only) while a UDP scan runs on the native engine",
    withNativeEngine: ["ffi"],
  },
  "compare-lab": {
    keep: ["net", "read", "run"],
    why:
      "re-runs itself in a private network namespace (unshare) that it impairs (ip, nft, tc) and reads (nstat, nft)",
    withNativeEngine: ["ffi"],
  },
  lab: {
    keep: ["read", "run"],
    why:
      "runs netkit in a private network namespace (unshare, /proc/self/exe) that it impairs and reads (ip, nft, tc, nstat)",
  },
  text: { keep: [], why: "prints help or the version" },
};

/** The row of {@linkcode PRIVILEGES} that applies to `config`. */
export function roleOf(config: Config): Role {
  switch (config.command) {
    case "server":
      if (config.endpoints.some((e) => e.transport === "unix")) return "server-unix";
      return config.tls ? "server-tls" : "server";
    case "client":
      return clientRole(config);
    case "compare":
      return config.impairment ? "compare-lab" : "compare";
    case "relay":
      return config.listen.transport === "unix" || config.target.transport === "unix"
        ? "relay-unix"
        : "relay";
    case "scan":
      return "scan";
    case "lab":
      return "lab";
    case "text":
      return "text";
    default: {
      const never: never = config;
      throw new Error(`unknown command ${JSON.stringify(never)}`);
    }
  }
}

function clientRole(config: Extract<Config, { command: "client" }>): Role {
  switch (config.action) {
    case "probe":
    case "throughput":
      return config.action;
    case "pipe":
    case "message":
      if (config.endpoint.transport === "unix") return "client-unix";
      if (config.tls) return "client-tls";
      return config.action === "pipe" ? "client-netcat" : "message";
    default: {
      const never: never = config;
      throw new Error(`unknown client action ${JSON.stringify(never)}`);
    }
  }
}

/**
 * The `--engine` choice of a command that moves UDP through an engine (UDP
 * probe, UDP throughput, compare, a server that runs throughput tests), or
 * `undefined` for everything else.
 */
export function engineChoiceOf(config: Config): EngineChoice | undefined {
  if (config.command === "compare") {
    // An impaired compare re-runs itself in the lab's namespace: only that inner run probes.
    return config.impairment && !config.labInside ? undefined : config.engine ?? "auto";
  }
  if (config.command === "server") {
    // Throughput tests (and their UDP ports) come over TCP, to echo or discard; a UDP echo
    // is served by the native echo Worker.
    const tests = config.mode !== "chat" && config.endpoints.some((e) => e.transport === "tcp");
    const udpEcho = config.mode === "echo" && config.endpoints.some((e) => e.transport === "udp");
    return tests || udpEcho ? config.engine ?? "auto" : undefined;
  }
  // A UDP scan hears ICMP port unreachable (closed) through the native engine's connected sockets.
  if (config.command === "scan") {
    return config.proto === "udp" ? config.engine ?? "auto" : undefined;
  }
  if (config.command !== "client") return undefined;
  if (
    (config.action === "probe" || config.action === "message") &&
    config.endpoint.transport === "udp"
  ) {
    return config.engine ?? "auto";
  }
  // A TCP ping-pong (one probe in flight, unpaced: `isWorkerPingPong`) on the native engine
  // runs in a Worker through libc; not from --source (node:net reads that socket itself).
  if (
    config.action === "probe" && config.workload.outstanding === 1 &&
    config.workload.rate === 0 && config.endpoint.source === undefined
  ) {
    return config.engine ?? "auto";
  }
  // TCP: a client that receives (-R, --bidir) raises its streams' receive low-water mark
  // through libc, with `--iperf3` too. UDP: `--iperf3` speaks iperf3's protocol through
  // lib/iperf3/ on Deno's sockets, not an engine.
  if (
    config.action === "throughput" &&
    (config.plan.proto === "udp" ? !config.iperf3 : config.plan.direction !== "up")
  ) {
    return config.plan.engine ?? "auto";
  }
  return undefined;
}

/**
 * The engine `config`'s run moves its UDP through ({@linkcode engineChoiceOf}),
 * chosen once and, with `-v`, logged; `undefined` when it uses none.
 */
export function selectEngineOf(config: Config): EngineSelection | undefined {
  const choice = engineChoiceOf(config);
  if (choice === undefined) return undefined;
  const verbose = "verbose" in config && config.verbose;
  // A server may never open a UDP port: it opens libc on first use. Others open it now.
  const lazy = config.command === "server"
    ? { ...(verbose && { onFallback: logEvent }) }
    : undefined;
  const selection = selectEngine(choice, undefined, lazy);
  if ("verbose" in config && config.verbose) logEvent(formatSelection(selection));
  return selection;
}

/** Whether `config`'s run will use the native engine (found once, without loading libc). */
function usesNativeEngine(
  config: Config,
  findNative: () => { path: string } | { reason: string },
): boolean {
  const choice = engineChoiceOf(config);
  return choice !== undefined && choice !== "deno" && "path" in findNative();
}

/**
 * Everything a run must do while it still holds every permission, in one
 * place: read --cert/--key/--ca, open the --report file, open /proc/net's
 * counters, and start a ping-pong's Worker (its module is read from disk).
 * Returns the config with the files' contents; call once, just before
 * {@linkcode dropPrivileges}.
 */
export async function prepareForDrop(parsed: Config): Promise<Config> {
  const read = await readTlsFiles(parsed);
  // Imported only by a run that writes a report: others never load the HTML renderer.
  const config = "report" in read && read.report
    ? await (await import("./report/file.ts")).openReportFile(read)
    : read;
  openKernelCounters(); // /proc/net needs every permission: open it before any is dropped
  if (config.command === "client" && config.action === "probe") {
    // Imported here only, so other commands never load the probe code.
    await (await import("./probe/pingpong.ts")).preparePingPong(config);
  }
  return config;
}

/** What {@linkcode dropPrivileges} did. */
export interface PrivilegeDrop {
  role: Role;
  /** Permissions the process still holds (queried after the revokes). */
  kept: PermissionName[];
  /** Permissions it held before and no longer does. */
  dropped: PermissionName[];
}

const ALL_LIBC_PATHS = [...LIBC_PATHS.x86_64, ...LIBC_PATHS.aarch64];

/**
 * Whether the process holds `name`: globally, or (ffi, run) for the paths the
 * binary is granted (the libc paths; the lab's programs).
 */
function held(name: PermissionName): boolean {
  const granted = (d: Deno.PermissionDescriptor) =>
    Deno.permissions.querySync(d).state === "granted";
  if (granted({ name } as Deno.PermissionDescriptor)) return true;
  if (name === "run") return RUN_PATHS.some((command) => granted({ name: "run", command }));
  return name === "ffi" && ALL_LIBC_PATHS.some((path) => granted({ name: "ffi", path }));
}

/**
 * Revoke every permission the role of `config` does not keep. Call once, after
 * parsing and after reading the files the command needs; irreversible.
 */
export function dropPrivileges(
  config: Config,
  findNative: () => { path: string } | { reason: string } = findNativeEngine,
): PrivilegeDrop {
  const role = roleOf(config);
  const row = PRIVILEGES[role];
  const keep = new Set([
    ...row.keep,
    ...(usesNativeEngine(config, findNative) ? row.withNativeEngine ?? [] : []),
  ]);
  const before = new Set(PERMISSION_NAMES.filter(held));
  for (const name of PERMISSION_NAMES) {
    if (!keep.has(name)) Deno.permissions.revokeSync({ name } as Deno.PermissionDescriptor);
  }
  const kept = PERMISSION_NAMES.filter(held);
  return { role, kept, dropped: PERMISSION_NAMES.filter((n) => before.has(n) && !held(n)) };
}

/** The `-v` line: `permissions kept: net, read; dropped: write, ffi`. */
export function formatPrivileges(drop: PrivilegeDrop): string {
  const list = (names: PermissionName[]) => names.length > 0 ? names.join(", ") : "none";
  return `permissions kept: ${list(drop.kept)}; dropped: ${list(drop.dropped)}`;
}
