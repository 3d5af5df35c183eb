import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { HozoError } from '../../src/errors.js';
import { magicPacket, redact, sendMagicPacket } from '../../src/wake/wake.js';

describe('magic packets (real UDP on loopback)', () => {
  it('arrive at a listener: 6 × 0xff, then the MAC 16 times, as many packets as asked', async () => {
    const sock = createSocket('udp4');
    const got: Buffer[] = [];
    sock.on('message', (m) => got.push(m));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const port = sock.address().port;
    try {
      await sendMagicPacket('52:54:00:7a:0b:01', '127.0.0.1', port, 3);
      for (let i = 0; i < 50 && got.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    } finally {
      sock.close();
    }
    expect(got).toHaveLength(3);
    const p = got[0]!;
    expect(p.length).toBe(102);
    expect(p.subarray(0, 6).equals(Buffer.alloc(6, 0xff))).toBe(true);
    for (let i = 1; i <= 16; i++) expect(p.subarray(i * 6, i * 6 + 6).toString('hex')).toBe('5254007a0b01');
  });

  it.each(['52:54:00:7a:0b', '52:54:00:7a:0b:zz', '5254007a0b01x', '', '52-54:00:7a:0b:01'])('rejects the malformed MAC %j before sending', async (mac) => {
    await expect(magicPacket(mac)).rejects.toThrow(HozoError);
    await expect(sendMagicPacket(mac, '127.0.0.1', 9)).rejects.toThrow(/malformed MAC/);
  });

  // The limited broadcast's refusal is the config check's wakeAddressProblem (tests/unit/config-read.test.ts), which
  // sendMagicPacket applies too. Its refusal in the sender is shown with 0.0.0.0, which on Linux would reach only this
  // machine if the check ever went missing (never the limited broadcast itself: a regression would send it).
  it('refuses an address the config refuses, before any packet leaves', async () => {
    await expect(sendMagicPacket('52:54:00:7a:0b:01', '0.0.0.0', 9)).rejects.toThrow(
      /refusing to send a magic packet to 0\.0\.0\.0: 0\.0\.0\.0 is not an address/,
    );
  });

  it('never logs URL paths or queries (tokens)', () => {
    expect(redact('https://ha.example.org/api/webhook/SECRET123?token=x')).toBe('https://ha.example.org/…');
  });
});
