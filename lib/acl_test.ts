/**
 * Tests for access control by address: IP and CIDR parsing for both
 * families, prefix matching at byte and bit boundaries, and the allow/deny
 * decision for peers.
 *
 * @example
 * ```sh
 * deno test lib/acl_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { AccessList, type Cidr, contains, parseCidr, parseIp } from "./acl.ts";

function bytes(text: string): number[] | undefined {
  const b = parseIp(text);
  return b ? [...b] : undefined;
}

function cidr(text: string): Cidr {
  const c = parseCidr(text);
  assert(c, `expected ${text} to parse`);
  return c;
}

function ip(text: string): Uint8Array {
  const b = parseIp(text);
  assert(b, `expected ${text} to parse`);
  return b;
}

Deno.test("parseIp reads dotted IPv4 into 4 bytes, including 0.0.0.0 and 255.255.255.255", () => {
  assertEquals(bytes("127.0.0.1"), [127, 0, 0, 1]);
  assertEquals(bytes("0.0.0.0"), [0, 0, 0, 0]);
  assertEquals(bytes("255.255.255.255"), [255, 255, 255, 255]);
  assertEquals(bytes("192.168.1.20"), [192, 168, 1, 20]);
});

Deno.test("parseIp reads a full eight-group IPv6 address into 16 bytes, any hex case", () => {
  assertEquals(
    bytes("2001:0db8:0000:0000:0000:ff00:0042:8329"),
    [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0x00, 0x00, 0x42, 0x83, 0x29],
  );
  assertEquals(bytes("2001:DB8:0:0:0:FF00:42:8329"), bytes("2001:db8:0:0:0:ff00:42:8329"));
});

Deno.test("parseIp expands '::' at the start, middle and end of an IPv6 address", () => {
  const loopback = Array(16).fill(0);
  loopback[15] = 1;
  assertEquals(bytes("::1"), loopback);
  assertEquals(bytes("2001:db8::ff00:42:8329"), bytes("2001:db8:0:0:0:ff00:42:8329"));
  assertEquals(
    bytes("fe80::"),
    [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  );
  assertEquals(bytes("1:2:3:4:5:6:7::"), bytes("1:2:3:4:5:6:7:0"));
});

Deno.test("parseIp reads '::' alone as the 16-byte unspecified address", () => {
  assertEquals(bytes("::"), Array(16).fill(0));
});

Deno.test("parseIp maps IPv4-mapped IPv6 (::ffff:a.b.c.d, any spelling) to the 4 IPv4 bytes", () => {
  assertEquals(bytes("::ffff:1.2.3.4"), [1, 2, 3, 4]);
  assertEquals(bytes("::FFFF:1.2.3.4"), [1, 2, 3, 4]);
  assertEquals(bytes("0:0:0:0:0:ffff:1.2.3.4"), [1, 2, 3, 4]);
  assertEquals(bytes("::ffff:102:304"), [1, 2, 3, 4]);
});

Deno.test("parseIp keeps other embedded-IPv4 forms (::a.b.c.d, 64:ff9b::a.b.c.d) as 16 bytes", () => {
  assertEquals(bytes("::1.2.3.4"), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
  assertEquals(
    bytes("64:ff9b::192.0.2.33"),
    [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 33],
  );
});

Deno.test("parseIp strips an IPv6 zone id (%eth0, %3) before parsing", () => {
  assertEquals(bytes("fe80::1%eth0"), bytes("fe80::1"));
  assertEquals(bytes("fe80::1%3"), bytes("fe80::1"));
  assertEquals(bytes("::ffff:10.0.0.1%lo"), [10, 0, 0, 1]);
});

Deno.test("parseIp rejects malformed IPv4: wrong part count, octet over 255, signs, blanks", () => {
  for (
    const text of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "1.2.3.256",
      "1.2.3.-1",
      "1.2.3.+4",
      "1.2..4",
      "1.2.3.4.",
      " 1.2.3.4",
      "1.2.3.4 ",
      "1.2.3.0004",
      "1.2.3.x",
      "0x7f.0.0.1",
    ]
  ) {
    assertEquals(parseIp(text), undefined, JSON.stringify(text));
  }
});

Deno.test("parseIp rejects malformed IPv6: two '::', too many or too few groups, bad hex, brackets", () => {
  for (
    const text of [
      ":",
      ":::",
      "1::2::3",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "12345::1",
      "g::1",
      "1:2:3:4:5:6:7:",
      ":1:2:3:4:5:6:7",
      "[::1]",
      "::1/128",
      "::ffff:1.2.3",
      "::ffff:1.2.3.256",
      "1:2:3:4:5:6:7:1.2.3.4",
      "1.2.3.4::",
      "1.2.3.4%eth0",
      "hello",
      "localhost",
    ]
  ) {
    assertEquals(parseIp(text), undefined, JSON.stringify(text));
  }
});

Deno.test("parseCidr without a prefix is a single host: /32 for IPv4, /128 for IPv6", () => {
  const v4 = cidr("10.1.2.3");
  assertEquals(v4.prefix, 32);
  assertEquals([...v4.bytes], [10, 1, 2, 3]);
  assertEquals(v4.text, "10.1.2.3");
  const v6 = cidr("2001:db8::1");
  assertEquals(v6.prefix, 128);
  assertEquals(v6.bytes.length, 16);
});

Deno.test("parseCidr accepts prefixes 0..32 for IPv4 and 0..128 for IPv6, rejecting one more", () => {
  assertEquals(cidr("0.0.0.0/0").prefix, 0);
  assertEquals(cidr("10.0.0.0/8").prefix, 8);
  assertEquals(cidr("10.0.0.1/32").prefix, 32);
  assertEquals(parseCidr("10.0.0.1/33"), undefined);
  assertEquals(cidr("::/0").prefix, 0);
  assertEquals(cidr("2001:db8::/32").prefix, 32);
  assertEquals(cidr("::1/128").prefix, 128);
  assertEquals(parseCidr("::1/129"), undefined);
});

Deno.test("parseCidr applies IPv4 prefix bounds to an IPv4-mapped address (it becomes IPv4)", () => {
  const c = cidr("::ffff:10.0.0.0/8");
  assertEquals([...c.bytes], [10, 0, 0, 0]);
  assertEquals(c.prefix, 8);
  assertEquals(parseCidr("::ffff:10.0.0.0/33"), undefined);
});

Deno.test("parseCidr rejects malformed text: empty or non-decimal prefix, extra '/', bad address", () => {
  for (
    const text of [
      "",
      "/8",
      "10.0.0.0/",
      "10.0.0.0/-1",
      "10.0.0.0/+8",
      "10.0.0.0/8.0",
      "10.0.0.0/0x8",
      "10.0.0.0/ 8",
      "10.0.0.0/1000",
      "10.0.0.0/8/8",
      "10.0.0/8",
      "example.com/8",
      "::1/",
      "::1//64",
    ]
  ) {
    assertEquals(parseCidr(text), undefined, JSON.stringify(text));
  }
});

Deno.test("contains with /0 matches every address of the same family and none of the other", () => {
  const any4 = cidr("0.0.0.0/0");
  assert(contains(any4, ip("0.0.0.0")));
  assert(contains(any4, ip("255.255.255.255")));
  assert(!contains(any4, ip("::1")));
  const any6 = cidr("::/0");
  assert(contains(any6, ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  assert(!contains(any6, ip("1.2.3.4")));
});

Deno.test("contains with /7 compares the top seven bits of the first byte only", () => {
  const c = cidr("fc00::/7"); // unique local addresses: fc00::/7 covers fc and fd
  assert(contains(c, ip("fc00::1")));
  assert(contains(c, ip("fdff:ffff::1")));
  assert(!contains(c, ip("fe00::1")));
  assert(!contains(c, ip("fbff::1")));
  const v4 = cidr("2.0.0.0/7"); // 2.x and 3.x
  assert(contains(v4, ip("2.0.0.0")));
  assert(contains(v4, ip("3.255.255.255")));
  assert(!contains(v4, ip("1.255.255.255")));
  assert(!contains(v4, ip("4.0.0.0")));
});

Deno.test("contains with /8 and /9 splits at the byte boundary and one bit past it", () => {
  const eight = cidr("10.0.0.0/8");
  assert(contains(eight, ip("10.255.255.255")));
  assert(!contains(eight, ip("11.0.0.0")));
  const nine = cidr("10.128.0.0/9");
  assert(contains(nine, ip("10.128.0.0")));
  assert(contains(nine, ip("10.255.255.255")));
  assert(!contains(nine, ip("10.127.255.255")));
  assert(!contains(nine, ip("11.128.0.0")));
});

Deno.test("contains with /31 matches exactly the two addresses of the pair", () => {
  const c = cidr("192.168.1.4/31");
  assert(contains(c, ip("192.168.1.4")));
  assert(contains(c, ip("192.168.1.5")));
  assert(!contains(c, ip("192.168.1.3")));
  assert(!contains(c, ip("192.168.1.6")));
});

Deno.test("contains with /32 and /128 matches only the host itself", () => {
  const v4 = cidr("192.168.1.5/32");
  assert(contains(v4, ip("192.168.1.5")));
  assert(!contains(v4, ip("192.168.1.4")));
  const v6 = cidr("2001:db8::5/128");
  assert(contains(v6, ip("2001:db8::5")));
  assert(!contains(v6, ip("2001:db8::4")));
});

Deno.test("contains with /127 matches the IPv6 pair differing in the last bit only", () => {
  const c = cidr("2001:db8::4/127");
  assert(contains(c, ip("2001:db8::4")));
  assert(contains(c, ip("2001:db8::5")));
  assert(!contains(c, ip("2001:db8::6")));
  assert(!contains(c, ip("2001:db8::3")));
  assert(!contains(c, ip("2001:db9::4")));
});

Deno.test("contains ignores host bits set in the network address (10.1.2.3/8 is 10.0.0.0/8)", () => {
  const c = cidr("10.1.2.3/8");
  assert(contains(c, ip("10.200.0.1")));
  assert(!contains(c, ip("11.1.2.3")));
});

Deno.test("AccessList with no rules is inactive and permits everyone, even unparsable peers", () => {
  const acl = new AccessList();
  assertEquals(acl.active, false);
  assert(acl.permits("127.0.0.1"));
  assert(acl.permits("::1"));
  assert(acl.permits("not an address"));
});

Deno.test("AccessList with only allow rules permits matching peers and refuses all others", () => {
  const acl = new AccessList([cidr("127.0.0.0/8"), cidr("2001:db8::/32")]);
  assertEquals(acl.active, true);
  assert(acl.permits("127.0.0.1"));
  assert(acl.permits("127.255.0.9"));
  assert(acl.permits("2001:db8:1::1"));
  assert(!acl.permits("10.0.0.1"));
  assert(!acl.permits("::1"));
  assert(!acl.permits("2001:db9::1"));
});

Deno.test("AccessList with only deny rules refuses matching peers and permits all others", () => {
  const acl = new AccessList([], [cidr("10.0.0.0/8"), cidr("fe80::/10")]);
  assertEquals(acl.active, true);
  assert(!acl.permits("10.1.2.3"));
  assert(!acl.permits("fe80::1%eth0"));
  assert(acl.permits("11.0.0.1"));
  assert(acl.permits("::1"));
});

Deno.test("AccessList: deny wins over an allow rule that also matches the peer", () => {
  const acl = new AccessList([cidr("127.0.0.0/8")], [cidr("127.0.0.2")]);
  assert(acl.permits("127.0.0.1"));
  assert(!acl.permits("127.0.0.2"));
  assert(!acl.permits("::1"));
  const broad = new AccessList([cidr("127.0.0.2")], [cidr("0.0.0.0/0")]);
  assert(!broad.permits("127.0.0.2"));
});

Deno.test("AccessList matches IPv4-mapped IPv6 peers (dual-stack sockets) against IPv4 rules", () => {
  const allow = new AccessList([cidr("192.168.0.0/16")]);
  assert(allow.permits("::ffff:192.168.3.4"));
  assert(!allow.permits("::ffff:10.0.0.1"));
  const deny = new AccessList([], [cidr("192.168.3.4")]);
  assert(!deny.permits("::ffff:192.168.3.4"));
  assert(deny.permits("::ffff:192.168.3.5"));
});

Deno.test("AccessList refuses a peer whose address does not parse once any rule exists", () => {
  assert(!new AccessList([cidr("0.0.0.0/0")]).permits("garbage"));
  assert(!new AccessList([], [cidr("10.0.0.0/8")]).permits("garbage"));
  assert(!new AccessList([], [cidr("10.0.0.0/8")]).permits(""));
});

Deno.test("parseIp refuses '::' standing for no group at all (RFC 4291)", () => {
  for (const text of ["1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1:2:3:4::5:6:7:8"]) {
    assertEquals(parseIp(text), undefined, text);
  }
});
