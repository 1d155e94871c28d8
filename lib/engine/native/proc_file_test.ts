import { assertEquals, assertMatch } from "@std/assert";
import { sharedLibc } from "./engine.ts";
import { readProcFile } from "./proc_file.ts";

const libc = sharedLibc();

Deno.test({
  name: "readProcFile reads this process's status through libc, and undefined for a missing file",
  ignore: "reason" in libc,
  fn() {
    if ("reason" in libc) return;
    const status = readProcFile(libc, "/proc/self/status", new Uint8Array(16384));
    assertMatch(status ?? "", new RegExp(`^Pid:\\s+${Deno.pid}$`, "m"));
    assertEquals(readProcFile(libc, "/proc/self/no-such-file", new Uint8Array(64)), undefined);
  },
});

Deno.test({
  name: "readProcFile stops at the buffer's end (a short buffer gets the file's start)",
  ignore: "reason" in libc,
  fn() {
    if ("reason" in libc) return;
    const start = readProcFile(libc, "/proc/self/status", new Uint8Array(5));
    assertEquals(start, "Name:");
  },
});
