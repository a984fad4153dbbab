import { Duplex } from "node:stream";
import type { Socket } from "node:net";

/**
 * A stream over `socket` that first yields `head` (bytes already read from it). Node's HTTP/2
 * reads straight from the socket's native handle, so bytes put back with unshift() would be lost;
 * handing it a plain Duplex makes it read through JavaScript instead.
 */
export function replayDuplex(socket: Socket, head: Buffer): Duplex {
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, encoding, callback) {
      socket.write(chunk, encoding, callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(error, callback) {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  duplex.push(head);
  socket.on("data", (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on("end", () => duplex.push(null));
  socket.on("close", () => duplex.destroy());
  return duplex;
}
