import { assert, assertEquals } from "@std/assert";
import { parseCommandLine } from "../cli/parse.ts";
import { isWorkerPingPong, preparePingPong, takePreparedWorker } from "./pingpong.ts";

Deno.test("only an unpaced run with one probe in flight is a Worker ping-pong", () => {
  assert(isWorkerPingPong({ outstanding: 1, rate: 0 }));
  assert(!isWorkerPingPong({ outstanding: 0, rate: 0 }));
  assert(!isWorkerPingPong({ outstanding: 2, rate: 0 }));
  assert(!isWorkerPingPong({ outstanding: 1, rate: 100 }));
});

Deno.test("preparePingPong starts no Worker for TCP, --engine deno, a paced probe or no native engine", async () => {
  const native = () => true;
  for (
    const args of [
      ["client", "--probe", "--ping-pong", "127.0.0.1", "5050"],
      [
        "client",
        "--probe",
        "--ping-pong",
        "--proto",
        "udp",
        "127.0.0.1",
        "5050",
        "--engine",
        "deno",
      ],
      ["client", "--probe", "--proto", "udp", "127.0.0.1", "5050", "--rate", "100"],
    ]
  ) {
    await preparePingPong(parseCommandLine(args), native);
    assertEquals(takePreparedWorker(), undefined, args.join(" "));
  }
  const udp = ["client", "--probe", "--ping-pong", "--proto", "udp", "127.0.0.1", "5050"];
  await preparePingPong(parseCommandLine(udp), () => false);
  assertEquals(takePreparedWorker(), undefined);
});

Deno.test("preparePingPong starts and loads the Worker for a UDP ping-pong; it is handed out once", async () => {
  const udp = ["client", "--probe", "--ping-pong", "--proto", "udp", "127.0.0.1", "5050"];
  await preparePingPong(parseCommandLine(udp), () => true);
  const worker = await takePreparedWorker();
  assert(worker !== undefined);
  assertEquals(takePreparedWorker(), undefined);
  worker.terminate();
});
