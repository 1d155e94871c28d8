/**
 * Throwaway TLS material for tests, made with `openssl` in a temporary
 * directory: a CA, a leaf certificate it signed for 127.0.0.1, ::1 and
 * localhost (an end-entity certificate: `CA:FALSE`, as rustls requires), the
 * leaf's key, and a second key that belongs to no certificate. Disposing it
 * removes the directory.
 *
 * @example
 * ```ts
 * import { makeTestCerts } from "./certs.ts";
 *
 * await using certs = await makeTestCerts();
 * console.log(certs.caCert, certs.leafCert, certs.leafKey);
 * ```
 *
 * @module
 */

/** Paths of the generated PEM files. */
export interface TestCerts extends AsyncDisposable {
  /** The temporary directory holding every file. */
  dir: string;
  /** The CA's certificate (trust anchor for `--ca`). */
  caCert: string;
  /** The leaf certificate, signed by the CA, for 127.0.0.1, ::1 and localhost. */
  leafCert: string;
  /** The leaf's private key. */
  leafKey: string;
  /** A private key that matches no certificate here. */
  otherKey: string;
}

/** A server's flags to serve TLS with the leaf certificate and key of `certs`. */
export function tlsServerFlags(certs: TestCerts): string[] {
  return ["--tls", "--cert", certs.leafCert, "--key", certs.leafKey];
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(
      `openssl ${args.join(" ")} failed (${code}): ${new TextDecoder().decode(stderr)}`,
    );
  }
}

/** Generate a CA and a leaf certificate for loopback in a fresh temporary directory. */
export async function makeTestCerts(): Promise<TestCerts> {
  const dir = await Deno.makeTempDir({ prefix: "netkit-certs-" });
  const remove = () => Deno.remove(dir, { recursive: true }).catch(() => {});
  try {
    const ecKey = (out: string) =>
      openssl(dir, [
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        out,
      ]);
    await Promise.all([ecKey("ca.key"), ecKey("leaf.key"), ecKey("other.key")]);
    await Deno.writeTextFile(
      `${dir}/leaf.ext`,
      [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage=serverAuth",
        "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost",
        "",
      ].join("\n"),
    );
    await openssl(dir, [
      "req",
      "-x509",
      "-new",
      "-key",
      "ca.key",
      "-sha256",
      "-days",
      "2",
      "-subj",
      "/CN=netkit test CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-out",
      "ca.pem",
    ]);
    await openssl(dir, [
      "req",
      "-new",
      "-key",
      "leaf.key",
      "-subj",
      "/CN=localhost",
      "-out",
      "leaf.csr",
    ]);
    await openssl(dir, [
      "x509",
      "-req",
      "-in",
      "leaf.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-sha256",
      "-extfile",
      "leaf.ext",
      "-out",
      "leaf.pem",
    ]);
  } catch (err) {
    await remove();
    throw err;
  }
  return {
    dir,
    caCert: `${dir}/ca.pem`,
    leafCert: `${dir}/leaf.pem`,
    leafKey: `${dir}/leaf.key`,
    otherKey: `${dir}/other.key`,
    [Symbol.asyncDispose]: remove,
  };
}
