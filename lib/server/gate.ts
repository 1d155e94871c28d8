/**
 * The one gate every socket a stranger can reach goes through: the server's
 * listeners and each throughput test's UDP port apply `--allow`/`--deny` and
 * `--rate-limit` here, with the same counters and the same log lines, so a host
 * refused on the main port is refused on every other port too.
 *
 * @example
 * ```ts
 * import { Gate } from "./gate.ts";
 * import { parseCidr } from "../acl.ts";
 *
 * const counters = { denied: 0, rateLimited: 0 };
 * const gate = new Gate({ allow: [], deny: [parseCidr("127.0.0.2")!], rateLimit: 100 }, counters);
 * const from: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.2", port: 4000 };
 * gate.admitDatagram(from); // false: denied, and counted
 * console.log(counters.denied); // 1
 * ```
 *
 * @module
 */

import { AccessList, type Cidr } from "../acl.ts";
import { formatAddr } from "../address.ts";
import { RateLimiter } from "../rate_limiter.ts";

/** What the gate applies: the server's `--allow`, `--deny` and `--rate-limit`. */
export interface GateRules {
  allow: Cidr[];
  deny: Cidr[];
  /** UDP datagrams per second accepted from one source address; 0: no limit. */
  rateLimit: number;
}

/** Counters the gate adds its refusals to (the server's summary). */
export interface GateCounters {
  /** Connections and datagrams refused by `--allow`/`--deny`. */
  denied: number;
  /** UDP datagrams dropped by `--rate-limit`. */
  rateLimited: number;
}

/** Options of {@linkcode Gate}. */
export interface GateOptions {
  /**
   * Log each refused connection, and the first refused datagram of each source.
   * @default {undefined} (no logs)
   */
  log?: (line: string) => void;
}

/** Access control and the per-source rate limit, shared by every socket of one server. */
export class Gate {
  readonly #acl: AccessList;
  readonly #limiter: RateLimiter | undefined;
  readonly #counters: GateCounters;
  readonly #log: ((line: string) => void) | undefined;
  /** Sources whose datagram refusal was logged (bounded), so a flood logs one line. */
  readonly #noted = new Set<string>();

  constructor(rules: GateRules, counters: GateCounters, options: GateOptions = {}) {
    this.#acl = new AccessList(rules.allow, rules.deny);
    this.#limiter = rules.rateLimit > 0 ? new RateLimiter(rules.rateLimit) : undefined;
    this.#counters = counters;
    this.#log = options.log;
  }

  /** Whether the gate refuses anything at all (otherwise every admit is true). */
  get active(): boolean {
    return this.#acl.active || this.#limiter !== undefined;
  }

  /** Whether a stream connection from `addr` may be served; a refusal is counted and logged. */
  admitConnection(addr: Deno.Addr): boolean {
    if (!this.#acl.active || addr.transport !== "tcp" || this.#acl.permits(addr.hostname)) {
      return true;
    }
    this.#counters.denied++;
    this.#log?.(`denied ${formatAddr(addr)}: not permitted by --allow/--deny`);
    return false;
  }

  /**
   * Whether a datagram from `addr` may be read, on any of the server's UDP sockets
   * (`--allow`/`--deny`, then `--rate-limit`); refusals are counted, and logged once per source.
   */
  admitDatagram(addr: Deno.Addr): boolean {
    if (!this.active) return true;
    const host = addr.transport === "udp" ? addr.hostname : "";
    if (!this.#acl.permits(host)) {
      this.#counters.denied++;
      if (this.#firstNote(host)) {
        this.#log!(`denied udp ${formatAddr(addr)}: not permitted by --allow/--deny`);
      }
      return false;
    }
    if (this.#limiter && !this.#limiter.take(host, performance.now())) {
      this.#counters.rateLimited++;
      if (this.#firstNote(host)) {
        this.#log!(
          `rate-limited udp ${formatAddr(addr)}: over --rate-limit ${this.#limiter.rate}/s`,
        );
      }
      return false;
    }
    return true;
  }

  /**
   * Whether to log a refused datagram from `source`: with a log, its first one only. Asked
   * before the line is formatted, so a flood of refused datagrams formats no string.
   */
  #firstNote(source: string): boolean {
    if (!this.#log || this.#noted.has(source)) return false;
    if (this.#noted.size >= 1024) this.#noted.clear();
    this.#noted.add(source);
    return true;
  }
}
