/**
 * `netkit lab IMPAIRMENTS -- COMMAND …`: run one netkit command in a private
 * network namespace whose loopback the kernel impairs (lib/lab/).
 *
 * Outside, it re-executes itself as `lab --lab-inside …` in a new namespace
 * (lib/lab/namespace.ts). Inside, it impairs `lo`, starts the lab's echo
 * server on 127.0.0.1:5050 when the command is a `client`, runs the command
 * with stdin, stdout and stderr passed through (so `--json` stays pure), and
 * prints the namespace's kernel counters on stderr at the end. `lab … --
 * compare …` is compare with the same impairment flags, whose report and
 * findings cite those counters themselves.
 *
 * @example
 * ```ts
 * import { runLab } from "./lab.ts";
 *
 * Deno.exit(
 *   await runLab({
 *     command: "lab",
 *     impairment: { lossPercent: 5 },
 *     args: ["client", "--probe", "--proto", "udp"],
 *     inside: false,
 *   }),
 * );
 * ```
 *
 * @module
 */

import type { LabConfig } from "../config.ts";
import { NetkitError } from "../errors.ts";
import { logLine } from "../io.ts";
import { counterDelta, formatKernelCounters } from "../lab/counters.ts";
import { hasImpairment, impairmentFlags } from "../lab/impairment.ts";
import {
  applyImpairments,
  runInNamespace,
  spawnSelf,
  waitForwardingSignals,
} from "../lab/namespace.ts";

/** Where the lab's own echo server listens, inside the namespace: netkit client's default. */
const LAB_SERVER_PORT = 5050;

/** Run the lab; returns the command's exit code. */
export async function runLab(config: LabConfig): Promise<number> {
  if (!config.inside && config.args[0] === "compare" && hasImpairment(config.impairment)) {
    // The same as compare's own impairment flags: its findings then cite the lab's counters.
    return await runInNamespace([
      ...config.args,
      ...impairmentFlags(config.impairment, "--link-rate"),
      "--lab-inside",
    ]);
  }
  if (!config.inside) {
    return await runInNamespace([
      "lab",
      "--lab-inside",
      ...impairmentFlags(config.impairment),
      ...(config.verbose ? ["--verbose"] : []),
      "--",
      ...config.args,
    ]);
  }
  const log = config.verbose ? logLine : undefined;
  const lab = await applyImpairments(config.impairment, log);
  if (lab.description) logLine(`lab: ${lab.description}`);
  const before = await lab.counters();
  const server = config.args[0] === "client" ? await startLabServer() : undefined;
  let code: number;
  try {
    code = await waitForwardingSignals(
      spawnSelf(config.args, { stdout: "inherit", stderr: "inherit" }),
    );
  } finally {
    await server?.stop();
  }
  logLine(formatKernelCounters(counterDelta(before, await lab.counters())));
  return code;
}

/** `netkit server --proto both` on 127.0.0.1:5050, started and waited for. */
async function startLabServer(): Promise<{ stop(): Promise<void> }> {
  const child = spawnSelf([
    "server",
    "--proto",
    "both",
    "--host",
    "127.0.0.1",
    "--port",
    String(LAB_SERVER_PORT),
    "--drain-timeout",
    "0",
  ], { stdout: "piped", stderr: "piped" });
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  let listening = 0;
  while (listening < 2) {
    const { value, done } = await reader.read();
    if (done) {
      const { code } = await child.status;
      throw new NetkitError(
        "failure",
        `The lab's echo server exited (${code}) before listening: ${(await stderr).trim()}`,
      );
    }
    pending += value;
    for (let nl; (nl = pending.indexOf("\n")) >= 0; pending = pending.slice(nl + 1)) {
      if (pending.startsWith("listening on ")) listening++;
    }
  }
  const drained = (async () => {
    while (!(await reader.read()).done) { /* keep the pipe flowing */ }
  })();
  return {
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await drained;
      await stderr;
    },
  };
}
