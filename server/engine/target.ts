/** A parsed branch target URL (docs/architecture.md, "The branch contract"). */
export type BranchTarget =
  | { kind: "http"; url: URL; hostKey: string }
  | { kind: "grpc"; tls: boolean; authority: string; path: string; hostKey: string };

export class InvalidTargetError extends Error {
  override name = "InvalidTargetError";
}

const GRPC_PATH = /^\/[A-Za-z_][\w.]*\/[A-Za-z_]\w*$/;

/**
 * Parses `http(s)://host:port/path` or `grpc(s)://host:port/pkg.Service/Method`; throws
 * InvalidTargetError saying what is wrong, so the API can name the field.
 */
export function parseTarget(raw: string): BranchTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidTargetError("is not a URL (expected http(s)://host:port/path or grpc(s)://host:port/pkg.Service/Method)");
  }
  if (!["http:", "https:", "grpc:", "grpcs:"].includes(url.protocol)) {
    throw new InvalidTargetError(`has unsupported scheme "${url.protocol.replace(/:$/, "")}" (use http, https, grpc or grpcs)`);
  }
  if (url.username || url.password) throw new InvalidTargetError("must not carry credentials");
  if (!url.hostname) throw new InvalidTargetError("has no host");
  const hostKey = `${url.protocol}//${url.host}`;
  switch (url.protocol) {
    case "http:":
    case "https:":
      return { kind: "http", url, hostKey };
    case "grpc:":
    case "grpcs:": {
      if (!GRPC_PATH.test(url.pathname) || url.search || url.hash) {
        throw new InvalidTargetError("must name a method as grpc(s)://host:port/pkg.Service/Method");
      }
      const port = url.port || (url.protocol === "grpcs:" ? "443" : "80");
      return { kind: "grpc", tls: url.protocol === "grpcs:", authority: `${url.hostname}:${port}`, path: url.pathname, hostKey };
    }
    default:
      throw new InvalidTargetError(`has unsupported scheme "${url.protocol.replace(/:$/, "")}" (use http, https, grpc or grpcs)`);
  }
}
