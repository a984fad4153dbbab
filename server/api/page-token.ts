import type { ListCursor } from "../store/index.js";
import { invalidArgument } from "./errors.js";

// Opaque to clients: base64url JSON of the last row's sort key.

export function encodePageToken(cursor: ListCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.gid])).toString("base64url");
}

export function decodePageToken(token: string): ListCursor | undefined {
  if (token === "") return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (Array.isArray(value) && value.length === 2 && Number.isSafeInteger(value[0]) && typeof value[1] === "string") {
      return { createdAt: value[0] as number, gid: value[1] };
    }
  } catch {
    // reported below as a bad token, naming the field
  }
  throw invalidArgument("page_token", "is not a token returned by ListTransactions");
}
