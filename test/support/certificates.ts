import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A certificate and key made by openssl at test time (never committed), as files and PEM. */
export interface CertFiles {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

/** Throwaway certificate authorities and leaves in a temp dir. */
export class TestPki {
  private constructor(readonly dir: string) {}
  #n = 0;

  static async create(): Promise<TestPki> {
    return new TestPki(await mkdtemp(join(tmpdir(), "accord-pki-")));
  }

  async #load(base: string): Promise<CertFiles> {
    const certFile = `${base}.crt`;
    const keyFile = `${base}.key`;
    return { certFile, keyFile, cert: await readFile(certFile), key: await readFile(keyFile) };
  }

  async ca(name: string): Promise<CertFiles> {
    const base = join(this.dir, `${name}-${this.#n++}`);
    await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${base}.key`, "-out", `${base}.crt`, "-days", "2", "-subj", `/CN=${name}`]);
    return this.#load(base);
  }

  /** A leaf signed by `ca`. `days: 0` makes one that expires within the second. */
  async leaf(ca: CertFiles, options: { cn: string; san?: string[]; days?: number; serverAuth?: boolean }): Promise<CertFiles> {
    const base = join(this.dir, `${options.cn.replace(/\W/g, "_")}-${this.#n++}`);
    await run("openssl", ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${base}.key`, "-out", `${base}.csr`, "-subj", `/CN=${options.cn}`]);
    const ext = [`subjectAltName=${(options.san ?? [`DNS:${options.cn}`]).join(",")}`, `extendedKeyUsage=${options.serverAuth ? "serverAuth,clientAuth" : "clientAuth"}`];
    await writeFile(`${base}.ext`, ext.join("\n") + "\n");
    await run("openssl", ["x509", "-req", "-in", `${base}.csr`, "-CA", ca.certFile, "-CAkey", ca.keyFile, "-CAcreateserial", "-out", `${base}.crt`, "-days", String(options.days ?? 2), "-extfile", `${base}.ext`]);
    return this.#load(base);
  }

  async cleanup(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
