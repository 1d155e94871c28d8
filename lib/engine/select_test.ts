import { assertEquals, assertMatch, assertThrows } from "@std/assert";
import { NetkitError } from "../errors.ts";
import { loadNativeEngine } from "./native/engine.ts";
import { selectEngine } from "./select.ts";

const missing = () => ({ reason: "no glibc at the known paths" });

Deno.test("--engine deno always takes the deno engine", () => {
  const { engine, reason } = selectEngine("deno");
  assertEquals(engine.name, "deno");
  assertMatch(reason, /--engine deno/);
});

Deno.test("auto without libc falls back to deno and says why", () => {
  const { engine, reason } = selectEngine("auto", missing);
  assertEquals(engine.name, "deno");
  assertEquals(reason, "auto: native engine unavailable (no glibc at the known paths)");
});

Deno.test("--engine native without libc is a usage error naming the reason and the fix", () => {
  const err = assertThrows(() => selectEngine("native", missing), NetkitError);
  assertEquals(err.kind, "usage");
  assertMatch(err.message, /--engine native is unavailable: no glibc .*'--engine deno'/);
});

Deno.test({
  name: "auto takes the native engine where glibc loads, naming the library",
  ignore: "reason" in loadNativeEngine(),
  fn() {
    const { engine, reason } = selectEngine("auto");
    assertEquals(engine.name, "native");
    assertMatch(reason, /^auto: sendmmsg\/recvmmsg through \/.*libc\.so\.6$/);
  },
});

Deno.test({
  name: "without the ffi permission auto falls back to deno, naming the missing permission",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const script = `
      import { selectEngine } from ${JSON.stringify(new URL("./select.ts", import.meta.url).href)};
      const { engine, reason } = selectEngine("auto");
      console.log(JSON.stringify({ name: engine.name, reason }));`;
    const file = await Deno.makeTempFile({ suffix: ".ts" });
    let output: Deno.CommandOutput;
    try {
      await Deno.writeTextFile(file, script);
      output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-q", "--no-prompt", file], // no --allow-ffi
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
    } finally {
      await Deno.remove(file);
    }
    const { code, stdout, stderr } = output;
    assertEquals(code, 0, new TextDecoder().decode(stderr));
    const out = JSON.parse(new TextDecoder().decode(stdout));
    assertEquals(out.name, "deno");
    assertMatch(out.reason, /^auto: native engine unavailable \(no ffi permission for libc/);
  },
});
