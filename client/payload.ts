/** A branch payload: bytes as they are, a string as UTF-8, anything else as JSON. */
export type PayloadInput = Uint8Array | string | object | undefined;

export function encodePayload(payload: PayloadInput): Uint8Array {
  if (payload === undefined) return new Uint8Array();
  if (payload instanceof Uint8Array) return payload;
  return new TextEncoder().encode(typeof payload === "string" ? payload : JSON.stringify(payload));
}
