import { assertEquals, assertMatch } from "@std/assert";
import { parseCommandLine } from "./cli/parse.ts";
import {
  engineChoiceOf,
  formatPrivileges,
  PERMISSION_NAMES,
  PRIVILEGES,
  type Role,
  roleOf,
} from "./privileges.ts";

const CASES: [string[], Role][] = [
  [["server", "--port", "0"], "server"],
  [["server", "--proto", "both"], "server"],
  [["server", "--tls", "--cert", "c.pem", "--key", "k.pem"], "server-tls"],
  [["server", "--path", "/tmp/x.sock"], "server-unix"],
  [["client", "127.0.0.1", "5050"], "client-netcat"],
  [["client", "--proto", "udp", "127.0.0.1", "5050"], "client-netcat"],
  [["client", "--path", "/tmp/x.sock"], "client-unix"],
  [["client", "--path", "/tmp/x.sock", "--message", "hi"], "client-unix"],
  [["client", "--tls", "--ca", "ca.pem", "127.0.0.1"], "client-tls"],
  [["client", "--tls", "--insecure", "127.0.0.1", "--message", "hi"], "client-tls"],
  [["client", "--message", "hi"], "message"],
  [["client", "--probe", "--proto", "udp"], "probe"],
  [["client", "--throughput"], "throughput"],
  [["compare"], "compare"],
  [["compare", "127.0.0.1", "5050"], "compare"],
  [["relay", "tcp:0", "tcp:127.0.0.1:5050"], "relay"],
  [["relay", "udp:0", "udp:[::1]:53", "--loss", "5%"], "relay"],
  [["relay", "tls:0", "tcp:127.0.0.1:80", "--cert", "c.pem", "--key", "k.pem"], "relay"],
  [["relay", "tcp:0", "tls:127.0.0.1:443", "--ca", "ca.pem"], "relay"],
  [["relay", "unix:/tmp/x.sock", "tcp:127.0.0.1:5432"], "relay-unix"],
  [["relay", "tcp:0", "unix:/tmp/x.sock"], "relay-unix"],
  [["scan", "127.0.0.1", "1-1024"], "scan"],
  [["scan", "-u", "::1", "53"], "scan"],
  [["compare", "--loss", "2%"], "compare-lab"],
  [["compare", "--link-rate", "20M", "--count", "100"], "compare-lab"],
  [["lab", "--loss", "5%", "--", "client", "--probe"], "lab"],
  [["--help"], "text"],
  [["server", "--help"], "text"],
];

for (const [argv, role] of CASES) {
  Deno.test(`netkit ${argv.join(" ")} takes the '${role}' row of the privilege table`, () => {
    assertEquals(roleOf(parseCommandLine(argv)), role);
  });
}

Deno.test("only Unix sockets keep write, only the lab keeps run, and none keeps ffi (but with the native engine), env or sys", () => {
  for (const [role, { keep }] of Object.entries(PRIVILEGES)) {
    for (const name of keep) assertEquals(PERMISSION_NAMES.includes(name), true, name);
    assertEquals(keep.includes("write"), role.endsWith("-unix"), role);
    assertEquals(keep.includes("run"), role === "lab" || role === "compare-lab", role);
    for (const name of ["ffi", "env", "sys"] as const) {
      assertEquals(keep.includes(name), false, `${role} keeps ${name}`);
    }
  }
  assertEquals(PRIVILEGES.text.keep, []);
  assertEquals(PRIVILEGES["client-netcat"].keep, ["net"]);
  assertEquals(PRIVILEGES["server-tls"].keep, ["net"]);
  assertEquals(PRIVILEGES.relay.keep, ["net"]);
  assertEquals(PRIVILEGES["relay-unix"].keep, ["net", "read", "write"]);
  assertEquals(PRIVILEGES.scan.keep, ["net"]);
});

Deno.test("the -v line lists what was kept and what was dropped, or 'none'", () => {
  assertEquals(
    formatPrivileges({ role: "compare", kept: ["net", "read"], dropped: ["write", "ffi"] }),
    "permissions kept: net, read; dropped: write, ffi",
  );
  assertMatch(
    formatPrivileges({ role: "text", kept: [], dropped: [] }),
    /^permissions kept: none; dropped: none$/,
  );
});

