import { assertEquals, assertMatch } from "@std/assert";
import {
  counterDelta,
  formatKernelCounters,
  kernelJson,
  parseNftDrops,
  parseNstat,
} from "./counters.ts";

/** `nft list table inet netkit_lab` as nftables 1.0 prints it. */
const LISTING = `table inet netkit_lab {
	chain input {
		type filter hook input priority filter; policy accept;
		tcp flags & syn == syn accept
		meta l4proto udp numgen random mod 10000 < 500 counter packets 412 bytes 39552 drop
		meta l4proto tcp numgen random mod 10000 < 500 counter packets 97 bytes 9000 drop
	}
}
`;

Deno.test("the drop rules' packet counts are read per protocol, 0 without a rule", () => {
  assertEquals(parseNftDrops(LISTING), { dropsUdp: 412, dropsTcp: 97 });
  assertEquals(parseNftDrops(""), { dropsUdp: 0, dropsTcp: 0 });
});

Deno.test("nstat's JSON gives TcpRetransSegs and the UDP errors; missing counters read 0", () => {
  assertEquals(
    parseNstat('{"kernel":{"TcpRetransSegs":61,"UdpRcvbufErrors":2,"UdpInErrors":3}}'),
    { tcpRetransSegs: 61, udpRcvbufErrors: 2, udpInErrors: 3 },
  );
  assertEquals(parseNstat('{"kernel":{}}'), {
    tcpRetransSegs: 0,
    udpRcvbufErrors: 0,
    udpInErrors: 0,
  });
});

Deno.test("the kernel JSON and line carry what changed between two readings", () => {
  const before = {
    tcpRetransSegs: 1,
    udpRcvbufErrors: 0,
    udpInErrors: 0,
    dropsUdp: 0,
    dropsTcp: 0,
  };
  const after = {
    tcpRetransSegs: 62,
    udpRcvbufErrors: 2,
    udpInErrors: 2,
    dropsUdp: 400,
    dropsTcp: 12,
  };
  const delta = counterDelta(before, after);
  assertEquals(kernelJson(delta), {
    tcp_retransmitted_segments: 61,
    udp_rcvbuf_errors: 2,
    udp_in_errors: 2,
    impairment_drops: 412,
    impairment_drops_udp: 400,
    impairment_drops_tcp: 12,
  });
  assertMatch(
    formatKernelCounters(delta),
    /TCP retransmitted 61 segments.*dropped 412 packets \(400 UDP, 12 TCP\)/,
  );
});
