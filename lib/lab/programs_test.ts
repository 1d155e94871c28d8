import { assert, assertEquals } from "@std/assert";
import { missingProgram, RUN_PATHS, SELF_EXE } from "./programs.ts";

Deno.test("deno.json grants run for exactly the lab's program paths and netkit's own executable", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  assertEquals(config.permissions.netkit.run, [...RUN_PATHS]);
  assert(RUN_PATHS.includes(SELF_EXE));
  for (const path of RUN_PATHS) assert(path.startsWith("/"), `${path} is absolute`);
  for (const name of ["ip", "tc", "nstat", "nft", "unshare"]) {
    assert(RUN_PATHS.some((p) => p.endsWith(`/${name}`)), name);
  }
});

Deno.test("a missing program is a usage error naming where it looked and what to install", () => {
  const err = missingProgram("nft");
  assertEquals(err.exitCode, 2);
  assert(err.message.includes("/usr/sbin, /sbin"), err.message);
  assert(err.message.includes("install nftables"), err.message);
});