Deno.test("only UDP probe, a TCP ping-pong, UDP messages, UDP or receiving TCP throughput, compare, a UDP scan, a test-serving or UDP-echo server run an engine; --engine reaches the drop", () => {
  const choice = (argv: string[]) => engineChoiceOf(parseCommandLine(argv));
  assertEquals(choice(["client", "--probe", "--proto", "udp"]), "auto");
  assertEquals(choice(["client", "--probe", "--proto", "udp", "--engine", "deno"]), "deno");
  assertEquals(
    choice(["client", "--throughput", "--proto", "udp", "--engine", "native"]),
    "native",
  );
  assertEquals(choice(["client", "--throughput", "--proto", "udp", "--iperf3"]), undefined);
  assertEquals(choice(["client", "--throughput", "--proto", "udp", "--iperf3", "-R"]), undefined);
  assertEquals(choice(["client", "--throughput", "--iperf3"]), undefined);
  // With --iperf3 too, a TCP client that receives raises its receive low-water mark.
  assertEquals(choice(["client", "--throughput", "--iperf3", "-R"]), "auto");
  assertEquals(choice(["compare"]), "auto");
  assertEquals(choice(["compare", "--loss", "1%"]), undefined); // re-runs itself in the lab
  assertEquals(choice(["compare", "--loss", "1%", "--lab-inside"]), "auto"); // that run probes
  assertEquals(choice(["client", "--probe"]), undefined); // TCP: Deno's sockets
  // A TCP ping-pong runs in the Worker through libc, unless from --source (node:net).
  assertEquals(choice(["client", "--probe", "--ping-pong"]), "auto");
  assertEquals(choice(["client", "--probe", "--ping-pong", "--engine", "deno"]), "deno");
  assertEquals(choice(["client", "--probe", "--outstanding", "1", "--rate", "0"]), "auto");
  assertEquals(choice(["client", "--probe", "--ping-pong", "--source-port", "4000"]), undefined);
  assertEquals(choice(["client", "--probe", "--outstanding", "1", "--rate", "10"]), undefined);
  assertEquals(choice(["client", "--throughput"]), undefined);
  // A TCP client that receives raises its receive low-water mark through libc.
  assertEquals(choice(["client", "--throughput", "-R"]), "auto");
  assertEquals(choice(["client", "--throughput", "--bidir", "--engine", "deno"]), "deno");
  assertEquals(choice(["client", "--proto", "udp", "127.0.0.1"]), undefined);
  // A UDP echo is served by the native echo Worker; tests come over TCP.
  assertEquals(choice(["server", "--proto", "udp"]), "auto");
  assertEquals(choice(["server", "--proto", "udp", "--mode", "discard"]), undefined);
  assertEquals(choice(["server"]), "auto"); // its throughput tests' UDP ports
  assertEquals(choice(["server", "--engine", "deno"]), "deno");
  assertEquals(choice(["server", "--mode", "chat"]), undefined);
  assertEquals(choice(["client", "-u", "127.0.0.1", "--message", "hi"]), "auto");
  assertEquals(
    choice(["client", "-u", "127.0.0.1", "--message", "hi", "--engine", "deno"]),
    "deno",
  );
  assertEquals(choice(["client", "127.0.0.1", "--message", "hi"]), undefined); // TCP
  assertEquals(choice(["scan", "-u", "127.0.0.1", "53"]), "auto");
  assertEquals(choice(["scan", "-u", "127.0.0.1", "53", "--engine", "deno"]), "deno");
  assertEquals(choice(["scan", "127.0.0.1", "22"]), undefined); // TCP: Deno's connect
  for (
    const role of [
      "probe",
      "message",
      "throughput",
      "compare",
      "compare-lab",
      "server",
      "server-tls",
      "scan",
    ] as const
  ) {
    assertEquals(PRIVILEGES[role].withNativeEngine, ["ffi"], role);
  }
});
