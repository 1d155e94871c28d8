import { assertEquals } from "@std/assert";
import { parsePortList } from "./ports.ts";

Deno.test("parsePortList reads ports and ranges, each once, in the order given", () => {
  assertEquals(parsePortList("22"), [22]);
  assertEquals(parsePortList("443,22,80-82,81,22"), [443, 22, 80, 81, 82]);
  assertEquals(parsePortList("65535"), [65535]);
  assertEquals((parsePortList("1-65535") as number[]).length, 65535);
});

Deno.test("parsePortList names the bad item", () => {
  const cases: [string, RegExp][] = [
    ["", /empty item/],
    ["22,,80", /empty item/],
    ["0", /'0' is not a port/],
    ["65536", /'65536' is not a port/],
    ["80-20", /runs backwards: write 20-80/],
    ["http", /'http' is not a port/],
    ["1-", /'1-' is not a port/],
    ["-5", /'-5' is not a port/],
    ["1-2-3", /'1-2-3' is not a port/],
  ];
  for (const [text, message] of cases) {
    const result = parsePortList(text);
    assertEquals(typeof result, "string", text);
    assertEquals(message.test(result as string), true, `${text}: ${result}`);
  }
});
