// The audit log: one line per request (accepted, refused, finished) appended to <stateDirectory>/agent.log. Best
// effort: a sandbox that cannot write it (the idle timer) must not fail the request. Rotated once at 4 MiB.
import { renameSync, statSync } from 'node:fs';
import { appendToFile, ensureDirectory } from '../src/util/safe-fs.js';
import { dirname } from 'node:path';

const MAX_BYTES = 4 * 1024 * 1024;

export class AuditLog {
  readonly path: string;
  private readonly prefix: string;

  constructor(path: string, env: NodeJS.ProcessEnv = process.env) {
    this.path = path;
    const from = env['SSH_CLIENT']?.split(' ')[0];
    this.prefix = `hozo-agent[${process.pid}]${from !== undefined && /^[0-9A-Fa-f:.]+$/.test(from) ? ` from ${from}` : ''}`;
  }

  write(message: string): void {
    const line = `${new Date().toISOString()} ${this.prefix}: ${message.replace(/[\r\n]+/g, ' ')}\n`;
    try {
      // Neither may hang: no recursive mkdir into /proc, no blocking open of a FIFO.
      ensureDirectory(dirname(this.path), 0o750);
      try {
        if (statSync(this.path).size > MAX_BYTES) renameSync(this.path, `${this.path}.1`);
      } catch {
        // not there yet
      }
      appendToFile(this.path, line, 0o640);
    } catch {
      // unwritable: the refusal still reaches the client on stderr
    }
  }
}
