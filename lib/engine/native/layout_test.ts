import { assertEquals, assertThrows } from "@std/assert";
import { decodeSockaddr, encodeSockaddr, familyOf, layoutFor, LAYOUTS, LINUX } from "./layout.ts";

for (const arch of ["x86_64", "aarch64"] as const) {
  Deno.test(`${arch}: struct sizes and offsets match the LP64 Linux ABI`, () => {
    const l = LAYOUTS[arch];
    assertEquals(l.sockaddrIn, { size: 16, family: 0, port: 2, addr: 4 });
    assertEquals(l.sockaddrIn6, {
      size: 28,
      family: 0,
      port: 2,
      flowinfo: 4,
      addr: 8,
      scopeId: 24,
    });
    assertEquals(l.iovec, { size: 16, base: 0, len: 8 });
    assertEquals(l.msghdr.size, 56);
    assertEquals(
      [l.msghdr.name, l.msghdr.namelen, l.msghdr.iov, l.msghdr.iovlen],
      [0, 8, 16, 24],
    );
    assertEquals([l.msghdr.control, l.msghdr.controllen, l.msghdr.flags], [32, 40, 48]);
    assertEquals(l.mmsghdr, { size: 64, hdr: 0, len: 56 });
    assertEquals(l.pollfd, { size: 8, fd: 0, events: 4, revents: 6 });
    // Every pointer and size_t field is 8-byte aligned, and arrays of mmsghdr stay aligned.
    for (
      const off of [l.iovec.base, l.iovec.len, l.msghdr.iov, l.msghdr.iovlen, l.msghdr.control]
    ) {
      assertEquals(off % 8, 0);
    }
    assertEquals(l.mmsghdr.size % 8, 0);
  });
}

Deno.test("architectures without checked layouts get none", () => {
  assertEquals(layoutFor("riscv64gc"), undefined);
  assertEquals(layoutFor("x86_64"), LAYOUTS.x86_64);
});

Deno.test("sockaddr_in for 127.0.0.1:5050: family little-endian, port and address big-endian", () => {
  assertEquals(
    Array.from(encodeSockaddr("127.0.0.1", 5050)),
    [2, 0, 0x13, 0xba, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
  );
});

Deno.test("sockaddr_in6 for [::1]:443 puts the address at offset 8", () => {
  const bytes = encodeSockaddr("::1", 443);
  assertEquals(bytes.length, 28);
  assertEquals(Array.from(bytes.subarray(0, 8)), [LINUX.AF_INET6, 0, 0x01, 0xbb, 0, 0, 0, 0]);
  assertEquals(Array.from(bytes.subarray(8, 24)), [...Array(15).fill(0), 1]);
  assertEquals(Array.from(bytes.subarray(24)), [0, 0, 0, 0]);
});

Deno.test("sockaddrs decode to what was encoded, IPv6 compressed like inet_ntop", () => {
  for (
    const [host, shown] of [
      ["10.1.2.3", "10.1.2.3"],
      ["::1", "::1"],
      ["[fe80::1:2]", "fe80::1:2"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["::ffff:192.0.2.1", "::ffff:c000:201"],
      ["::", "::"],
    ]
  ) {
    assertEquals(decodeSockaddr(encodeSockaddr(host!, 4242)), { hostname: shown!, port: 4242 });
  }
});

Deno.test("names and malformed addresses are not IP literals", () => {
  for (const bad of ["localhost", "1.2.3", "1.2.3.256", "1::2::3", "12345::", "1:2:3:4:5:6:7"]) {
    assertEquals(familyOf(bad), undefined, bad);
    assertThrows(() => encodeSockaddr(bad, 1), TypeError);
  }
  assertEquals(familyOf("192.0.2.1"), "ipv4");
  assertEquals(familyOf("1:2:3:4:5:6:7:8"), "ipv6");
});
