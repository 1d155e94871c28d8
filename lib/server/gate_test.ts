/**
 * Tests for the server's one gate: the access list for connections and
 * datagrams, the per-source rate limit for datagrams, and their counters and
 * once-per-source log lines.
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";
import { parseCidr } from "../acl.ts";
import { Gate } from "./gate.ts";

const udp = (hostname: string, port = 4000): Deno.NetAddr => ({ transport: "udp", hostname, port });
const tcp = (hostname: string, port = 4000): Deno.NetAddr => ({ transport: "tcp", hostname, port });

Deno.test("Gate with no rules admits everyone and counts nothing", () => {
  const counters = { denied: 0, rateLimited: 0 };
  const gate = new Gate({ allow: [], deny: [], rateLimit: 0 }, counters);
  assertEquals(gate.active, false);
  assert(gate.admitConnection(tcp("10.0.0.1")));
  for (let i = 0; i < 1000; i++) assert(gate.admitDatagram(udp("10.0.0.1")));
  assertEquals(counters, { denied: 0, rateLimited: 0 });
});

Deno.test("Gate applies --deny to connections and datagrams alike, counting each refusal", () => {
  const counters = { denied: 0, rateLimited: 0 };
  const lines: string[] = [];
  const gate = new Gate(
    { allow: [], deny: [parseCidr("127.0.0.2")!], rateLimit: 0 },
    counters,
    { log: (line) => lines.push(line) },
  );
  assertEquals(gate.admitConnection(tcp("127.0.0.2")), false);
  assertEquals(gate.admitDatagram(udp("127.0.0.2", 1)), false);
  assertEquals(gate.admitDatagram(udp("127.0.0.2", 2)), false);
  assert(gate.admitConnection(tcp("127.0.0.1")));
  assert(gate.admitDatagram(udp("127.0.0.1")));
  assertEquals(counters.denied, 3);
  // A connection is logged each time; a datagram source once.
  assertEquals(lines, [
    "denied 127.0.0.2:4000: not permitted by --allow/--deny",
    "denied udp 127.0.0.2:1: not permitted by --allow/--deny",
  ]);
});

Deno.test("Gate with --allow refuses an unlisted IPv4-mapped or IPv6 peer, and admits a listed one", () => {
  const counters = { denied: 0, rateLimited: 0 };
  const gate = new Gate({ allow: [parseCidr("127.0.0.0/8")!], deny: [], rateLimit: 0 }, counters);
  assert(gate.admitDatagram(udp("::ffff:127.0.0.9")));
  assertEquals(gate.admitDatagram(udp("::1")), false);
  assertEquals(gate.admitConnection(tcp("10.1.2.3")), false);
  assertEquals(counters.denied, 2);
});

Deno.test("Gate rate-limits datagrams per source address, whatever port they come from", () => {
  const counters = { denied: 0, rateLimited: 0 };
  const gate = new Gate({ allow: [], deny: [], rateLimit: 5 }, counters);
  let admitted = 0;
  for (let i = 0; i < 50; i++) if (gate.admitDatagram(udp("127.0.0.1", 1000 + i))) admitted++;
  assert(admitted >= 5 && admitted <= 6, `admitted ${admitted}`);
  assertEquals(counters.rateLimited, 50 - admitted);
  assert(gate.admitDatagram(udp("127.0.0.3")), "another source has its own bucket");
  assert(gate.admitConnection(tcp("127.0.0.1")), "connections are not rate-limited");
});
