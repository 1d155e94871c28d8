/**
 * `netkit client`: dispatch on the client action (pipe, message, probe) and
 * print its result.
 *
 * @example
 * ```ts
 * import { runClient } from "./client.ts";
 * import { parseCommandLine } from "../cli/parse.ts";
 * import type { ClientConfig } from "../config.ts";
 *
 * const config = parseCommandLine(["client", "--message", "hi"]) as ClientConfig;
 * Deno.exit(await runClient(config));
 * ```
 *
 * @module
 */

import { exchangeMessages } from "../client/message.ts";
import { selectEngineOf } from "../privileges.ts";
import { pipe } from "../client/pipe.ts";
import type { ClientConfig, MessageConfig } from "../config.ts";
import { formatDuration } from "../duration.ts";
import { formatEndpoint } from "../address.ts";
import { EXIT_CODES } from "../errors.ts";
import { logEvent, logLine } from "../io.ts";
import { writeStdout } from "../output.ts";
import { RunStop } from "../stop.ts";
import { formatBytes, formatCount, formatCountOf } from "../units.ts";
import { runProbeCommand } from "./probe.ts";
import { runThroughputCommand } from "./throughput.ts";

/** Run a client; returns the exit code. */
export async function runClient(config: ClientConfig): Promise<number> {
  switch (config.action) {
    case "pipe":
      await pipe(config);
      return 0;
    case "message":
      return await runMessages(config);
    case "probe":
      return await runProbeCommand(config);
    case "throughput":
      return await runThroughputCommand(config);
    default: {
      const never: never = config;
      throw new Error(`unknown client action ${JSON.stringify(never)}`);
    }
  }
}

async function runMessages(config: MessageConfig): Promise<number> {
  const decoder = new TextDecoder();
  const single = config.connections === 1;
  const out = writeStdout;
  // A closed stdout stops the exchange and ends the run quietly.
  using stop = new RunStop();
  const engine = selectEngineOf(config);
  const result = await exchangeMessages(config, {
    signal: stop.signal,
    ...(engine && { engine }),
    onReply: (connection, index, reply) => {
      const text = decoder.decode(reply);
      const line = text.endsWith("\n") ? text : `${text}\n`;
      if (single) out(line);
      if (!config.verbose) return;
      if (single) logEvent(`reply ${index + 1} of ${config.count}: ${reply.length} B`);
      else logEvent(`connection ${connection + 1} reply ${index + 1}: ${line.trimEnd()}`);
    },
    onOpen: (connection) => {
      if (!config.verbose) return;
      const verb = config.endpoint.transport === "udp" ? "sending to" : "connected to";
      const which = single ? "" : `connection ${connection + 1}: `;
      logEvent(`${which}${verb} ${formatEndpoint(config.endpoint)}`);
    },
  });
  if (stop.reason === "stdout") return 0;
  if (single) {
    const failure = result.errors.values().next().value;
    if (failure) throw failure.error;
    return 0;
  }
  for (const { error, count } of result.errors.values()) {
    logLine(`error: ${formatCount(count)} connection${count === 1 ? "" : "s"}: ${error.message}`);
  }
  out(
    `connections: ${formatCount(result.ok)} ok, ${formatCount(result.failed)} failed; ` +
      `messages: ${formatCount(result.sent)} sent, ${
        formatCountOf(result.replies, "reply", "replies")
      }; ` +
      `bytes: ${formatBytes(result.bytesOut)} out, ${formatBytes(result.bytesIn)} in; ` +
      `elapsed: ${formatDuration(result.elapsedMs)}\n`,
  );
  return result.failed === 0 ? 0 : EXIT_CODES.failure.code;
}
