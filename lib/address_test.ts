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
import assert from "node:assert/strict";
import {
  formatAddr,
  formatEndpoint,
  formatHost,
  parsePort,
  splitHostPort,
  wildcardFor,
} from "./address.ts";

Deno.test("splitHostPort keeps a plain host without a port", () => {
  assert.deepEqual(splitHostPort("example.com"), { host: "example.com" });
  assert.deepEqual(splitHostPort("127.0.0.1"), { host: "127.0.0.1" });
});

Deno.test("splitHostPort splits HOST:PORT at its one colon", () => {
  assert.deepEqual(splitHostPort("127.0.0.1:5050"), { host: "127.0.0.1", port: "5050" });
  assert.deepEqual(splitHostPort("localhost:7"), { host: "localhost", port: "7" });
});

Deno.test("splitHostPort keeps empty halves of ':PORT' and 'HOST:' for the caller to reject", () => {
  assert.deepEqual(splitHostPort(":5050"), { host: "", port: "5050" });
  assert.deepEqual(splitHostPort("host:"), { host: "host", port: "" });
});

Deno.test("splitHostPort reads '[V6]:PORT' and '[V6]'", () => {
  assert.deepEqual(splitHostPort("[::1]:7"), { host: "::1", port: "7" });
  assert.deepEqual(splitHostPort("[fe80::1%eth0]:5050"), { host: "fe80::1%eth0", port: "5050" });
  assert.deepEqual(splitHostPort("[::1]"), { host: "::1" });
  assert.deepEqual(splitHostPort("[::1]:"), { host: "::1", port: "" });
});

Deno.test("splitHostPort takes a bare IPv6 address as a host, never as HOST:PORT", () => {
  assert.deepEqual(splitHostPort("::1"), { host: "::1" });
  assert.deepEqual(splitHostPort("::"), { host: "::" });
  assert.deepEqual(splitHostPort("2001:db8::1:5050"), { host: "2001:db8::1:5050" });
});

Deno.test("splitHostPort rejects an opening bracket without its closing one", () => {
  assert.equal(splitHostPort("[::1"), undefined);
  assert.equal(splitHostPort("[::1:5050"), undefined);
  assert.equal(splitHostPort("["), undefined);
});

Deno.test("splitHostPort rejects text after ']' that is not ':PORT'", () => {
  assert.equal(splitHostPort("[::1]5050"), undefined);
  assert.equal(splitHostPort("[::1]]:5050"), undefined);
  assert.equal(splitHostPort("[::1] :5050"), undefined);
});

Deno.test("splitHostPort rejects a closing bracket without an opening one", () => {
  assert.equal(splitHostPort("::1]"), undefined);
  assert.equal(splitHostPort("::1]:5050"), undefined);
  assert.equal(splitHostPort("host]:5050"), undefined);
});

Deno.test("parsePort accepts 0 through 65535", () => {
  assert.equal(parsePort("0"), 0);
  assert.equal(parsePort("1"), 1);
  assert.equal(parsePort("5050"), 5050);
  assert.equal(parsePort("65535"), 65535);
});

Deno.test("parsePort rejects 65536 and above", () => {
  assert.equal(parsePort("65536"), undefined);
  assert.equal(parsePort("70000"), undefined);
  assert.equal(parsePort("99999"), undefined);
  assert.equal(parsePort("100000"), undefined);
});

Deno.test("parsePort rejects negatives, decimals, signs, spaces, hex and words", () => {
  for (
    const text of ["", "-1", "+80", "1.5", "80.0", " 80", "80 ", "0x50", "1e3", "http", "８０"]
  ) {
    assert.equal(parsePort(text), undefined, JSON.stringify(text));
  }
});

Deno.test("formatEndpoint prints tcp and udp as 'PROTO HOST:PORT'", () => {
  assert.equal(
    formatEndpoint({ transport: "tcp", hostname: "127.0.0.1", port: 5050 }),
    "tcp 127.0.0.1:5050",
  );
  assert.equal(
    formatEndpoint({ transport: "udp", hostname: "example.com", port: 7 }),
    "udp example.com:7",
  );
});

Deno.test("formatEndpoint puts IPv6 addresses in brackets", () => {
  assert.equal(formatEndpoint({ transport: "tcp", hostname: "::1", port: 7 }), "tcp [::1]:7");
  assert.equal(formatEndpoint({ transport: "udp", hostname: "::", port: 0 }), "udp [::]:0");
});

Deno.test("formatEndpoint prints a Unix socket as 'unix PATH'", () => {
  assert.equal(formatEndpoint({ transport: "unix", path: "/tmp/nk.sock" }), "unix /tmp/nk.sock");
});

Deno.test("formatHost brackets IPv6 only", () => {
  assert.equal(formatHost("10.0.0.1", 80), "10.0.0.1:80");
  assert.equal(formatHost("fe80::1", 80), "[fe80::1]:80");
});

Deno.test("formatHost output splits back into the same host and port", () => {
  for (const [host, port] of [["127.0.0.1", 5050], ["::1", 7], ["localhost", 0]] as const) {
    assert.deepEqual(splitHostPort(formatHost(host, port)), { host, port: String(port) });
  }
});

Deno.test("formatAddr prints peers of every transport", () => {
  assert.equal(
    formatAddr({ transport: "tcp", hostname: "127.0.0.1", port: 4000 }),
    "127.0.0.1:4000",
  );
  assert.equal(formatAddr({ transport: "udp", hostname: "::1", port: 4000 }), "[::1]:4000");
  assert.equal(formatAddr({ transport: "unix", path: "/tmp/s" }), "/tmp/s");
  assert.equal(formatAddr({ transport: "unix", path: "" }), "unix-peer");
});

Deno.test("wildcardFor picks the wildcard of the host's family", () => {
  assert.equal(wildcardFor("127.0.0.1"), "0.0.0.0");
  assert.equal(wildcardFor("example.com"), "0.0.0.0");
  assert.equal(wildcardFor("::1"), "::");
});
