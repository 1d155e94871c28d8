/**
 * `netkit relay LISTEN TARGET`: print `listening on …`, relay until Ctrl-C or
 * SIGTERM, then print the per-direction counters on stderr (or, with
 * `--json`, one JSON document on stdout).
 *
 * @example
 * ```ts
 * import { runRelay } from "./relay.ts";
 * import { parseCommandLine } from "../cli/parse.ts";
 * import type { RelayConfig } from "../config.ts";
 *
 * const config = parseCommandLine(["relay", "tcp:0", "tcp:127.0.0.1:5050"]) as RelayConfig;
 * Deno.exit(await runRelay(config));
 * ```
 *
 * @module
 */

import type { RelayConfig } from "../config.ts";
import { logEvent, logLine, writeText } from "../io.ts";
import { Output } from "../output.ts";
import { formatRelayEndpoint, isStream } from "../relay/address.ts";
import { emptyRelayCounters, formatRelaySummary, relaySummaryJson } from "../relay/counters.ts";
import { relay } from "../relay/relay.ts";
import { STOP_SIGNALS } from "../signals.ts";

/** Relay until a signal; returns the exit code. */
export async function runRelay(config: RelayConfig): Promise<number> {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) Deno.exit(130); // a second signal stops at once
    controller.abort();
  };
  for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, onSignal);
  const counters = emptyRelayCounters();
  const out = new Output(config.output);
  let listening = formatRelayEndpoint(config.listen);
  try {
    await relay(config, {
      signal: controller.signal,
      counters,
      onListening: (endpoint) => {
        listening = formatRelayEndpoint(endpoint);
        // The line tests and scripts wait for; on stderr with --json, so stdout stays JSON.
        const line = `listening on ${listening} -> ${formatRelayEndpoint(config.target)}\n`;
        writeText(config.output === "text" ? Deno.stdout : Deno.stderr, line);
      },
      ...(config.verbose && { log: logEvent }),
      warn: logEvent,
    });
  } finally {
    for (const signal of STOP_SIGNALS) Deno.removeSignalListener(signal, onSignal);
  }
  const kind = isStream(config.listen) ? "stream" : "datagram";
  if (config.output === "text") {
    for (const line of formatRelaySummary(counters, kind, config.seed)) logLine(line);
  }
  out.result(
    relaySummaryJson(counters, {
      listen: listening,
      target: formatRelayEndpoint(config.target),
      seed: config.seed,
    }),
  );
  return 0;
}
