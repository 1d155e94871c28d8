/**
 * How reports show the engine a run used: one text line and the JSON fields
 * (`"engine": "native", "gso": false, …`), the same for probe, throughput and
 * compare.
 *
 * @example
 * ```ts
 * import { engineJson, formatEngine } from "./report.ts";
 * import { TCP_ENGINE_USE } from "./types.ts";
 *
 * console.log(formatEngine(TCP_ENGINE_USE), engineJson(TCP_ENGINE_USE));
 * ```
 *
 * @module
 */

import { formatSize } from "../units.ts";
import type { EngineUse } from "./types.ts";

/** The JSON fields: engine, gso and gro on top, the rest under `engine_features`. */
export function engineJson(use: EngineUse): {
  engine: string;
  gso: boolean;
  gro: boolean;
  engine_features: {
    send_batch: number;
    receive_batch: number;
    receive_buffer: number | null;
    send_buffer: number | null;
    reason: string;
    blocking_worker?: true;
    receive_low_water?: number;
  };
} {
  return {
    engine: use.engine,
    gso: use.gso,
    gro: use.gro,
    engine_features: {
      send_batch: use.sendBatch,
      receive_batch: use.receiveBatch,
      receive_buffer: use.receiveBuffer ?? null,
      send_buffer: use.sendBuffer ?? null,
      reason: use.reason,
      ...(use.blockingWorker && { blocking_worker: true as const }),
      ...(use.receiveLowWater && { receive_low_water: use.receiveLowWater }),
    },
  };
}

/** `receive low-water mark 128 KiB (SO_RCVLOWAT)`: a TCP receiver's raised mark, in words. */
export function formatLowWater(bytes: number): string {
  return `receive low-water mark ${formatSize(bytes)} (SO_RCVLOWAT)`;
}

/** One line: `engine native: sendmmsg/recvmmsg batches of 32/64, receive buffer 8 MiB, no GSO/GRO`. */
export function formatEngine(use: EngineUse): string {
  const parts: string[] = [];
  if (use.blockingWorker) {
    parts.push("blocking send/recv in a Worker (one probe in flight)");
  } else if (use.engine === "native") {
    parts.push(`sendmmsg/recvmmsg batches of up to ${use.sendBatch}/${use.receiveBatch}`);
  } else {
    parts.push("Deno's sockets, one op per datagram or write");
  }
  if (use.receiveBuffer !== undefined) {
    parts.push(`receive buffer ${formatSize(use.receiveBuffer)}`);
  }
  if (use.sendBuffer !== undefined) parts.push(`send buffer ${formatSize(use.sendBuffer)}`);
  if (use.receiveLowWater) parts.push(formatLowWater(use.receiveLowWater));
  const offload = [use.gso && "GSO", use.gro && "GRO"].filter(Boolean).join("+");
  parts.push(
    offload
      ? `${offload} on (on loopback it bypasses per-packet work: not a network's rate)`
      : "no GSO/GRO",
  );
  return `engine ${use.engine}: ${parts.join(", ")}`;
}
