import { assert, assertEquals } from "@std/assert";
import { parseCommandLine } from "../cli/parse.ts";
import {
  isWorkerPingPong,
  preparePingPong,
  takePreparedWorker,
  workerCanTake,
} from "./pingpong.ts";

Deno.test("only an unpaced run with one probe in flight is a Worker ping-pong", () => {
  assert(isWorkerPingPong({ outstanding: 1, rate: 0 }));
  assert(!isWorkerPingPong({ outstanding: 0, rate: 0 }));
  assert(!isWorkerPingPong({ outstanding: 2, rate: 0 }));
  assert(!isWorkerPingPong({ outstanding: 1, rate: 100 }));
});

Deno.test("workerCanTake: UDP, and TCP on Deno's connection, but not a --source TCP connection (node:net)", () => {
  assert(workerCanTake({ transport: "udp", hostname: "127.0.0.1", port: 1 }));
  assert(workerCanTake({ transport: "tcp", hostname: "127.0.0.1", port: 1 }));
  assert(!workerCanTake({ transport: "tcp", hostname: "127.0.0.1", port: 1, source: { port: 9 } }));
  assert(workerCanTake({ transport: "udp", hostname: "127.0.0.1", port: 1, source: { port: 9 } }));
});

Deno.test("preparePingPong starts no Worker for --engine deno, a paced probe, TCP from --source or no native engine", async () => {
  const native = () => true;
  for (
    const args of [
      ["client", "--probe", "--ping-pong", "127.0.0.1", "5050", "--engine", "deno"],
      ["client", "--probe", "--ping-pong", "127.0.0.1", "5050", "--source-port", "40000"],
      ["client", "--probe", "127.0.0.1", "5050", "--outstanding", "1", "--rate", "100"],
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
  for (const proto of ["udp", "tcp"]) {
    const args = ["client", "--probe", "--ping-pong", "--proto", proto, "127.0.0.1", "5050"];
    await preparePingPong(parseCommandLine(args), () => false);
    assertEquals(takePreparedWorker(), undefined, proto);
  }
});

Deno.test("preparePingPong starts and loads the Worker for a UDP ping-pong; it is handed out once", async () => {
  const udp = ["client", "--probe", "--ping-pong", "--proto", "udp", "127.0.0.1", "5050"];
  await preparePingPong(parseCommandLine(udp), () => true);
  const worker = await takePreparedWorker();
  assert(worker !== undefined);
  assertEquals(takePreparedWorker(), undefined);
  worker.terminate();
});

Deno.test("preparePingPong starts the Worker for a TCP ping-pong too", async () => {
  const tcp = ["client", "--probe", "--ping-pong", "--proto", "tcp", "127.0.0.1", "5050"];
  await preparePingPong(parseCommandLine(tcp), () => true);
  const worker = await takePreparedWorker();
  assert(worker !== undefined);
  worker.terminate();
});
