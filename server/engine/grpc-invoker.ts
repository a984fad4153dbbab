import * as grpc from "@grpc/grpc-js";
import { outcomeOfGrpcStatus, type BranchOutcome } from "./outcome.js";

export interface GrpcInvoker {
  call(tls: boolean, authority: string, path: string, payload: Uint8Array, headers: Record<string, string>, timeoutMs: number): Promise<BranchOutcome>;
  close(): void;
}

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.max_send_message_length": -1,
  "grpc.max_receive_message_length": 4 * 1024 * 1024,
  // A branch service that comes back should be reached at the next retry, not minutes later.
  "grpc.initial_reconnect_backoff_ms": 200,
  "grpc.max_reconnect_backoff_ms": 2000,
  "grpc.keepalive_time_ms": 30_000,
};

const toBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const ignoreResponse = () => undefined;

/**
 * Unary calls whose request message is the payload bytes as given, so any gRPC service can be a
 * branch without the coordinator knowing its types. One channel (HTTP/2 connection) per authority.
 */
export function createGrpcInvoker(tlsFiles?: { ca?: Buffer; cert?: Buffer; key?: Buffer }): GrpcInvoker {
  const clients = new Map<string, grpc.Client>();
  const clientFor = (tls: boolean, authority: string) => {
    const key = `${tls ? "s" : "p"}|${authority}`;
    let client = clients.get(key);
    if (!client) {
      const credentials = tls ? grpc.credentials.createSsl(tlsFiles?.ca ?? null, tlsFiles?.key ?? null, tlsFiles?.cert ?? null) : grpc.credentials.createInsecure();
      client = new grpc.Client(authority, credentials, CHANNEL_OPTIONS);
      clients.set(key, client);
    }
    return client;
  };

  return {
    call(tls, authority, path, payload, headers, timeoutMs) {
      const metadata = new grpc.Metadata();
      for (const [name, value] of Object.entries(headers)) metadata.set(name, value);
      return new Promise((resolve) => {
        clientFor(tls, authority).makeUnaryRequest(
          path,
          toBuffer,
          ignoreResponse,
          payload,
          metadata,
          { deadline: Date.now() + timeoutMs },
          (error) => resolve(error ? outcomeOfGrpcStatus(error.code, error.details) : { kind: "success" }),
        );
      });
    },
    close() {
      for (const client of clients.values()) client.close();
      clients.clear();
    },
  };
}
