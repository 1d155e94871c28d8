/**
 * Read the TLS files a command names (`server --cert/--key`, `client --ca`,
 * `relay --cert/--key/--ca`)
 * once, at start, before `main.ts` drops the `read` permission: the text goes
 * into the config, and the server and client use it from there.
 *
 * @example
 * ```ts
 * import { readTlsFiles } from "./tls_files.ts";
 * import { parseCommandLine } from "./cli/parse.ts";
 *
 * const config = await readTlsFiles(
 *   parseCommandLine(["server", "--tls", "--cert", "cert.pem", "--key", "key.pem"]),
 * );
 * // config.tls.pem holds the certificate chain and the key
 * ```
 *
 * @module
 */

import type { Config } from "./config.ts";
import { NetkitError, systemDetail, usageError } from "./errors.ts";

/** A server's certificate chain and private key, as PEM text. */
export interface TlsMaterial {
  cert: string;
  key: string;
}

async function readPem(flag: string, path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    throw new NetkitError("tls", `Cannot read ${flag} '${path}': ${systemDetail(err)}`);
  }
}

/** Read and sanity-check `--cert` and `--key`. */
export async function loadServerTls(
  files: { certFile: string; keyFile: string },
): Promise<TlsMaterial> {
  const material = {
    cert: await readPem("--cert", files.certFile),
    key: await readPem("--key", files.keyFile),
  };
  if (!material.cert.includes("-----BEGIN CERTIFICATE-----")) {
    throw new NetkitError("tls", `--cert '${files.certFile}' holds no PEM certificate`);
  }
  if (!/-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(material.key)) {
    throw new NetkitError("tls", `--key '${files.keyFile}' holds no PEM private key`);
  }
  return material;
}

/**
 * Read `--ca`: PEM text with at least one certificate. A file that cannot be
 * read or holds no PEM certificate is a usage error naming the file (exit 2).
 */
export async function loadCaFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw usageError(`Cannot read --ca '${path}': ${systemDetail(err)}`, "client");
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    throw usageError(
      `--ca '${path}' holds no PEM certificate: give the CA's certificate, a PEM file with a '-----BEGIN CERTIFICATE-----' block`,
      "client",
    );
  }
  return text;
}

/** `config` with every TLS file it names read into it (`tls.pem`, `tls.caPem`). */
export async function readTlsFiles(config: Config): Promise<Config> {
  if (config.command === "server" && config.tls && config.tls.pem === undefined) {
    return { ...config, tls: { ...config.tls, pem: await loadServerTls(config.tls) } };
  }
  if (
    config.command === "client" && (config.action === "pipe" || config.action === "message") &&
    config.tls?.caFile !== undefined && config.tls.caPem === undefined
  ) {
    return { ...config, tls: { ...config.tls, caPem: await loadCaFile(config.tls.caFile) } };
  }
  if (config.command === "relay") {
    const tls = config.tls && config.tls.pem === undefined
      ? { ...config.tls, pem: await loadServerTls(config.tls) }
      : config.tls;
    const targetTls = config.targetTls?.caFile !== undefined && config.targetTls.caPem === undefined
      ? { ...config.targetTls, caPem: await loadCaFile(config.targetTls.caFile) }
      : config.targetTls;
    return { ...config, tls, targetTls };
  }
  return config;
}
