// A minimal QMP client (QEMU Machine Protocol over the VM's unix socket): one command per connection, bounded in time.
import { connect } from 'node:net';
import { LabError } from '../proc.js';

export type QmpStatus = 'running' | 'paused' | 'suspended' | 'shutdown' | 'prelaunch' | string;

/** Sends `execute` (after the capabilities handshake) and resolves with its `return` value. */
export function qmp(socketPath: string, execute: string, args?: Record<string, unknown>, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    let buf = '';
    let stage = 0; // 0: greeting, 1: capabilities sent, 2: command sent
    const timer = setTimeout(() => finish(new LabError(`QMP ${execute} on ${socketPath}: no answer in ${timeoutMs} ms`)), timeoutMs);
    const finish = (err: Error | undefined, value?: unknown) => {
      clearTimeout(timer);
      sock.removeAllListeners();
      sock.on('error', () => undefined);
      sock.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const send = (o: unknown) => sock.write(JSON.stringify(o) + '\n');
    sock.on('error', (e) => finish(new LabError(`QMP ${execute} on ${socketPath}: ${e.message}`)));
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === '') continue;
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          return finish(new LabError(`QMP: unparsable reply ${line.slice(0, 200)}`));
        }
        if ('event' in msg) continue;
        if (stage === 0 && 'QMP' in msg) {
          stage = 1;
          send({ execute: 'qmp_capabilities' });
        } else if (stage === 1 && 'return' in msg) {
          stage = 2;
          send(args === undefined ? { execute } : { execute, arguments: args });
        } else if ('error' in msg) {
          return finish(new LabError(`QMP ${execute}: ${JSON.stringify(msg['error'])}`));
        } else if (stage === 2 && 'return' in msg) {
          return finish(undefined, msg['return']);
        }
      }
    });
  });
}

export async function qmpStatus(socketPath: string): Promise<QmpStatus> {
  const r = (await qmp(socketPath, 'query-status')) as { status?: string };
  return r.status ?? 'unknown';
}
