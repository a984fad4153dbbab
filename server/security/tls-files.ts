import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import type { SecurityConfig } from "../config.js";
import { watchFiles } from "../config/watch-files.js";

export interface ServerTlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

export function loadServerTls(security: SecurityConfig): ServerTlsMaterial | undefined {
  if (!security.tlsCertFile) return undefined;
  return {
    cert: readFileSync(security.tlsCertFile),
    key: readFileSync(security.tlsKeyFile),
    ca: security.tlsCaFile ? readFileSync(security.tlsCaFile) : undefined,
  };
}

/**
 * Calls `apply` with freshly read certificate files when any of them changes (polled every
 * second, which also catches the rename that atomic writers and Kubernetes secrets use), so a
 * rotation needs no restart. A half-written pair is skipped and retried at the next change.
 */
export function watchServerTls(security: SecurityConfig, apply: (material: ServerTlsMaterial) => void, logger: Logger): () => void {
  const files = [security.tlsCertFile, security.tlsKeyFile, security.tlsCaFile].filter(Boolean);
  return watchFiles(files, () => {
    try {
      const material = loadServerTls(security);
      if (material) apply(material);
      logger.info({ files }, "TLS certificates reloaded");
    } catch (error) {
      logger.error({ err: error, files }, "TLS certificate reload failed; keeping the current certificates");
    }
  });
}
