/**
 * The programs the lab runs, by absolute path only: Deno's `run` permission
 * (deno.json `permissions.netkit.run`) lists exactly these paths, and Deno
 * matches them literally, so both the /usr/sbin and the /sbin form (and
 * /usr/bin, /bin) are listed and tried in order. `/proc/self/exe` is netkit's
 * own executable (the binary, or deno under `deno run`), whatever its path.
 *
 * @example
 * ```ts
 * import { runProgram } from "./programs.ts";
 *
 * const { code, stdout } = await runProgram("ip", ["-o", "link", "show"]);
 * console.log(code, stdout);
 * ```
 *
 * @module
 */

import { NetkitError } from "../errors.ts";

/** Where each program may live, most likely first, and the package that provides it. */
export const PROGRAMS = {
  ip: { paths: ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"], pkg: "iproute2" },
  tc: { paths: ["/usr/sbin/tc", "/sbin/tc", "/usr/bin/tc", "/bin/tc"], pkg: "iproute2" },
  nstat: {
    paths: ["/usr/bin/nstat", "/bin/nstat", "/usr/sbin/nstat", "/sbin/nstat"],
    pkg: "iproute2",
  },
  nft: { paths: ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft"], pkg: "nftables" },
  unshare: { paths: ["/usr/bin/unshare", "/bin/unshare"], pkg: "util-linux" },
} as const;

/** A program the lab runs. */
export type ProgramName = keyof typeof PROGRAMS;

/** netkit's own executable, for the process it starts inside the namespace. */
export const SELF_EXE = "/proc/self/exe";

/** Every path the `run` permission must allow (deno.json lists exactly these). */
export const RUN_PATHS: readonly string[] = [
  ...Object.values(PROGRAMS).flatMap((p) => p.paths),
  SELF_EXE,
];

/** What a finished program printed. */
export interface ProgramResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The error when `name` is on none of its paths. */
export function missingProgram(name: ProgramName): NetkitError {
  const { paths, pkg } = PROGRAMS[name];
  return new NetkitError(
    "usage",
    `'${name}' is missing (looked in ${
      paths.map((p) => p.slice(0, p.lastIndexOf("/"))).join(", ")
    }): install ${pkg}, or run compare without impairment flags on plain loopback`,
  );
}

/** Run `name args` (from the first path that exists) to completion, optionally fed `input`. */
export async function runProgram(
  name: ProgramName,
  args: readonly string[],
  input?: string,
): Promise<ProgramResult> {
  for (const path of PROGRAMS[name].paths) {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(path, {
        args: [...args],
        stdin: input === undefined ? "null" : "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw err;
    }
    if (input !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(input)).catch(() => {});
      await writer.close().catch(() => {});
    }
    const { code, stdout, stderr } = await child.output();
    const decoder = new TextDecoder();
    return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr).trim() };
  }
  throw missingProgram(name);
}
