/**
 * netkit: echo, chat and netcat-style piping over TCP, UDP and Unix sockets,
 * and a side-by-side measurement of how TCP and UDP deliver the same traffic.
 *
 * This file only parses the command line, dispatches through the table of
 * commands, and formats errors once.
 *
 * @example
 * ```sh
 * deno task netkit server --proto both --port 5050
 * echo hello | deno task netkit client 127.0.0.1 5050
 * ```
 *
 * @module
 */

import { parseCommandLine, requestedOutput } from "./lib/cli/parse.ts";
import { renderTopHelp } from "./lib/cli/spec.ts";
import { runClient } from "./lib/commands/client.ts";
import { runCompare } from "./lib/commands/compare.ts";
import { runServer } from "./lib/commands/server.ts";
import type { Config } from "./lib/config.ts";
import { exitCodeOf, formatError } from "./lib/errors.ts";
import { logLine, writeText } from "./lib/io.ts";
import { Output } from "./lib/output.ts";

type Runner<C extends Config> = (config: C) => Promise<number>;

const COMMANDS: { [K in Config["command"]]: Runner<Extract<Config, { command: K }>> } = {
  server: runServer,
  client: runClient,
  compare: runCompare,
  text: (config) => {
    console.log(config.text);
    return Promise.resolve(0);
  },
};

/** Run netkit with `args`; returns the process exit code. */
export async function main(args: readonly string[]): Promise<number> {
  let config: Config;
  try {
    config = parseCommandLine(args);
  } catch (err) {
    // Bare `netkit` shows the usage; --json gets its JSON document even for a usage error.
    if (args.length === 0) writeText(Deno.stdout, renderTopHelp() + "\n");
    new Output(requestedOutput(args)).error(err);
    return fail(err);
  }
  try {
    const run = COMMANDS[config.command] as Runner<Config>;
    return await run(config);
  } catch (err) {
    return fail(err);
  }
}

/** The one `error: …` line on stderr, and the exit code. */
function fail(err: unknown): number {
  logLine(formatError(err));
  return exitCodeOf(err);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
