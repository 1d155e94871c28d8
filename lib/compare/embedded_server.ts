/**
 * Start netkit's own TCP+UDP echo server on loopback, in a worker thread, for
 * `netkit compare` with no HOST.
 *
 * @example
 * ```ts
 * import { startEmbeddedServer } from "./embedded_server.ts";
 *
 * await using server = await startEmbeddedServer();
 * console.log(server.port);
 * ```
 *
 * @module
 */

import { serverDefaults } from "../config.ts";
import { NetkitError } from "../errors.ts";
import type { ServerSummary } from "../server/serve.ts";
import type { WorkerEvent, WorkerRequest } from "../server/worker.ts";

/** A running embedded server. */
export interface EmbeddedServer extends AsyncDisposable {
  hostname: string;
  port: number;
  /** What the server has received and sent so far. */
  counters(): Promise<ServerSummary>;
}

/** Start the embedded server on 127.0.0.1 with an OS-chosen port (TCP and UDP share it). */
export async function startEmbeddedServer(): Promise<EmbeddedServer> {
  const worker = new Worker(new URL("../server/worker.ts", import.meta.url).href, {
    type: "module",
  });
  const events: WorkerEvent[] = [];
  let notify: (() => void) | undefined;
  worker.onmessage = (event: MessageEvent<WorkerEvent>) => {
    events.push(event.data);
    notify?.();
  };
  const next = async (): Promise<WorkerEvent> => {
    while (events.length === 0) await new Promise<void>((resolve) => (notify = resolve));
    return events.shift()!;
  };
  const send = (request: WorkerRequest) => worker.postMessage(request);
  send({
    type: "start",
    config: {
      ...serverDefaults([
        { transport: "tcp", hostname: "127.0.0.1", port: 0 },
        { transport: "udp", hostname: "127.0.0.1", port: 0 },
      ]),
      maxConns: 64,
    },
  });
  let port = 0;
  for (let listening = 0; listening < 2;) {
    const event = await next();
    if (event.type === "error") {
      worker.terminate();
      throw new NetkitError("network", `Cannot start the embedded server: ${event.message}`);
    }
    if (event.type === "listening" && event.endpoint.transport !== "unix") {
      port = event.endpoint.port;
      listening++;
    }
  }
  return {
    hostname: "127.0.0.1",
    port,
    async counters() {
      send({ type: "counters" });
      for (;;) {
        const event = await next();
        if (event.type === "counters") return event.summary;
        if (event.type === "error") {
          throw new NetkitError("network", `Embedded server failed: ${event.message}`);
        }
      }
    },
    async [Symbol.asyncDispose]() {
      send({ type: "stop" });
      try {
        for (let event = await next(); event.type === "listening";) event = await next();
      } finally {
        worker.terminate();
      }
    },
  };
}
