/**
 * Runs async tasks one at a time, in order. The embedded store has one connection and SQLite one
 * writer, so writes are serialized here instead of failing with SQLITE_BUSY.
 */
export function createSerialQueue() {
  let tail: Promise<unknown> = Promise.resolve();
  return function run<T>(task: () => Promise<T>): Promise<T> {
    const result = tail.then(task, task);
    tail = result.catch(() => undefined);
    return result;
  };
}
