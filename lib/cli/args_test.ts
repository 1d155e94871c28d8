/**
 * Tests for the strict pass over std's `parseArgs`: each leniency of std's
 * parser (unknown flags, missing values, `--flag=x` on a boolean, clusters,
 * negative numbers, `--no-`, repeats) is a usage error or reads as POSIX
 * utilities read it.
 *
 * @example
 * ```sh
 * deno test lib/cli/args_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { NetkitError } from "../errors.ts";
import { parseFlagArgs } from "./args.ts";
import { COMMANDS, type FlagSpec } from "./spec.ts";

const FLAGS: Record<string, FlagSpec> = {
  port: { type: "string", short: "p", help: "" },
  path: { type: "string", short: "U", help: "" },
  count: { type: "string", help: "" },
  allow: { type: "string", multiple: true, help: "" },
  verbose: { type: "boolean", short: "v", help: "" },
  insecure: { type: "boolean", short: "k", help: "" },
  probe: { type: "boolean", help: "" },
};

function parse(...argv: string[]) {
  const { values, positionals } = parseFlagArgs("client", FLAGS, argv);
  const given = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
  return { given, positionals };
}

function rejects(argv: string[], message: string): void {
  const err = assertThrows(() => parseFlagArgs("client", FLAGS, argv), NetkitError);
  assertEquals(err.kind, "usage");
  assertEquals(err.message, `${message} (see 'netkit client --help')`);
}

Deno.test("values come in every form: --f=v, --f v, -f v, -fv; positionals stay strings", () => {
  assertEquals(parse("--port=1", "a", "--count", "2", "-U", "/s", "007"), {
    given: { port: "1", count: "2", path: "/s" },
    positionals: ["a", "007"],
  });
  assertEquals(parse("-p6000").given, { port: "6000" });
  assertEquals(parse("--count=").given, { count: "" });
  assertEquals(parse("--count", "").given, { count: "" });
  assertEquals(parse("--count=a=b").given, { count: "a=b" });
});

Deno.test("absent flags are undefined, not std's false or []", () => {
  const { values } = parseFlagArgs("client", FLAGS, []);
  assertEquals(values, {
    port: undefined,
    path: undefined,
    count: undefined,
    allow: undefined,
    verbose: undefined,
    insecure: undefined,
    probe: undefined,
  });
});

Deno.test("an unknown flag, long or short, alone, with a value or in a cluster, is named", () => {
  rejects(["--bogus"], "Unknown flag '--bogus' for 'netkit client'");
  rejects(["--bogus=1"], "Unknown flag '--bogus' for 'netkit client'");
  rejects(["-x"], "Unknown flag '-x' for 'netkit client'");
  rejects(["-vx"], "Unknown flag '-x' for 'netkit client'");
  rejects(["--a.b"], "Unknown flag '--a.b' for 'netkit client'");
  rejects(["--toString"], "Unknown flag '--toString' for 'netkit client'");
  rejects(["--__proto__"], "Unknown flag '--__proto__' for 'netkit client'");
});

Deno.test("'--no-FLAG' is an unknown flag, not a negation", () => {
  rejects(["--no-probe"], "Unknown flag '--no-probe' for 'netkit client'");
  rejects(["--no-verbose=1"], "Unknown flag '--no-verbose' for 'netkit client'");
});

Deno.test("a flag that needs a value and has none, or has a flag after it, names the long flag", () => {
  rejects(["--count"], "Flag '--count' needs a value");
  rejects(["-p"], "Flag '--port' needs a value");
  rejects(["--count", "--probe"], "Flag '--count' needs a value");
  rejects(["--count", "-v"], "Flag '--count' needs a value");
  rejects(["--count", "--"], "Flag '--count' needs a value");
  rejects(["-vp"], "Flag '--port' needs a value");
});

Deno.test("a negative number or '-' after a flag is its value", () => {
  assertEquals(parse("--count", "-1").given, { count: "-1" });
  assertEquals(parse("-p", "-1").given, { port: "-1" });
  assertEquals(parse("-vp", "-.5").given, { port: "-.5", verbose: true });
  assertEquals(parse("--count", "-").given, { count: "-" });
  assertEquals(parse("--count=-x").given, { count: "-x" });
  assertEquals(parse("-p-x").given, { port: "-x" });
});

Deno.test("a boolean flag given a value names the long flag", () => {
  rejects(["--probe=yes"], "Flag '--probe' takes no value");
  rejects(["--verbose="], "Flag '--verbose' takes no value");
  rejects(["--verbose=false"], "Flag '--verbose' takes no value");
});

Deno.test("a boolean flag never takes the next argument, even 'true' or 'false'", () => {
  assertEquals(parse("--probe", "false", "-v", "true"), {
    given: { probe: true, verbose: true },
    positionals: ["false", "true"],
  });
});

Deno.test("short clusters: -vk is -v -k, and a flag that takes a value takes the rest", () => {
  assertEquals(parse("-vk").given, { verbose: true, insecure: true });
  assertEquals(parse("-vp6000").given, { verbose: true, port: "6000" });
  assertEquals(parse("-vp", "6000").given, { verbose: true, port: "6000" });
  assertEquals(parse("-Uabc").given, { path: "abc" });
  assertEquals(parse("-kU/tmp/s").given, { insecure: true, path: "/tmp/s" });
});

Deno.test("a repeated flag keeps its last value; a repeatable one keeps all", () => {
  assertEquals(parse("--port", "1", "-p", "2").given, { port: "2" });
  assertEquals(parse("--allow", "a", "--allow=b").given, { allow: ["a", "b"] });
  assertEquals(parse("-v", "--verbose").given, { verbose: true });
});

Deno.test("'--' ends the flags and '-' alone is a positional", () => {
  assertEquals(parse("-v", "-", "--", "--probe", "-p", "--"), {
    given: { verbose: true },
    positionals: ["-", "--probe", "-p", "--"],
  });
});

Deno.test("errors come in argument order: the first bad argument is the one named", () => {
  rejects(["--bogus", "--count"], "Unknown flag '--bogus' for 'netkit client'");
  rejects(["--count", "--bogus"], "Flag '--count' needs a value");
  rejects(["--probe=1", "-x"], "Flag '--probe' takes no value");
});

Deno.test("every flag of every command reads back through std's parser as given", () => {
  for (const [command, spec] of Object.entries(COMMANDS)) {
    const flags: Record<string, FlagSpec> = spec.flags;
    const argv = Object.entries(flags).flatMap(([name, flag]) =>
      flag.type === "boolean" ? [`--${name}`] : [`--${name}`, `v-${name}`]
    );
    const { values } = parseFlagArgs(command, flags, argv);
    for (const [name, flag] of Object.entries(flags)) {
      const want = flag.type === "boolean" ? true : flag.multiple ? [`v-${name}`] : `v-${name}`;
      assertEquals(values[name], want, `${command} --${name}`);
      // std reads `--no-X` as a negation only of a negatable X: a `no-` flag (`--no-chart`) is
      // safe while no flag X exists beside it (the read-back above proves it is taken as given).
      assert(!name.includes("."), `${name}: std reads it specially`);
      if (name.startsWith("no-")) {
        assert(!(name.slice(3) in flags), `${name} beside ${name.slice(3)}`);
      }
    }
  }
});
