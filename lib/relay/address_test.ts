import { assertEquals } from "@std/assert";
import { formatRelayEndpoint, isStream, parseRelayAddress } from "./address.ts";

Deno.test("parseRelayAddress reads every form the help names", () => {
  assertEquals(parseRelayAddress("tcp:8080", "listen"), {
    transport: "tcp",
    hostname: "0.0.0.0",
    port: 8080,
  });
  assertEquals(parseRelayAddress("tcp:10.0.0.5:80", "target"), {
    transport: "tcp",
    hostname: "10.0.0.5",
    port: 80,
  });
  assertEquals(parseRelayAddress("udp:[::1]:53", "target"), {
    transport: "udp",
    hostname: "::1",
    port: 53,
  });
  assertEquals(parseRelayAddress("tls:localhost:8443", "listen"), {
    transport: "tls",
    hostname: "localhost",
    port: 8443,
  });
  assertEquals(parseRelayAddress("unix:/tmp/app.sock", "listen"), {
    transport: "unix",
    path: "/tmp/app.sock",
  });
});

Deno.test("parseRelayAddress names what is wrong with a bad address", () => {
  const bad: [string, "listen" | "target", RegExp][] = [
    ["8080", "listen", /does not start with/],
    ["sctp:80", "listen", /does not start with/],
    ["tcp:", "listen", /no port/],
    ["unix:", "listen", /no socket path/],
    ["tcp:70000", "listen", /not a port/],
    ["tcp:host:x", "target", /not a port/],
    ["tcp:80", "target", /needs a host/],
    ["tcp:127.0.0.1:0", "target", /port from 1/],
    ["udp:[::1", "listen", /is not PROTO/],
    ["tcp::::1", "listen", /is not PROTO/],
  ];
  for (const [text, role, message] of bad) {
    const result = parseRelayAddress(text, role);
    assertEquals(typeof result, "string", text);
    assertEquals(message.test(result as string), true, `${text}: ${result}`);
  }
});

Deno.test("formatRelayEndpoint and isStream", () => {
  assertEquals(formatRelayEndpoint({ transport: "tls", hostname: "::1", port: 1 }), "tls [::1]:1");
  assertEquals(formatRelayEndpoint({ transport: "unix", path: "/a" }), "unix /a");
  assertEquals(isStream({ transport: "udp", hostname: "::1", port: 1 }), false);
  assertEquals(isStream({ transport: "unix", path: "/a" }), true);
});
