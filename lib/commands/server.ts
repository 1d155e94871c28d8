/**
 * `netkit server`: print `listening on …` for every bound endpoint, serve until
 * Ctrl-C or SIGTERM (saying at once how many connections it drains), then print
 * the summary on stderr. Log lines carry an ISO 8601 time.
 *
 * @example
 * ```ts
 * import { runServer } from "./server.ts";
 * import { parseCommandLine } from "../cli/parse.ts";
 * import type { ServerConfig } from "../config.ts";
 *
 * const config = parseCommandLine(["server", "--port", "0"]) as ServerConfig;
 * Deno.exit(await runServer(config));
 * ```
 *
 * @module
 */

import { formatEndpoint, formatHost } from "../address.ts";
import type { ServerConfig } from "../config.ts";
import { logEvent, logLine, writeText } from "../io.ts";
import { selectEngineOf } from "../privileges.ts";
import { formatCount } from "../units.ts";
import { formatSummary, serve } from "../server/serve.ts";
import { readTerminalFacts, styleFor } from "../terminal.ts";
import { STOP_SIGNALS } from "../signals.ts";

/** Serve until a signal (or `--once`); returns the exit code. */
export async function runServer(config: ServerConfig): Promise<number> {
  const controller = new AbortController();
  const onSignal = () => {
    // A second signal exits at once.
    if (controller.signal.aborted) Deno.exit(130);
    controller.abort();
  };
  for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, onSignal);
  try {
    // Throughput tests' UDP ports (echo and discard over TCP) run on an engine; chat never does.
    const engine = selectEngineOf(config);
    const summary = await serve(config, {
      ...(engine && { engine: engine.engine }),
      signal: controller.signal,
      onListening: (endpoint) => {
        // A TLS listener says so: clients must connect with --tls.
        const where = config.tls && endpoint.transport === "tcp"
          ? `tls ${formatHost(endpoint.hostname, endpoint.port)}`
          : formatEndpoint(endpoint);
        writeText(Deno.stdout, `listening on ${where}\n`);
      },
      log: logEvent,
      onStopping: (open) =>
        logLine(
          `draining ${formatCount(open)} connection${
            open === 1 ? "" : "s"
          } (Ctrl-C again to stop now)`,
        ),
    });
    logLine(formatSummary(summary, styleFor("text", readTerminalFacts(), "stderr")));
    return 0;
  } finally {
    for (const signal of STOP_SIGNALS) Deno.removeSignalListener(signal, onSignal);
  }
}
