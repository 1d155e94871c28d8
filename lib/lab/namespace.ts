/**
 * The lab: a private network namespace whose loopback the kernel impairs.
 *
 * ONE way in, chosen for robustness: `unshare --net` (as root), or, where
 * that is not permitted, `unshare --user --map-root-user --net` (unprivileged
 * user namespaces), exec'ing netkit itself inside. The namespace is
 * anonymous: it exists exactly as long as a process lives in it, so nothing
 * can be left behind: not after Ctrl-C, SIGTERM, an error or even SIGKILL;
 * its nftables table and qdiscs go with it. (`ip netns add` would leave a
 * named namespace, and everything in it, whenever cleanup did not run.)
 *
 * Inside, {@linkcode applyImpairments} brings `lo` up (MTU 1500), adds the
 * nftables drop rules and the netem/tbf qdiscs, and returns a handle that
 * reads the namespace's own kernel counters.
 *
 * @example
 * ```ts
 * import { runInNamespace } from "./namespace.ts";
 *
 * // From outside: re-execute `netkit lab --lab-inside … -- client …` in a new namespace.
 * const code = await runInNamespace(["lab", "--lab-inside", "--loss", "5", "--", "client"]);
 * ```
 *
 * @module
 */

import type { LabImpairment } from "../config.ts";
import { NetkitError } from "../errors.ts";
import { type KernelCounters, parseNftDrops, parseNstat } from "./counters.ts";
import {
  describeImpairment,
  LAB_MTU,
  netemFlags,
  NFT_TABLE,
  nftScript,
  tcCommands,
} from "./impairment.ts";
import {
  missingProgram,
  type ProgramName,
  type ProgramResult,
  PROGRAMS,
  runProgram,
  SELF_EXE,
} from "./programs.ts";

function cannot(message: string): NetkitError {
  return new NetkitError("usage", message);
}

/**
 * The arguments that make netkit's executable run netkit: none for the
 * compiled binary; under `deno run`, the same permission set (`-P=netkit`
 * from the deno.json beside main.ts) and the same main module.
 */
function selfArgs(): string[] {
  if (Deno.build.standalone) return [];
  const main = Deno.mainModule;
  if (!main.startsWith("file:")) {
    throw cannot(`The lab re-runs netkit from a local file, not ${main}: use the netkit binary`);
  }
  const path = (url: URL) => decodeURIComponent(url.pathname);
  return [
    "run",
    "-q",
    "--no-prompt",
    `--config=${path(new URL("deno.json", main))}`,
    "-P=netkit",
    path(new URL(main)),
  ];
}

/**
 * Wait for `child`, passing on SIGINT, SIGTERM and SIGHUP; its exit code (128
 * + N when killed by signal N). The child runs in its own session (`detached`),
 * so a Ctrl-C on the terminal reaches it once, through here, not twice (a
 * second Ctrl-C means "stop waiting for echoes" to netkit).
 */
