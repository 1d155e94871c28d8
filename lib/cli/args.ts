/**
 * Strict flag parsing for one command, on `@std/cli`'s `parseArgs`.
 *
 * std's parser is lenient by design: it accepts unknown flags, turns a flag
 * that lacks its value into `""`, reads `--probe=yes` as `--probe`, splits
 * `-Uabc` into four flags and cannot tell `--count -1` from a missing value.
 * netkit promises a one-line usage error for each of those, so a small pass
 * over the arguments first checks every one against the command's flag table
 * (lib/cli/spec.ts), in order, with the rules of POSIX utilities (and of
 * node's strict `parseArgs`, which netkit used before):
 *
 * - `--name=value`, `--name value`, `-n value`, `-nvalue`; a flag that takes
 *   no value given one is an error, as is a flag that needs one without it.
 * - A value may begin with `-` only when it is a number or `-` alone, so
 *   `--count -1` is a bad count, not a missing one, and `--message --probe`
 *   names the missing value.
 * - `-vk` is `-v -k`; in a cluster, a flag that takes a value takes the rest
 *   (`-vp6000`). `--` ends the flags. No `--no-` negation.
 * - A repeated flag keeps its last value, unless it is repeatable (`multiple`).
 *
 * It rewrites what it accepted into one unambiguous form (`--name=value`,
 * `--name`, then `--` and the positionals), which std's `parseArgs` reads with
 * `string`, `boolean` and `collect` from the same table; its `unknown` callback
 * rejects anything the table does not name.
 *
 * @example
 * ```ts
 * import { parseFlagArgs } from "./args.ts";
 * import { COMMANDS } from "./spec.ts";
 *
 * const { values, positionals } = parseFlagArgs("client", COMMANDS.client.flags, [
 *   "-vp6000",
 *   "--count=-1",
 *   "::1",
 * ]);
 * // values: { verbose: true, port: "6000", count: "-1", … }, positionals: ["::1"]
 * ```
 *
 * @module
 */

import { parseArgs } from "@std/cli/parse-args";
import { usageError } from "../errors.ts";
import type { FlagSpec } from "./spec.ts";

/** Each flag's value: a string, `true`, every string of a repeatable flag, or `undefined` if absent. */
export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/** What {@linkcode parseFlagArgs} returns. */
export interface ParsedArgs {
  values: FlagValues;
  positionals: string[];
}

/**
 * Parse `argv` against a command's `flags`, throwing a usage error (exit 2,
 * naming the flag and pointing at `netkit COMMAND --help`) at the first
 * argument that breaks a rule.
 */
export function parseFlagArgs(
  command: string,
  flags: Readonly<Record<string, FlagSpec>>,
  argv: readonly string[],
): ParsedArgs {
  const fail = (message: string): never => {
    throw usageError(message, command);
  };
  const spec = (name: string): FlagSpec | undefined =>
    Object.hasOwn(flags, name) ? flags[name] : undefined;
  const longOf = new Map<string, string>();
  for (const [name, flag] of Object.entries(flags)) {
    if (flag.short) longOf.set(flag.short, name);
  }

  const checked: string[] = [];
  const positionals: string[] = [];
  const pending = [...argv];
  for (let arg = pending.shift(); arg !== undefined; arg = pending.shift()) {
    if (arg === "--") {
      positionals.push(...pending);
      break;
    }
    if (arg.length < 2 || !arg.startsWith("-")) {
      positionals.push(arg);
      continue;
    }
    let name: string;
    let given: string; // as typed, for "Unknown flag"
    let value: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=", 3);
      name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      if (eq !== -1) value = arg.slice(eq + 1);
      given = `--${name}`;
    } else {
      const letter = arg.slice(1, 2);
      name = longOf.get(letter) ?? letter;
      given = `-${letter}`;
      if (arg.length > 2) {
        if (spec(name)?.type !== "string") {
          // A cluster: -vk is -v -k, and -vp6000 is -v -p6000.
          pending.unshift(given, `-${arg.slice(2)}`);
          continue;
        }
        value = arg.slice(2);
      }
    }
    const flag = spec(name) ?? fail(`Unknown flag '${given}' for 'netkit ${command}'`);
    if (flag.type === "boolean") {
      if (value !== undefined) fail(`Flag '--${name}' takes no value`);
      checked.push(`--${name}`);
      continue;
    }
    if (value === undefined) {
      const next = pending[0];
      const flagLike = next !== undefined && next.length > 1 && next.startsWith("-") &&
        !/^-[\d.]/.test(next);
      if (next === undefined || flagLike) fail(`Flag '--${name}' needs a value`);
      value = pending.shift();
    }
    checked.push(`--${name}=${value}`);
  }

  const names = (keep: (flag: FlagSpec) => boolean) =>
    Object.entries(flags).filter(([, flag]) => keep(flag)).map(([name]) => name);
  const parsed = parseArgs([...checked, "--", ...positionals], {
    string: names((flag) => flag.type === "string"),
    boolean: names((flag) => flag.type === "boolean"),
    collect: names((flag) => flag.multiple === true),
    unknown: (arg) => fail(`Unknown flag '${arg.replace(/=.*/s, "")}' for 'netkit ${command}'`),
  });

  // std fills in `false` and `[]` for absent flags; netkit tells absent from given.
  const values: FlagValues = {};
  for (const [name, flag] of Object.entries(flags)) {
    const v: unknown = parsed[name];
    if (flag.multiple) {
      values[name] = Array.isArray(v) && v.length > 0 ? v.map(String) : undefined;
    } else if (flag.type === "boolean") values[name] = v === true ? true : undefined;
    else values[name] = typeof v === "string" ? v : undefined;
  }
  return { values, positionals: parsed._.map(String) };
}
