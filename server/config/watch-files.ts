import { unwatchFile, watchFile } from "node:fs";

export interface WatchFilesOptions {
  /** How often each file is stat'ed. */
  intervalMs?: number;
  /** Changes closer together than this are reported once, after the last of them. */
  debounceMs?: number;
}

/**
 * Calls `onChange` when any of `files` changes, is replaced, appears or disappears; returns a
 * function that stops watching. Polling stat rather than fs.watch: editors, atomic writers and
 * Kubernetes (ConfigMaps and Secrets swap a symlink) replace a file by renaming another over it,
 * which ends an inotify watch on the old inode, while a stat of the path sees the new file. The
 * debounce lets a writer that truncates then writes finish before the file is read.
 */
export function watchFiles(files: readonly string[], onChange: () => void, options: WatchFilesOptions = {}): () => void {
  const { intervalMs = 1000, debounceMs = 200 } = options;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!stopped) onChange();
    }, debounceMs);
  };
  for (const file of files) watchFile(file, { interval: intervalMs, persistent: false }, changed);
  return () => {
    stopped = true;
    clearTimeout(timer);
    for (const file of files) unwatchFile(file, changed);
  };
}
