/**
 * A netkit server in a Web Worker: `netkit compare` with no HOST runs its
 * embedded echo server here, on its own thread, so the server and the probing
 * client do not share one event loop.
 *
 * Messages in: `{ type: "start", config }`, `{ type: "counters" }`, `{ type: "stop" }`.
 * Messages out: `{ type: "listening", endpoint }` per listener, `{ type: "counters",
 * summary }` (what the server has received and sent so far), `{ type: "stopped" }`,
 * or `{ type: "error", message }`.
 *
 * @example
 * ```ts
 * const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
 * worker.postMessage({ type: "start", config: { command: "server", endpoints: [], mode: "echo",
 *   maxConns: 1024, idleTimeoutMs: 0, once: false, verbose: false } });
 * ```
 *
 * @module
 */

import type { Endpoint } from "../address.ts";
import type { ServerConfig } from "../config.ts";
import { emptySummary, serve, type ServerSummary } from "./serve.ts";

/** Messages the worker accepts. */
export type WorkerRequest =
  | { type: "start"; config: ServerConfig }
  | { type: "counters" }
  | { type: "stop" };

/** Messages the worker posts. */
export type WorkerEvent =
  | { type: "listening"; endpoint: Endpoint }
  | { type: "counters"; summary: ServerSummary }
  | { type: "stopped" }
  | { type: "error"; message: string };

interface WorkerScope {
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerEvent): void;
  close(): void;
}

const scope = globalThis as unknown as WorkerScope;
const controller = new AbortController();
const summary: ServerSummary = emptySummary();

scope.onmessage = (event) => {
  const request = event.data;
  switch (request.type) {
    case "start":
      serve(request.config, {
        signal: controller.signal,
        summary,
        onListening: (endpoint) => scope.postMessage({ type: "listening", endpoint }),
        log: () => {},
      }).then(
        () => scope.postMessage({ type: "stopped" }),
        (err) => scope.postMessage({ type: "error", message: (err as Error).message }),
      ).finally(() => scope.close());
      break;
    case "counters":
      scope.postMessage({ type: "counters", summary: { ...summary } });
      break;
    case "stop":
      controller.abort();
      break;
    default: {
      const never: never = request;
      throw new Error(`unknown request ${JSON.stringify(never)}`);
    }
  }
};
