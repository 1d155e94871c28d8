/**
 * Typed errors and the one table that maps them to exit codes and messages.
 *
 * Every failure netkit reports goes through {@linkcode NetkitError}; `main.ts`
 * formats it once, as `error: <message>` on stderr, and exits with the code
 * from {@linkcode EXIT_CODES}. Raw errors from Deno are translated by
 * {@linkcode fromSystemError}, so no stack trace ever reaches a user.
 *
 * @example
 * ```ts
 * import { fromSystemError, NetkitError } from "./errors.ts";
 *
 * try {
 *   await Deno.connect({ hostname: "127.0.0.1", port: 1 });
 * } catch (err) {
 *   const e = fromSystemError(err, "connect to", "tcp 127.0.0.1:1");
 *   console.error(`error: ${e.message}`); // error: Connection refused by tcp 127.0.0.1:1 ...
 * }
 * ```
 *
 * @module
 */

/** What went wrong, in the terms a user acts on. */
export type ErrorKind =
  | "failure"
  | "usage"
  | "refused"
  | "not_found"
  | "timeout"
  | "addr_in_use"
  | "permission"
  | "tls"
  | "network";

/** The documented exit code and meaning of each error kind. */
export const EXIT_CODES: Readonly<Record<ErrorKind, { code: number; meaning: string }>> = {
  failure: {
    code: 1,
    meaning: "the run finished but something was missing (a reply, a connection)",
  },
  usage: { code: 2, meaning: "usage error: unknown flag, missing or bad value" },
  refused: { code: 3, meaning: "connection refused" },
  not_found: { code: 4, meaning: "host or socket path not found" },
  timeout: { code: 5, meaning: "timed out" },
  addr_in_use: { code: 6, meaning: "address already in use" },
  permission: { code: 7, meaning: "permission denied" },
  tls: { code: 8, meaning: "TLS handshake or certificate failure" },
  network: { code: 9, meaning: "other network error (reset, unreachable, unavailable address)" },
};

/** An error netkit reports to the user: one line and an exit code. */
export class NetkitError extends Error {
  /** What kind of failure this is; selects the exit code. */
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NetkitError";
    this.kind = kind;
  }

  /** The process exit code for this error. */
  get exitCode(): number {
    return EXIT_CODES[this.kind].code;
  }
}

/**
 * A run that failed part-way: the error says why, `partial` is what the run
 * measured until then, for the report printed before the error line.
 */
export class PartialRunError<T> extends NetkitError {
  /** What the run measured before it failed. */
  readonly partial: T;

  constructor(error: NetkitError, partial: T) {
    super(error.kind, error.message, { cause: error });
    this.name = "PartialRunError";
    this.partial = partial;
  }
}

/** A usage error: exit code 2 and a hint to `--help`. */
export function usageError(message: string, command?: string): NetkitError {
  const help = command ? `netkit ${command} --help` : "netkit --help";
  return new NetkitError("usage", `${message} (see '${help}')`);
}

/**
 * Translate an error thrown by a Deno API, or by one of Deno's `node:` modules
 * (which carry a `code` such as `ECONNREFUSED` instead), into a {@linkcode NetkitError}.
 *
 * @param err What was thrown.
 * @param action What netkit was doing, e.g. `"connect to"` or `"listen on"`.
 * @param target The address involved, as printed to users (`formatEndpoint`'s form:
 *   a Unix socket's starts with `unix `).
 */
export function fromSystemError(err: unknown, action: string, target: string): NetkitError {
  if (err instanceof NetkitError) return err;
  const detail = systemDetail(err);
  const options = { cause: err };
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Deno.errors.ConnectionRefused || code === "ECONNREFUSED") {
    return new NetkitError(
      "refused",
      `Connection refused by ${target}: is a server listening there?`,
      options,
    );
  }
  // A Unix socket has a path, not a port: its hints never mention ports.
  const unix = target.startsWith("unix ");
  if ((err instanceof Deno.errors.AddrInUse || code === "EADDRINUSE") && unix) {
    return new NetkitError(
      "addr_in_use",
      `Cannot ${action} ${target}: the path is taken (by a live server's socket, or a file that is not a socket); stop that server or choose another --path`,
      options,
    );
  }
  if (err instanceof Deno.errors.AddrInUse || code === "EADDRINUSE") {
    return new NetkitError(
      "addr_in_use",
      `Cannot ${action} ${target}: address already in use; pick another port or stop the other program`,
      options,
    );
  }
  if (
    err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable ||
    code === "EACCES"
  ) {
    return new NetkitError(
      "permission",
      `Cannot ${action} ${target}: permission denied (${detail}); ${
        unix
          ? "check the permissions of the socket file and of its directory"
          : "ports below 1024 need privileges"
      }`,
      options,
    );
  }
  if (err instanceof Deno.errors.TimedOut || code === "ETIMEDOUT") {
    return new NetkitError("timeout", `Timed out trying to ${action} ${target}`, options);
  }
  if (err instanceof Deno.errors.NotFound) {
    return new NetkitError(
      "not_found",
      `Cannot ${action} ${target}: not found (${detail})`,
      options,
    );
  }
  if (
    code === "ENOTFOUND" ||
    /lookup address|Name or service not known|nodename nor servname|No address/i.test(detail)
  ) {
    return new NetkitError(
      "not_found",
      `Cannot ${action} ${target}: host name not found; check the spelling or use an IP address`,
      options,
    );
  }
  if (err instanceof Deno.errors.InvalidData && /tls|certificate|handshake/i.test(detail)) {
    return new NetkitError("tls", `TLS failure with ${target}: ${detail}`, options);
  }
  return new NetkitError("network", `Cannot ${action} ${target}: ${detail}`, options);
}

/**
 * A stream connection the server closed (or reset) before sending one byte,
 * as a server does with a connection a limit turned away.
 */
export function closedWithoutReply(target: string): NetkitError {
  return new NetkitError(
    "refused",
    `${target}: the server closed the connection without a reply (a limit such as --max-conns, --allow/--deny?)`,
  );
}

/** An error's message without Deno's " (os error N)" tail and what follows it. */
export function systemDetail(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/ \(os error \d+\).*$/, "");
}

/** Format any error as the single line printed on stderr. */
export function formatError(err: unknown): string {
  if (err instanceof NetkitError) return `error: ${err.message}`;
  const message = err instanceof Error ? err.message : String(err);
  return `error: Internal error: ${message}; please report it`;
}

/** The exit code for any error. */
export function exitCodeOf(err: unknown): number {
  return err instanceof NetkitError ? err.exitCode : EXIT_CODES.failure.code;
}
