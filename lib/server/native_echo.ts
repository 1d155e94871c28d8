/**
 * The server's native echo: a Worker (./native_echo_worker.ts) that serves the
 * server's UDP socket and TCP probe connections through libc's `poll`,
 * `recvfrom`/`sendto` and `recv`/`send`, off Deno's event loop. Started lazily
 * (the first UDP echo, the first TCP probe), from a `blob:` URL, so a server
 * that has dropped `read` can still start it.
 *
 * The descriptors stay Deno's: the main thread finds their numbers
 * (`findSocketFd`), hands them over through shared memory and an eventfd
 * write, and closes the Deno objects only once the Worker has let go. While
 * the Worker holds a socket, Deno never reads it.
 *
 * @example
 * ```ts
 * import { NativeEcho } from "./native_echo.ts";
 * import { sharedLibc } from "../engine/native/engine.ts";
 *
 * const libc = sharedLibc();
 * if (!("reason" in libc)) {
 *   const counters = { datagramsIn: 0, datagramsOut: 0, bytesIn: 0, bytesOut: 0, denied: 0 };
 *   const native = new NativeEcho({ libc, allow: [], deny: [], passAll: false, counters });
 *   if (await native.start()) console.log("the Worker runs");
 *   await native.stop();
 * }
 * ```
 *
 * @module
 */

import type { Cidr } from "../acl.ts";
import { formatAddr } from "../address.ts";
import { decodeSockaddr, LINUX } from "../engine/native/layout.ts";
import type { Libc } from "../engine/native/libc.ts";
import { epollEventLayout, muteInReactor } from "../engine/native/epoll_mute.ts";
import { findSocketFd } from "../engine/native/socket_fd.ts";
import type { DatagramServer } from "./datagrams.ts";
import type { Session } from "./session.ts";
import {
  BLOCK_SLICE_MS,
  COUNT,
  CTL,
  type EchoInit,
  type EchoMessage,
  MAX_SLOTS,
  SLICE_MS,
  SLOT,
  TCP_BUFFER_BYTES,
  WORKER_CONSTANTS,
  WORKER_SYMBOLS,
  workerSource,
} from "./native_echo_worker.ts";

/** Counters the Worker's UDP echo adds to (the server's summary). */
export interface NativeEchoCounters {
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
  denied: number;
}

/** Options of {@linkcode NativeEcho}. */
export interface NativeEchoOptions {
  /** This thread's libc (descriptor look-ups, eventfd writes); the Worker opens the same path. */
  libc: Libc;
  /** `--allow`/`--deny`, applied in the Worker. */
  allow: Cidr[];
  deny: Cidr[];
  /** Every datagram through the main thread's gate (`--rate-limit`: its buckets are shared). */
  passAll: boolean;
  counters: NativeEchoCounters;
  /**
   * What the start line names: `udp 127.0.0.1:5050` when the server has a UDP endpoint.
   * @default {undefined}
   */
  udpLabel?: string;
  /**
   * Where `-v` lines go (start, failure, refused datagrams).
   * @default {undefined} (no logs)
   */
  log?: (line: string) => void;
  /**
   * Called once the Worker runs, before the start line is logged (hand-overs waiting for it).
   * @default {undefined}
   */
  onReady?: (echo: NativeEcho) => void;
}

interface Held {
  conn: Deno.Conn;
  fd: number;
  session: Session;
  bytesIn: number;
  bytesOut: number;
  activity: number;
  /** Deno's reactor wakes for it again (before Deno uses or closes it). */
  unmute: (() => void) | undefined;
  resolve: (reason: string) => void;
}

