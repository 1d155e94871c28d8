import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import { NetkitError } from "../errors.ts";
import { loadNativeEngine } from "./native/engine.ts";
import { denoEngine } from "./deno.ts";
import { selectEngine } from "./select.ts";

const missing = () => ({ reason: "no glibc at the known paths" });
const found = () => ({ path: "/lib/x86_64-linux-gnu/libc.so.6" });
const unreachable = (): never => {
  throw new Error("libc must not be loaded");
};

Deno.test("--engine deno always takes the deno engine", () => {
  const { engine, reason } = selectEngine("deno");
  assertEquals(engine.name, "deno");
  assertMatch(reason, /--engine deno/);
});

Deno.test("auto without libc falls back to deno and says why", () => {
  const { engine, reason } = selectEngine("auto", { find: unreachable, load: missing });
  assertEquals(engine.name, "deno");
  assertEquals(reason, "auto: native engine unavailable (no glibc at the known paths)");
});

Deno.test("--engine native without libc is a usage error naming the reason and the fix", () => {
  const err = assertThrows(
    () => selectEngine("native", { find: found, load: missing }),
    NetkitError,
  );
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
  name:
    "lazy auto (a server) takes the native engine where glibc is found, loads it at the first socket, naming the library",
  ignore: "reason" in loadNativeEngine(),
  async fn() {
    const selection = selectEngine("auto", undefined, {});
    assertEquals(selection.engine.name, "native");
    assertMatch(selection.reason, /^auto: libc found at \/.*libc\.so\.6; loaded on first use$/);
    using socket = await selection.engine.open({ remote: { hostname: "127.0.0.1", port: 9 } });
    assertEquals(socket.features.engine, "native");
    assertMatch(selection.reason, /^auto: sendmmsg\/recvmmsg through \/.*libc\.so\.6$/);
  },
});

Deno.test("lazy auto does not load libc until the first socket, and loads it once", async () => {
  let loads = 0;
  const load = () => {
    loads++;
    return missing();
  };
  const selection = selectEngine("auto", { find: found, load }, {});
  assertEquals(loads, 0);
  using first = await selection.engine.open({ remote: { hostname: "127.0.0.1", port: 9 } });
  using second = await selection.engine.open({ remote: { hostname: "127.0.0.1", port: 9 } });
  assertEquals(loads, 1);
  assertEquals([first.features.engine, second.features.engine], ["deno", "deno"]);
});

Deno.test("lazy auto without libc to find falls back to deno at once and never loads", () => {
  const { engine, reason } = selectEngine("auto", { find: missing, load: unreachable }, {});
  assertEquals(engine.name, "deno");
  assertEquals(reason, "auto: native engine unavailable (no glibc at the known paths)");
});

Deno.test(
  "lazy auto whose libc fails to load at first use falls back to deno there, with the -v line, and names deno",
  async () => {
    const lines: string[] = [];
    const selection = selectEngine(
      "auto",
      { find: found, load: () => ({ reason: "dlopen failed: bad ELF" }) },
      { onFallback: (line) => lines.push(line) },
    );
    assertEquals(selection.engine.name, "native");
    assertEquals(lines, []);
    const listener = await selection.engine.listen({
      local: { hostname: "127.0.0.1", port: 0 },
      maxDatagram: 1400,
    });
    try {
      assert(listener.addr.transport === "udp");
    } finally {
      listener.close();
    }
    assertEquals(selection.engine.name, "deno");
    assertEquals(selection.reason, "auto: native engine unavailable (dlopen failed: bad ELF)");
    assertEquals(lines, ["engine deno: auto: native engine unavailable (dlopen failed: bad ELF)"]);
  },
);

Deno.test("--engine native loads libc at once, naming it", () => {
  let loads = 0;
  const { engine, reason } = selectEngine("native", {
    find: unreachable,
    load: () => {
      loads++;
      return { engine: { ...denoEngine, name: "native" as const }, path: "/lib64/libc.so.6" };
    },
  });
  assertEquals(loads, 1);
  assertEquals(engine.name, "native");
  assertEquals(reason, "asked for: sendmmsg/recvmmsg through /lib64/libc.so.6");
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
