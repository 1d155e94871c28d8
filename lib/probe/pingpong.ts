/**
 * The main thread's side of the native engine's ping-pong Worker
 * (./pingpong_worker.ts): start it, hand it the socket and the workload,
 * receive its batches, and stop it (Ctrl-C: stop sending, wait for the echo in
 * flight; a second: stop now). The Worker blocks in libc's `recv`, so the
 * round trip never waits on Deno's event loop.
 *
 * Permissions: loading a Worker's module reads it from disk (or the binary's
 * embedded file system), so `client --probe --ping-pong` (UDP or TCP) on the
 * native engine starts the Worker BEFORE privileges are dropped ({@linkcode preparePingPong},
 * called from main.ts), and the Worker then shares the permissions the probe
 * keeps (net, ffi for libc): the probe keeps no `read`.
 *
 * @example
 * ```ts
 * import { startPingPongWorker } from "./pingpong.ts";
 *
 * const worker = await startPingPongWorker();
 * worker.terminate();
 * ```
 *
 * @module
 */

import type { IpEndpoint } from "../address.ts";
import type { Config } from "../config.ts";
import { loadNativeEngine } from "../engine/native/engine.ts";
import type {
  PingPongBatch,
  PingPongDone,
  PingPongMessage,
  PingPongRequest,
} from "./pingpong_worker.ts";

/** Stop word values (as in the Worker). */
const STOP_SENDING = 1, STOP_NOW = 2;

/** A started, loaded ping-pong Worker. */
export interface PingPongWorker {
  /** Run one ping-pong; `onBatch` gets each batch; resolves when the Worker is done. */
  run(
    request: Omit<PingPongRequest, "control" | "timeOrigin">,
    onBatch: (batch: PingPongBatch) => void,
  ): Promise<PingPongDone>;
  /** Stop sending (the echo in flight is still waited for), or stop now. */
  stop(now: boolean): void;
  terminate(): void;
}

/** Start the Worker and wait until its module is loaded. */
export function startPingPongWorker(): Promise<PingPongWorker> {
  const worker = new Worker(new URL("./pingpong_worker.ts", import.meta.url).href, {
    type: "module",
  });
  const control = new Int32Array(new SharedArrayBuffer(4));
  let onMessage: (message: PingPongMessage) => void = () => {};
  let onError: (err: Error) => void = () => {};
  worker.onmessage = (event: MessageEvent<PingPongMessage>) => onMessage(event.data);
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault();
    onError(new Error(event.message));
  };
  const handle: PingPongWorker = {
    run: (request, onBatch) =>
      new Promise((resolve, reject) => {
        Atomics.store(control, 0, 0);
        onError = reject;
        onMessage = (message) => {
          if (message.type === "batch") onBatch(message);
          else if (message.type === "done") resolve(message);
        };
        worker.postMessage(
          {
            ...request,
            control: control.buffer,
            timeOrigin: performance.timeOrigin,
          } satisfies PingPongRequest,
        );
      }),
    stop: (now) => {
      Atomics.store(control, 0, now ? STOP_NOW : STOP_SENDING);
    },
    terminate: () => worker.terminate(),
  };
  return new Promise((resolve, reject) => {
    onError = (err) => {
      worker.terminate();
      reject(err);
    };
    onMessage = (message) => {
      if (message.type === "ready") resolve(handle);
    };
  });
}

/**
 * Whether the Worker can take over the socket of a probe to `endpoint`: UDP
 * (the native engine's own socket), or TCP on Deno's connection. A TCP probe
 * from `--source` rides on node:net (lib/client/bound_tcp.ts), which keeps
 * reading its socket: that one stays on the event loop.
 */
export function workerCanTake(endpoint: IpEndpoint): boolean {
  return endpoint.transport === "udp" || endpoint.source === undefined;
}

/** Whether a workload is a ping-pong the Worker runs: one probe in flight, unpaced. */
export function isWorkerPingPong(
  workload: { outstanding: number; rate: number },
): boolean {
  return workload.outstanding === 1 && workload.rate === 0;
}

let prepared: Promise<PingPongWorker> | undefined;

/**
 * Start the Worker now (before privileges are dropped) for a ping-pong, UDP
 * or TCP ({@linkcode workerCanTake}), on the native engine;
 * {@linkcode takePreparedWorker} hands it to the run.
 * A Worker that fails to start is left to the run to report (it falls back to
 * the event loop).
 */
export async function preparePingPong(
  config: Config,
  native: () => boolean = () => ("engine" in loadNativeEngine()),
): Promise<void> {
  if (
    config.command !== "client" || config.action !== "probe" ||
    !workerCanTake(config.endpoint) || config.engine === "deno" ||
    !isWorkerPingPong(config.workload) || !native()
  ) return;
  prepared = startPingPongWorker();
  await prepared.catch(() => {});
}

/** The Worker {@linkcode preparePingPong} started, if any (once). */
export function takePreparedWorker(): Promise<PingPongWorker> | undefined {
  const worker = prepared;
  prepared = undefined;
  return worker;
}
