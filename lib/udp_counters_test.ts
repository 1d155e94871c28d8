/**
 * Unit tests of reading the kernel's per-socket UDP drop counters.
 *
 * @module
 */

import { assertEquals } from "@std/assert";
import { dropsDuring, parseUdpSocketDrops } from "./udp_counters.ts";

const PROC_NET_UDP =
  "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n" +
  "  120: 0100007F:A7C3 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 99254 2 00000000097211fd 1798\n" +
  "  121: 00000000:13BA 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 99255 2 00000000097211fe 0\n";

Deno.test("parseUdpSocketDrops reads the drops column of the socket on a port", () => {
  assertEquals(parseUdpSocketDrops(PROC_NET_UDP, 0xa7c3), 1798);
  assertEquals(parseUdpSocketDrops(PROC_NET_UDP, 5050), 0);
  assertEquals(parseUdpSocketDrops(PROC_NET_UDP, 9), undefined);
  assertEquals(parseUdpSocketDrops("", 9), undefined);
});

Deno.test("dropsDuring prefers the socket's own count, then the host's, else null", () => {
  assertEquals(dropsDuring({ socket: 2, host: 10 }, { socket: 7, host: 90 }), 5);
  assertEquals(dropsDuring({ socket: undefined, host: 10 }, { socket: undefined, host: 90 }), 80);
  assertEquals(
    dropsDuring({ socket: undefined, host: undefined }, { socket: 3, host: undefined }),
    null,
  );
});
