// Waking the box: a magic packet, a command on an always-on relay at the box's site, an HTTP call (smart plug,
// Home Assistant), or any local command.
import { exec } from '../util/exec.js';
import type { Config, HostConfig, WakeConfig } from '../config/schema.js';
import { HozoError } from '../errors.js';
import { MAC } from '../config/mac.js';
import { macProblem, wakeAddressProblem } from '../config/addresses.js';
import { shownName, shownPath } from '../config/shown.js';
import { findHost } from '../config/lookup.js';
import { SshRunner } from '../transport/ssh.js';

/** A malformed MAC is a usage error. */
export function checkMac(mac: string): void {
  if (!MAC.test(mac)) {
    throw new HozoError('USAGE', `malformed MAC address ${shownName(mac)}`, { hint: 'expected six hex pairs like 52:54:00:7a:0b:01' });
  }
  const problem = macProblem(mac);
  if (problem !== undefined)
    throw new HozoError('USAGE', `refusing to wake ${shownName(mac)}: ${problem}`, { hint: "set wake.mac to the MAC of the box's NIC" });
}

/** wake_on_lan, loaded only when a box is woken (one module less in every run's start-up). */
const wakeOnLan = async () => (await import('wake_on_lan')).default;

/** The magic packet for `mac`: 6 × 0xff then the MAC 16 times. */
export async function magicPacket(mac: string): Promise<Buffer> {
  checkMac(mac);
  return (await wakeOnLan()).createMagicPacket(mac);
}

/** Sends `packets` magic packets (wake_on_lan sends nothing for a single packet to a broadcast address). */
export async function sendMagicPacket(mac: string, address: string, port: number, packets = 3): Promise<void> {
  checkMac(mac);
  // The config's own check, again where the packet leaves (an address given to `hozo wake` or built by code that did
  // not go through the schema): the limited broadcast leaves through whatever interface the route picks.
  const problem = wakeAddressProblem(address);
  if (problem !== undefined) {
    throw new HozoError('USAGE', `refusing to send a magic packet to ${shownPath(address)}: ${problem}`, {
      hint: "set wake.address to the box LAN's broadcast address, e.g. 192.168.1.255",
    });
  }
  const wol = await wakeOnLan();
  return new Promise((resolve, reject) => {
    wol.wake(mac, { address, port, num_packets: Math.max(2, packets), interval: 100 }, (err) => {
      if (err) reject(new HozoError('HOST_UNREACHABLE', `cannot send the magic packet to ${address}:${port}: ${err.message}`, { cause: err }));
      else resolve();
    });
  });
}

export interface WakeResult {
  readonly method: WakeConfig['method'];
  readonly detail: string;
}

/** Performs the host's configured wake method once. */
export async function wakeHost(config: Config, _hostName: string, host: HostConfig, signal?: AbortSignal): Promise<WakeResult> {
  const w = host.wake;
  if (w === undefined || w.method === 'none') return { method: 'none', detail: 'no wake method configured (always on)' };
  switch (w.method) {
    case 'wol':
      await sendMagicPacket(w.mac!, w.address!, w.port, w.packets);
      return { method: 'wol', detail: `${w.packets} magic packets for ${w.mac} to ${w.address}:${w.port}` };
    case 'ssh-relay': {
      const relayName = w.relayHost!;
      const relay = new SshRunner({ name: relayName, host: findHost(config, relayName) });
      const argv = w.command ?? ['wakeonlan', '-i', w.address!, w.mac!];
      try {
        const r = await relay.run(argv, { timeoutMs: 30_000 });
        if (r.exitCode !== 0) {
          throw new HozoError('HOST_UNREACHABLE', `wake relay ${relayName}: "${argv.join(' ')}" failed (exit ${r.exitCode}): ${r.stderr.trim()}`, {
            hint: 'is wakeonlan/etherwake installed on the relay?',
          });
        }
      } finally {
        await relay.close();
      }
      return { method: 'ssh-relay', detail: `ran "${argv.join(' ')}" on ${relayName}` };
    }
    case 'http': {
      const res = await fetch(w.url!, { method: w.httpMethod, signal: signal ?? AbortSignal.timeout(30_000) }).catch((e: unknown) => {
        // fetch's own messages may quote the URL (e.g. one with credentials): never let it through.
        throw new HozoError('HOST_UNREACHABLE', `wake URL ${redact(w.url!)} failed: ${scrubUrls((e as Error).message, w.url!)}`);
      });
      if (!res.ok) throw new HozoError('HOST_UNREACHABLE', `wake URL ${redact(w.url!)} answered HTTP ${res.status}`);
      return { method: 'http', detail: `${w.httpMethod} ${redact(w.url!)} → ${res.status}` };
    }
    case 'command': {
      const [cmd, ...args] = w.command!;
      const r = await exec(cmd!, args, { timeoutMs: 60_000 });
      if (r.exitCode !== 0) {
        throw new HozoError(
          'HOST_UNREACHABLE',
          `wake command "${w.command!.join(' ')}" failed (exit ${r.exitCode ?? r.signal}): ${r.spawnError?.message ?? r.stderr.trim()}`,
        );
      }
      return { method: 'command', detail: `ran "${w.command!.join(' ')}"` };
    }
  }
}

/** `text` with `url` and every other http(s) URL in it reduced to what redact() shows. */
export function scrubUrls(text: string, url: string): string {
  return text
    .split(url)
    .join(redact(url))
    .replace(/\bhttps?:\/\/[^\s"'<>]+/g, (m) => redact(m));
}

/** URLs may carry tokens (Home Assistant webhooks): never log the query or the path's secrets. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.length > 1 ? '/…' : '/'}`;
  } catch {
    return '(url)';
  }
}
