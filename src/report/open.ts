/**
 * Opening a file with the platform's default application (`xdg-open` on Linux and BSDs, `open` on
 * macOS, `start` on Windows), for `grokpipe report --open`. Never throws: a missing opener is
 * reported, not fatal.
 */
import { spawn } from 'node:child_process';

/** The opener command line (without the file) for a platform. */
export function openerCommand(platform: NodeJS.Platform = process.platform): string[] {
  if (platform === 'darwin') return ['open'];
  if (platform === 'win32') return ['cmd', '/c', 'start', '""'];
  return ['xdg-open'];
}

/**
 * Starts `command` (default: `openerCommand()`) on `file`, detached, and returns without waiting
 * for it to finish.
 * @returns `null` when it started, else why it could not (e.g. `xdg-open not found`).
 */
export function openFile(file: string, command: readonly string[] = openerCommand()): Promise<string | null> {
  return new Promise((resolve) => {
    const [cmd, ...args] = command;
    let child;
    try {
      child = spawn(cmd, [...args, file], { detached: true, stdio: 'ignore' });
    } catch (err) {
      resolve(`${cmd}: ${(err as Error).message}`);
      return;
    }
    child.once('error', (err: NodeJS.ErrnoException) =>
      resolve(err.code === 'ENOENT' ? `${cmd} not found` : `${cmd}: ${err.message}`),
    );
    child.once('spawn', () => {
      child.unref();
      resolve(null);
    });
  });
}
