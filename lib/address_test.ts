/**
 * Tests for endpoint parsing and formatting: every `HOST[:PORT]` form
 * {@linkcode splitHostPort} takes or rejects, the bounds of
 * {@linkcode parsePort}, and how endpoints print.
 *
 * @example
 * ```sh
 * deno test lib/address_test.ts
 * ```
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import {
  formatAddr,
  formatEndpoint,
  formatHost,
  ipFamily,
  parsePort,
  splitHostPort,
  wildcardFor,
} from "./address.ts";

Deno.test("splitHostPort keeps a plain host without a port", () => {
  assertEquals(splitHostPort("example.com"), { host: "example.com" });
  assertEquals(splitHostPort("127.0.0.1"), { host: "127.0.0.1" });
});

Deno.test("splitHostPort splits HOST:PORT at its one colon", () => {
  assertEquals(splitHostPort("127.0.0.1:5050"), { host: "127.0.0.1", port: "5050" });
  assertEquals(splitHostPort("localhost:7"), { host: "localhost", port: "7" });
});

Deno.test("splitHostPort keeps empty halves of ':PORT' and 'HOST:' for the caller to reject", () => {
  assertEquals(splitHostPort(":5050"), { host: "", port: "5050" });
  assertEquals(splitHostPort("host:"), { host: "host", port: "" });
});

Deno.test("splitHostPort reads '[V6]:PORT' and '[V6]'", () => {
  assertEquals(splitHostPort("[::1]:7"), { host: "::1", port: "7" });
  assertEquals(splitHostPort("[fe80::1%eth0]:5050"), { host: "fe80::1%eth0", port: "5050" });
  assertEquals(splitHostPort("[::1]"), { host: "::1" });
  assertEquals(splitHostPort("[::1]:"), { host: "::1", port: "" });
});

Deno.test("splitHostPort takes a bare IPv6 address as a host, never as HOST:PORT", () => {
  assertEquals(splitHostPort("::1"), { host: "::1" });
  assertEquals(splitHostPort("::"), { host: "::" });
  assertEquals(splitHostPort("2001:db8::1:5050"), { host: "2001:db8::1:5050" });
});

Deno.test("splitHostPort rejects an opening bracket without its closing one", () => {
  assertEquals(splitHostPort("[::1"), undefined);
  assertEquals(splitHostPort("[::1:5050"), undefined);
  assertEquals(splitHostPort("["), undefined);
});

Deno.test("splitHostPort rejects text after ']' that is not ':PORT'", () => {
  assertEquals(splitHostPort("[::1]5050"), undefined);
  assertEquals(splitHostPort("[::1]]:5050"), undefined);
  assertEquals(splitHostPort("[::1] :5050"), undefined);
});

Deno.test("splitHostPort rejects a closing bracket without an opening one", () => {
  assertEquals(splitHostPort("::1]"), undefined);
  assertEquals(splitHostPort("::1]:5050"), undefined);
  assertEquals(splitHostPort("host]:5050"), undefined);
});

Deno.test("parsePort accepts 0 through 65535", () => {
  assertEquals(parsePort("0"), 0);
  assertEquals(parsePort("1"), 1);
  assertEquals(parsePort("5050"), 5050);
  assertEquals(parsePort("65535"), 65535);
});

Deno.test("parsePort rejects 65536 and above", () => {
  assertEquals(parsePort("65536"), undefined);
  assertEquals(parsePort("70000"), undefined);
  assertEquals(parsePort("99999"), undefined);
  assertEquals(parsePort("100000"), undefined);
});

Deno.test("parsePort rejects negatives, decimals, signs, spaces, hex and words", () => {
  for (
    const text of ["", "-1", "+80", "1.5", "80.0", " 80", "80 ", "0x50", "1e3", "http", "８０"]
  ) {
    assertEquals(parsePort(text), undefined, JSON.stringify(text));
  }
});

Deno.test("formatEndpoint prints tcp and udp as 'PROTO HOST:PORT'", () => {
  assertEquals(
    formatEndpoint({ transport: "tcp", hostname: "127.0.0.1", port: 5050 }),
    "tcp 127.0.0.1:5050",
  );
  assertEquals(
    formatEndpoint({ transport: "udp", hostname: "example.com", port: 7 }),
    "udp example.com:7",
  );
});

Deno.test("formatEndpoint puts IPv6 addresses in brackets", () => {
  assertEquals(formatEndpoint({ transport: "tcp", hostname: "::1", port: 7 }), "tcp [::1]:7");
  assertEquals(formatEndpoint({ transport: "udp", hostname: "::", port: 0 }), "udp [::]:0");
});

Deno.test("formatEndpoint prints a Unix socket as 'unix PATH'", () => {
  assertEquals(formatEndpoint({ transport: "unix", path: "/tmp/nk.sock" }), "unix /tmp/nk.sock");
});

Deno.test("formatHost brackets IPv6 only", () => {
  assertEquals(formatHost("10.0.0.1", 80), "10.0.0.1:80");
  assertEquals(formatHost("fe80::1", 80), "[fe80::1]:80");
});

Deno.test("formatHost output splits back into the same host and port", () => {
  for (const [host, port] of [["127.0.0.1", 5050], ["::1", 7], ["localhost", 0]] as const) {
    assertEquals(splitHostPort(formatHost(host, port)), { host, port: String(port) });
  }
});

Deno.test("formatAddr prints peers of every transport", () => {
  assertEquals(
    formatAddr({ transport: "tcp", hostname: "127.0.0.1", port: 4000 }),
    "127.0.0.1:4000",
  );
  assertEquals(formatAddr({ transport: "udp", hostname: "::1", port: 4000 }), "[::1]:4000");
  assertEquals(formatAddr({ transport: "unix", path: "/tmp/s" }), "/tmp/s");
  assertEquals(formatAddr({ transport: "unix", path: "" }), "unix-peer");
});

Deno.test("wildcardFor picks the wildcard of the host's family", () => {
  assertEquals(wildcardFor("127.0.0.1"), "0.0.0.0");
  assertEquals(wildcardFor("example.com"), "0.0.0.0");
  assertEquals(wildcardFor("::1"), "::");
});

Deno.test("ipFamily tells IPv4 and IPv6 literals from names and malformed text", () => {
  assertEquals(ipFamily("127.0.0.1"), 4);
  assertEquals(ipFamily("0.0.0.0"), 4);
  assertEquals(ipFamily("::1"), 6);
  assertEquals(ipFamily("fe80::1:2"), 6);
  assertEquals(ipFamily("::ffff:10.0.0.1"), 6);
  for (const text of ["localhost", "256.1.1.1", "1.2.3", "01.2.3.4", "1:2:3", "::g", "[::1]", ""]) {
    assertEquals(ipFamily(text), undefined, text);
  }
});