/** The Worker, from the main thread's side. */
export class NativeEcho {
  readonly #options: NativeEchoOptions;
  readonly #control = new Int32Array(new SharedArrayBuffer(CTL.WORDS * 4));
  readonly #slots = new Int32Array(new SharedArrayBuffer(MAX_SLOTS * SLOT.WORDS * 4));
  readonly #counters = new Float64Array(
    new SharedArrayBuffer((COUNT.SLOTS + MAX_SLOTS * COUNT.PER_SLOT) * 8),
  );
  /** The UDP counters already added to the summary. */
  readonly #folded = new Float64Array(5);
  readonly #held: (Held | undefined)[] = new Array(MAX_SLOTS);
  readonly #slotOf = new Map<Deno.Conn, number>();
  readonly #one = new Uint8Array(new BigUint64Array([1n]).buffer);
  #worker: Worker | undefined;
  #wakeFd = -1;
  #state: "idle" | "starting" | "running" | "gone" = "idle";
  #stopping = false;
  /** Stopped because nothing used it (the server goes on: sockets go back to the event loop). */
  #idleStop = false;
  /** What {@linkcode idleFor} last saw, and since when. */
  #seenActivity = -1;
  #quietSince = 0;
  /** Datagrams handed to the main thread (pass-all mode). */
  #passed = 0;
  #passAll = false;
  #started: Promise<boolean> | undefined;
  #stopped: Promise<void> | undefined;
  #onGone: () => void = () => {};
  #udp:
    | {
      server: DatagramServer;
      fd: number;
      unmute: (() => void) | undefined;
      resolve: (again: boolean) => void;
    }
    | undefined;

  constructor(options: NativeEchoOptions) {
    this.#options = options;
    Atomics.store(this.#control, CTL.UDP_FD, -1);
    Atomics.store(this.#control, CTL.ECHO, 1);
    this.passAll = false;
  }

  /** The Worker runs and takes sockets. */
  get running(): boolean {
    return this.#state === "running" && !this.#stopping;
  }

  /** Pass every datagram to the main thread (while an iperf3 test may want the port's datagrams). */
  set passAll(on: boolean) {
    this.#passAll = on;
    Atomics.store(this.#control, CTL.PASS_ALL, on || this.#options.passAll ? 1 : 0);
  }

  get passAll(): boolean {
    return this.#passAll;
  }

  /** Start the Worker (once); true when it runs. */
  start(): Promise<boolean> {
    return this.#started ??= new Promise<boolean>((resolve) => {
      this.#state = "starting";
      const url = URL.createObjectURL(
        new Blob([workerSource()], { type: "application/javascript" }),
      );
      let settled = false;
      const settle = (ok: boolean) => {
        if (settled) return;
        settled = true;
        URL.revokeObjectURL(url);
        resolve(ok);
      };
      let gone!: () => void;
      const goneSignal = new Promise<void>((r) => (gone = r));
      this.#onGone = gone;
      this.#stopped = goneSignal;
      try {
        this.#worker = new Worker(url, { type: "module" });
      } catch (err) {
        this.#gone(`cannot start it: ${(err as Error).message}`);
        settle(false);
        return;
      }
      this.#worker.onmessage = (event: MessageEvent<EchoMessage>) => {
        const message = event.data;
        if (message.type === "ready") {
          this.#wakeFd = message.wakeFd;
          this.#state = "running";
          if (!this.#stopping) this.#options.onReady?.(this);
          const udp = this.#options.udpLabel ? `${this.#options.udpLabel} and ` : "";
          this.#options.log?.(
            `native echo: ${udp}TCP probes served by a Worker (epoll/recvfrom/sendto)`,
          );
          // Stopped while it started: it stops at once.
          if (this.#stopping) this.#sendStop();
          settle(true);
        } else if (message.type === "failed") {
          this.#gone(message.message);
          settle(false);
        } else this.#onMessage(message);
      };
      this.#worker.onerror = (event: ErrorEvent) => {
        event.preventDefault();
        this.#gone(event.message);
        settle(false);
      };
      const init: EchoInit = {
        libcPath: this.#options.libc.path,
        symbols: WORKER_SYMBOLS,
        k: WORKER_CONSTANTS,
        ctl: CTL,
        slot: SLOT,
        count: COUNT,
        maxSlots: MAX_SLOTS,
        sliceMs: SLICE_MS,
        blockSliceMs: BLOCK_SLICE_MS,
        tcpBufferBytes: TCP_BUFFER_BYTES,
        epollEvent: epollEventLayout(Deno.build.arch),
        control: this.#control.buffer as SharedArrayBuffer,
        slots: this.#slots.buffer as SharedArrayBuffer,
        counters: this.#counters.buffer as SharedArrayBuffer,
        acl: this.#options.allow.length > 0 || this.#options.deny.length > 0
          ? {
            allow: this.#options.allow.map((c) => ({ bytes: [...c.bytes], prefix: c.prefix })),
            deny: this.#options.deny.map((c) => ({ bytes: [...c.bytes], prefix: c.prefix })),
          }
          : null,
        verbose: this.#options.log !== undefined,
      };
      this.#worker.postMessage(init);
    });
  }

  /**
   * Hand the server's UDP socket over. Resolves when the Worker let go: true when the
   * caller must serve it again (the Worker failed), false when the server stops.
   * `undefined` when not handed over (the Worker does not run, or the descriptor is unknown).
   */
  adoptUdp(socket: Deno.DatagramConn, server: DatagramServer): Promise<boolean> | undefined {
    if (!this.running || this.#udp) return undefined;
    const fd = findSocketFd(this.#options.libc, {
      type: "udp",
      local: socket.addr as Deno.NetAddr,
    });
    if (fd === undefined) {
      this.#options.log?.("native echo: the UDP socket's descriptor is unknown: not handed over");
      return undefined;
    }
    // Deno's event loop would otherwise wake for every datagram the Worker reads.
    const unmute = muteInReactor(this.#options.libc, fd);
    const held = new Promise<boolean>((resolve) => (this.#udp = { server, fd, unmute, resolve }));
    Atomics.store(this.#control, CTL.UDP_FD, fd);
    Atomics.store(this.#control, CTL.UDP_STATE, SLOT.HANDED);
    this.#wake();
    return held;
  }

  /**
   * Hand a TCP connection over (its first bytes already echoed). Resolves with why the
   * Worker let go (`""`: the peer ended and everything was echoed), after which the caller
   * closes it. `undefined` when not handed over (not running, full, descriptor unknown).
   */
  adoptTcp(conn: Deno.Conn, session: Session): Promise<string> | undefined {
    if (!this.running || conn.remoteAddr.transport !== "tcp") return undefined;
    let slot = -1;
    for (let i = 0; i < MAX_SLOTS; i++) {
      if (!this.#held[i] && Atomics.load(this.#slots, i * SLOT.WORDS) === SLOT.FREE) {
        slot = i;
        break;
      }
    }
    if (slot < 0) return undefined;
    const fd = findSocketFd(this.#options.libc, {
      type: "tcp",
      local: conn.localAddr as Deno.NetAddr,
      remote: conn.remoteAddr as Deno.NetAddr,
    });
    if (fd === undefined) return undefined;
    const released = new Promise<string>((resolve) => {
      this.#held[slot] = {
        conn,
        fd,
        session,
        bytesIn: session.bytesIn,
        bytesOut: session.bytesOut,
        activity: 0,
        unmute: muteInReactor(this.#options.libc, fd),
        resolve,
      };
    });
    const base = COUNT.SLOTS + slot * COUNT.PER_SLOT;
    this.#counters.fill(0, base, base + COUNT.PER_SLOT);
    this.#slotOf.set(conn, slot);
    const at = slot * SLOT.WORDS;
    Atomics.store(this.#slots, at + SLOT.FD, fd);
    Atomics.store(this.#slots, at + SLOT.CMD, 0);
    Atomics.store(this.#slots, at + SLOT.STATE, SLOT.HANDED);
    this.#wake();
    return released;
  }

  /** Whether the Worker holds `conn` (then only {@linkcode drop} may end it). */
  owns(conn: Deno.Conn): boolean {
    return this.#slotOf.has(conn);
  }

  /** Ask the Worker to let go of `conn`: now, or once it has sent what it holds. */
  drop(conn: Deno.Conn, now: boolean): void {
    const slot = this.#slotOf.get(conn);
    if (slot === undefined) return;
    Atomics.store(this.#slots, slot * SLOT.WORDS + SLOT.CMD, now ? SLOT.NOW : SLOT.DRAIN);
    this.#wake();
  }

  /** Bring the sessions' byte counts and activity, and the UDP counters, up to date. */
  sync(): void {
    const c = this.#counters;
    for (let i = 0; i < MAX_SLOTS; i++) {
      const held = this.#held[i];
      if (!held) continue;
      const base = COUNT.SLOTS + i * COUNT.PER_SLOT;
      held.session.bytesIn = held.bytesIn + c[base]!;
      held.session.bytesOut = held.bytesOut + c[base + 1]!;
      if (c[base + 2]! + c[base]! !== held.activity) {
        held.activity = c[base + 2]! + c[base]!;
        held.session.touch();
      }
    }
    const out = this.#options.counters;
    const f = this.#folded;
    const add = (index: number) => {
      const delta = c[index]! - f[index]!;
      f[index] = c[index]!;
      return delta;
    };
    out.datagramsIn += add(COUNT.DATAGRAMS_IN);
    out.datagramsOut += add(COUNT.DATAGRAMS_OUT);
    out.bytesIn += add(COUNT.BYTES_IN);
    out.bytesOut += add(COUNT.BYTES_OUT);
    out.denied += add(COUNT.DENIED);
  }

  /**
   * How long (ms, on `now`) the Worker has had nothing to do: no connection held and no
   * datagram read. The server stops an idle Worker (its thread and memory go back).
   */
  idleFor(now: number): number {
    const c = this.#counters;
    const activity = c[COUNT.DATAGRAMS_IN]! + c[COUNT.DENIED]! + this.#passed +
      (this.#slotOf.size > 0 ? now : 0);
    if (activity !== this.#seenActivity) {
      this.#seenActivity = activity;
      this.#quietSince = now;
    }
    return now - this.#quietSince;
  }

  /**
   * Stop because idle: as {@linkcode stop}, but the UDP socket goes back to its loop (which
   * serves it again) and a later echo may start a new Worker.
   */
  stopIdle(): Promise<void> {
    if (!this.#stopping) this.#idleStop = true;
    return this.stop();
  }

  /** Stopped because idle (not the server stopping, not a failure). */
  get idleStopped(): boolean {
    return this.#idleStop;
  }

  /**
   * Stop: the Worker lets go of the UDP socket at once and of each connection once it has
   * sent what it holds ({@linkcode drop} with `now` still forces one), then ends; resolves
   * when its thread is gone. Idempotent.
   */
  stop(): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      if (this.#state === "running") this.#sendStop();
    }
    if (!this.#started) return Promise.resolve();
    return this.#started.then(() => this.#stopped);
  }

  #sendStop(): void {
    Atomics.store(this.#control, CTL.STOP, 1);
    this.#wake();
  }

  #wake(): void {
    // Seen by a Worker blocked in recvfrom on the UDP socket (it does not watch the eventfd then).
    Atomics.add(this.#control, CTL.MAIL, 1);
    // The eventfd is open until the Worker said `stopped` (this thread closes it then).
    if (this.#state !== "running" || this.#wakeFd < 0) return;
    this.#options.libc.symbols.write(this.#wakeFd, this.#one, 8n);
  }

  #onMessage(message: EchoMessage): void {
    const log = this.#options.log;
    switch (message.type) {
      case "released": {
        const held = this.#held[message.slot];
        if (!held) return;
        this.sync();
        this.#held[message.slot] = undefined;
        this.#slotOf.delete(held.conn);
        Atomics.store(this.#slots, message.slot * SLOT.WORDS + SLOT.CMD, 0);
        Atomics.store(this.#slots, message.slot * SLOT.WORDS + SLOT.STATE, SLOT.FREE);
        held.unmute?.();
        held.resolve(message.reason);
        break;
      }
      case "udp-released":
        this.sync();
        Atomics.store(this.#control, CTL.UDP_STATE, SLOT.FREE);
        this.#udp?.unmute?.();
        // Let go because the server stops; otherwise (idle, or the Worker failed) the caller
        // serves it again.
        this.#udp?.resolve(!this.#stopping || this.#idleStop);
        this.#udp = undefined;
        break;
      case "peer":
        this.#udp?.server.meet(netAddr(message.addr));
        break;
      case "denied":
        log?.(`denied udp ${formatAddr(netAddr(message.addr))}: not permitted by --allow/--deny`);
        break;
      case "datagram":
        this.#passed++;
        void this.#udp?.server.serveOne(message.data, netAddr(message.addr));
        break;
      case "stopped":
        this.#gone(message.error);
        break;
      default:
        break;
    }
  }

  /** The Worker ended (stopped, failed, died): give everything back, once. */
  #gone(why?: string): void {
    if (this.#state === "gone") return;
    const wasRunning = this.#state === "running";
    this.#state = "gone";
    this.#worker?.terminate();
    this.#worker = undefined;
    if (this.#wakeFd >= 0) this.#options.libc.symbols.close(this.#wakeFd);
    this.#wakeFd = -1;
    this.sync();
    if (why !== undefined || this.#idleStop) {
      this.#options.log?.(
        why === undefined
          ? "native echo stopped: idle (the next echo starts it again)"
          : wasRunning
          ? `native echo stopped (${why}): the event loop echoes from now on`
          : `native echo unavailable (${why}): the event loop echoes`,
      );
    }
    // A Worker that died in its blocking mode did not put O_NONBLOCK back: Deno's event loop
    // must never read a blocking socket, so it is put back here (idempotent).
    const { fcntl } = this.#options.libc.symbols;
    const nonBlocking = (fd: number) => {
      const flags = fcntl(fd, LINUX.F_GETFL, 0);
      if (flags >= 0) fcntl(fd, LINUX.F_SETFL, flags | LINUX.O_NONBLOCK);
    };
    for (let i = 0; i < MAX_SLOTS; i++) {
      const held = this.#held[i];
      if (!held) continue;
      this.#held[i] = undefined;
      this.#slotOf.delete(held.conn);
      nonBlocking(held.fd);
      held.unmute?.();
      held.resolve(this.#stopping ? "server stopping" : "native echo stopped");
    }
    if (this.#udp) nonBlocking(this.#udp.fd);
    this.#udp?.unmute?.();
    this.#udp?.resolve(!this.#stopping || this.#idleStop);
    this.#udp = undefined;
    this.#onGone();
  }
}

function netAddr(bytes: Uint8Array): Deno.NetAddr {
  const { hostname, port } = decodeSockaddr(bytes);
  return { transport: "udp", hostname, port };
}
