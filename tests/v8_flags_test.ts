import { assert, assertEquals } from "@std/assert";
import { NETKIT_RUN, ROOT_DIR, V8_FLAGS } from "./support/cli.ts";

/** The command line of each of deno.json's tasks, by name. */
async function taskCommands(): Promise<(name: string) => string> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT_DIR}deno.json`));
  const tasks: Record<string, string | { command: string }> = config.tasks;
  return (name) => {
    const task = tasks[name];
    assert(task !== undefined, `deno.json has no task ${name}`);
    return typeof task === "string" ? task : task.command;
  };
}

Deno.test(
  "the binary, deno task netkit/demo, and the tests and bench all run netkit with the same --v8-flags",
  async () => {
    const command = await taskCommands();
    const runs = [
      command("netkit"),
      command("demo"),
      ...command("compile").split(" && "),
      ...command("compile:all").split(" && "),
    ];
    assertEquals(runs.length, 8);
    for (const run of runs) {
      assertEquals(run.match(/--v8-flags=\S+/g), [V8_FLAGS], run);
    }
    assert(NETKIT_RUN.includes(V8_FLAGS));
  },
);

Deno.test(
  "deno task netkit, demo, test, soak and bench turn off Deno's update check (no DNS query for dl.deno.land)",
  async () => {
    const command = await taskCommands();
    for (const name of ["netkit", "demo", "test", "soak", "bench"]) {
      const task = command(name);
      assert(task.startsWith("DENO_NO_UPDATE_CHECK=1 deno "), `task ${name}: ${task}`);
    }
  },
);
