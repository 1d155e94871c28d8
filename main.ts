/**
 * netkit: echo, chat and netcat-style piping over TCP, UDP and Unix sockets,
 * and a side-by-side measurement of how TCP and UDP deliver the same traffic.
 *
 * This file only parses the command line, reads the files it names, drops
 * the permissions the command does not need (lib/privileges.ts), dispatches
 * through the table of commands, and formats errors once.
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
import type { Config } from "./lib/config.ts";
import { exitCodeOf, formatError } from "./lib/errors.ts";
import { logEvent, logLine, writeText } from "./lib/io.ts";
import { dropPrivileges, formatPrivileges, prepareForDrop } from "./lib/privileges.ts";

type Runner<C extends Config> = (config: C) => Promise<number>;

/**
 * Each command's module is imported when that command runs, so a server never
 * loads (or keeps in memory) the client, compare or probe code, and so on.
 * The specifier is computed, not literal: Deno parses every module a literal
 * `import()` names at start (about 2 MiB for all six commands); so
 * `deno compile` needs `--include lib/commands/NAME.ts` for each (deno.json's
 * compile tasks).
 */
const COMMANDS: {
  [K in Config["command"]]: () => Promise<Runner<Extract<Config, { command: K }>>>;
} = {
  server: () =>
    runnerOf<typeof import("./lib/commands/server.ts"), "runServer">("server", "runServer"),
  client: () =>
    runnerOf<typeof import("./lib/commands/client.ts"), "runClient">("client", "runClient"),
  compare: () =>
    runnerOf<typeof import("./lib/commands/compare.ts"), "runCompare">("compare", "runCompare"),
  relay: () => runnerOf<typeof import("./lib/commands/relay.ts"), "runRelay">("relay", "runRelay"),
  scan: () => runnerOf<typeof import("./lib/commands/scan.ts"), "runScan">("scan", "runScan"),
  lab: () => runnerOf<typeof import("./lib/commands/lab.ts"), "runLab">("lab", "runLab"),
  text: () =>
    Promise.resolve((config) => {
      console.log(config.text);
      return Promise.resolve(0);
    }),
};

/** `lib/commands/FILE.ts`'s export `name` (typed by the module's type, which loads nothing). */
async function runnerOf<M, K extends keyof M>(file: string, name: K): Promise<M[K]> {
  const specifier = `./lib/commands/${file}.ts`;
  return (await import(specifier) as M)[name];
}

/** Run netkit with `args`; returns the process exit code. */
export async function main(args: readonly string[]): Promise<number> {
  let parsed: Config;
  try {
    parsed = parseCommandLine(args);
  } catch (err) {
    // Bare `netkit` shows the usage; --json gets its JSON document even for a usage error.
    if (args.length === 0) writeText(Deno.stdout, renderTopHelp() + "\n");
    // Imported only here: a run that parses never loads the presentation code.
    const { Output } = await import("./lib/output.ts");
    new Output(requestedOutput(args)).error(err);
    return fail(err);
  }
  try {
    const run = await COMMANDS[parsed.command]() as Runner<Config>;
    // Read every file the command names, then give up what it does not need.
    const config = await prepareForDrop(parsed);
    const privileges = dropPrivileges(config);
    if ("verbose" in config && config.verbose) logEvent(formatPrivileges(privileges));
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
