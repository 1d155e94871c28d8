/**
 * Snapshot tests of every help text as the user sees it (`netkit --help` and
 * `netkit COMMAND --help` through the real CLI), so a change to a flag, a
 * default or a wording shows up in review as a diff of
 * `__snapshots__/help_snapshot_test.ts.snap`.
 *
 * @example
 * ```sh
 * deno test -A tests/help_snapshot_test.ts              # compare with the snapshots
 * deno test -A tests/help_snapshot_test.ts -- --update  # rewrite them after a deliberate change
 * ```
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { assertSnapshot } from "@std/testing/snapshot";
import { COMMANDS } from "../lib/cli/spec.ts";
import { runNetkit } from "./support/cli.ts";

for (const args of [["--help"], ...Object.keys(COMMANDS).map((name) => [name, "--help"])]) {
  Deno.test(`'netkit ${args.join(" ")}' prints the help text in the snapshot`, async (t) => {
    const result = await runNetkit(args);
    assertEquals(result.code, 0, result.stderr);
    assertEquals(result.stderr, "");
    await assertSnapshot(t, result.text);
  });
}
