/**
 * The server's budget for throughput test buffers (`--max-test-memory`): a
 * test reserves what its buffers may take before it starts and gives it back
 * when it ends, so tests together never hold more than the budget, and no one
 * test more than its share ({@linkcode MemoryBudget.perTest}, half the budget).
 * A request beyond either is refused with a line that says which and by how much.
 *
 * @example
 * ```ts
 * import { MemoryBudget } from "./memory_budget.ts";
 *
 * const budget = new MemoryBudget(256 * 1024 * 1024);
 * const grant = budget.reserve(64 * 1024 * 1024);
 * if (typeof grant === "string") console.log(grant); // why it was refused
 * else grant.release();
 * ```
 *
 * @module
 */

import { formatSize } from "../units.ts";

/** A reservation: give it back once, when the test has let go of its buffers. */
export interface MemoryGrant {
  release(): void;
}

/** Test buffer memory: a global limit, and a per-test limit of half of it. */
export class MemoryBudget {
  #used = 0;
  #tests = 0;

  /** @param limit Bytes all running tests' buffers may take together, at least 1. */
  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError(`limit must be at least 1 byte, got ${limit}`);
  }

  /** The most one test may reserve. */
  get perTest(): number {
    return Math.floor(this.limit / 2);
  }

  /** Bytes reserved by running tests now. */
  get used(): number {
    return this.#used;
  }

  /**
   * Reserve `bytes` for one test, described as `what` in a refusal (e.g.
   * `"128 streams of 4 MiB"`; by default "this test"); returns the grant, or why it was
   * refused.
   */
  reserve(bytes: number, what = "this test"): MemoryGrant | string {
    if (!(bytes >= 0) || !Number.isFinite(bytes)) return `cannot reserve ${bytes} bytes`;
    if (bytes > this.perTest) {
      return `${what} needs ${formatSize(bytes)} of buffers, over this server's ${
        formatSize(this.perTest)
      } per test (half its --max-test-memory ${
        formatSize(this.limit)
      }): use fewer streams (--parallel) or a smaller --size`;
    }
    if (this.#used + bytes > this.limit) {
      return `the server's test memory is taken (${formatSize(this.#used)} of ${
        formatSize(this.limit)
      } by ${this.#tests} running test${this.#tests === 1 ? "" : "s"}; this one needs ${
        formatSize(bytes)
      }): try again when they end`;
    }
    this.#used += bytes;
    this.#tests++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#used -= bytes;
        this.#tests--;
      },
    };
  }
}