export async function waitForwardingSignals(child: Deno.ChildProcess): Promise<number> {
  const handlers = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((signal) => {
    const handler = () => {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
    };
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  try {
    return (await child.status).code;
  } finally {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  }
}

/** `unshare` flags that work here: a network namespace alone (root), else inside a user namespace. */
async function namespaceFlags(): Promise<string[]> {
  const tried: string[] = [];
  for (const flags of [["--net"], ["--user", "--map-root-user", "--net"]]) {
    // `true` (found on PATH by unshare) only proves the namespace can be made.
    const probe = await runProgram("unshare", [...flags, "--", "true"]);
    if (probe.code === 0) return flags;
    tried.push(
      `unshare ${flags.join(" ")}: ${probe.stderr.split("\n")[0] || `exit ${probe.code}`}`,
    );
  }
  throw cannot(
    `Cannot create a network namespace (${tried.join("; ")}): run as root, or allow ` +
      "unprivileged user namespaces (sysctl user.max_user_namespaces > 0; on Ubuntu " +
      "kernel.apparmor_restrict_unprivileged_userns=0); or compare on plain loopback without impairment flags",
  );
}

/**
 * Run netkit `args` inside a new private network namespace, with stdin,
 * stdout and stderr passed through; returns its exit code.
 */
export async function runInNamespace(args: readonly string[]): Promise<number> {
  if (Deno.build.os !== "linux") {
    throw cannot(
      `The lab needs Linux network namespaces, not ${Deno.build.os}: ` +
        "run compare without impairment flags, or run netkit in a Linux VM or container",
    );
  }
  const flags = await namespaceFlags();
  const unshare = await findProgram("unshare");
  const child = new Deno.Command(unshare, {
    args: [...flags, "--", Deno.execPath(), ...selfArgs(), ...args],
    detached: true, // its own session: terminal signals come through waitForwardingSignals only
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  return await waitForwardingSignals(child);
}

/** The first path of `name` that exists (without needing read permission: `--version` is run). */
async function findProgram(name: ProgramName): Promise<string> {
  for (const path of PROGRAMS[name].paths) {
    try {
      await new Deno.Command(path, { args: ["--version"], stdout: "null", stderr: "null" })
        .output();
      return path;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  throw missingProgram(name);
}

/** Start netkit `args` (this same executable) inside the current namespace. */
export function spawnSelf(
  args: readonly string[],
  stdio: { stdout: "inherit" | "piped" | "null"; stderr: "inherit" | "piped" | "null" },
): Deno.ChildProcess {
  return new Deno.Command(SELF_EXE, {
    args: [...selfArgs(), ...args],
    detached: true, // its own session: terminal signals come through waitForwardingSignals only
    stdin: stdio.stdout === "inherit" ? "inherit" : "null",
    ...stdio,
  }).spawn();
}

/** The applied impairment: its description, and the namespace's counters. */
export interface Lab {
  /** "loss 5% each way by nftables; …" */
  description: string;
  impairment: LabImpairment;
  /** The kernel counters of this namespace now. */
  counters(): Promise<KernelCounters>;
}

async function must(what: string, result: Promise<ProgramResult>): Promise<ProgramResult> {
  const r = await result;
  if (r.code !== 0) throw cannot(`The lab could not ${what}: ${r.stderr || `exit ${r.code}`}`);
  return r;
}

/**
 * Impair this namespace's loopback. Refuses (before changing anything) unless
 * it is a fresh namespace: only `lo`, and down.
 */
export async function applyImpairments(
  impairment: LabImpairment,
  log: (line: string) => void = () => {},
): Promise<Lab> {
  const links = await must("list links", runProgram("ip", ["-o", "link", "show"]));
  const lines = links.stdout.trim().split("\n");
  if (lines.length !== 1 || !/^\d+: lo: <LOOPBACK>/.test(lines[0] ?? "")) {
    throw cannot(
      "'--lab-inside' is internal and runs only in the lab's own fresh namespace: " +
        "use 'netkit lab' or compare's impairment flags",
    );
  }
  const step = (what: string, name: ProgramName, args: string[], input?: string) => {
    log(`lab: ${name} ${args.join(" ")}`);
    return must(what, runProgram(name, args, input));
  };
  await step("bring lo up", "ip", ["link", "set", "dev", "lo", "mtu", String(LAB_MTU), "up"]);
  if (impairment.lossPercent !== undefined) {
    const nft = await runProgram("nft", ["-f", "-"], nftScript(impairment.lossPercent));
    log(`lab: nft -f - (drop ${impairment.lossPercent}% of tcp and udp on input)`);
    if (nft.code !== 0) {
      throw cannot(
        `nftables cannot add the loss rule here (${nft.stderr.split("\n")[0]}): ` +
          "the kernel needs nf_tables with numgen; or drop --loss",
      );
    }
  }
  for (const args of tcCommands(impairment)) {
    log(`lab: tc ${args.join(" ")}`);
    const tc = await runProgram("tc", args);
    if (tc.code === 0) continue;
    if (args.includes("netem")) {
      throw cannot(
        `This kernel has no netem (tc: ${tc.stderr.split("\n")[0]}), so ${
          netemFlags(impairment).join(", ")
        } cannot be applied: load it (modprobe sch_netem), use --loss and --rate (nftables, tbf), ` +
          "or impair UDP in user space with 'netkit relay'",
      );
    }
    throw cannot(`tc could not shape lo (${tc.stderr.split("\n")[0]}): the kernel needs sch_tbf`);
  }
  const counters = async (): Promise<KernelCounters> => {
    const nstat = await must("read counters", runProgram("nstat", ["-asz", "--json"]));
    const drops = impairment.lossPercent === undefined
      ? { dropsUdp: 0, dropsTcp: 0 }
      : parseNftDrops(
        (await must(
          "read the drop counters",
          runProgram("nft", ["list", "table", "inet", NFT_TABLE]),
        ))
          .stdout,
      );
    return { ...parseNstat(nstat.stdout), ...drops };
  };
  return { description: describeImpairment(impairment), impairment, counters };
}
