// serve() and idle-check end to end with a scripted Runner (no ZFS here; the real thing is in
// tests/integration/agent.test.ts): every hostile SSH_ORIGINAL_COMMAND is refused with exit 2 and changes nothing,
// and each verb runs exactly the commands it should.
import { PROBE_SECTIONS } from '../../src/zfs/capabilities.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { idleCheck } from '../../agent/lifecycle.js';
import { serve } from '../../agent/serve.js';
import { box, harness, HOSTILE, json, STATUS_SCRUBBING, type Harness, type Reply } from '../helpers/agent-harness.js';

// ---------------------------------------------------------------------------------------------------------------

describe(`serve refuses hostile SSH_ORIGINAL_COMMANDs (${HOSTILE.length}) with exit 2 and no side effects`, () => {
  it('has at least 30 cases', () => expect(HOSTILE.length).toBeGreaterThanOrEqual(30));
  for (const [name, cmd] of HOSTILE) {
    it(name, async () => {
      const h = harness();
      h.state.hold('existing', 600); // some state that must survive untouched
      const before = h.files().filter((f) => !f.endsWith('agent.log'));
      const code = await serve(h.ctx, cmd);
      expect(code).toBe(2);
      expect(h.runner.calls).toEqual([]);
      expect(h.streams).toEqual([]);
      expect(h.detached).toEqual([]);
      expect(h.out.join('')).toBe('');
      const err = h.err.join('');
      expect(err).toMatch(/^hozo-agent: refused: [^\n]+\n$/);
      expect(h.files().filter((f) => !f.endsWith('agent.log'))).toEqual(before); // not even the activity stamp
      expect(h.state.leases().map((l) => l.id)).toEqual(['existing']);
      // Logged, on one line.
      const log = readFileSync(h.ctx.config.logFile, 'utf8');
      expect(log.split('\n').filter(Boolean)).toHaveLength(1);
      expect(log).toMatch(/: refused /);
    });
  }
});

describe('serve: accepted verbs run exactly their commands', () => {
  it('version', async () => {
    const h = harness();
    expect(await serve(h.ctx, 'version')).toBe(0);
    expect(json(h)).toMatchObject({ agent: 'hozo-agent', protocol: 1 });
    expect(h.runner.calls).toEqual([]);
  });

  it('capabilities: runs the probe once and then answers from its store while the fingerprint is unchanged', async () => {
    let fingerprint = '/usr/sbin/zfs 399680 1679577893 15884301\n/usr/sbin/zfs\n';
    const probeOut =
      '@@ commands\n@@ send-usage\nusage:\n\tsend [-RDp] [-[iI] snapshot] <snapshot>\n' +
      PROBE_SECTIONS.filter((n) => n !== 'commands' && n !== 'send-usage')
        .map((n) => `@@ ${n}\n`)
        .join('');
    const h = harness(
      box((cmd) => {
        if (cmd.startsWith('sh -c set --')) return { stdout: fingerprint };
        if (cmd.startsWith('sh -c exec 2>&1')) return { stdout: probeOut };
        return undefined;
      }),
    );
    const kinds = () => h.runner.calls.map((c) => (c.startsWith('sh -c set --') ? 'fingerprint' : c.startsWith('sh -c exec 2>&1') ? 'probe' : c));
    expect(await serve(h.ctx, 'capabilities')).toBe(0);
    expect(h.out.join('')).toBe(probeOut);
    expect(kinds()).toEqual(['fingerprint', 'probe']);
    expect(h.runner.calls[1]).toContain('@@ send-usage'); // PROBE_SCRIPT itself
    expect(h.files()).toContain('state/capabilities/agent.json');

    h.out.length = 0;
    expect(await serve(h.ctx, 'capabilities')).toBe(0);
    expect(h.out.join('')).toBe(probeOut);
    expect(kinds()).toEqual(['fingerprint', 'probe', 'fingerprint']);

    // zfs upgraded: probed again
    fingerprint = fingerprint.replace('399680', '401234');
    h.out.length = 0;
    expect(await serve(h.ctx, 'capabilities')).toBe(0);
    expect(kinds()).toEqual(['fingerprint', 'probe', 'fingerprint', 'fingerprint', 'probe']);
    expect(h.streams).toEqual([]);
  });

  it('capabilities: a probe without usable zfs output is passed on but not stored', async () => {
    const h = harness(
      box((cmd) => {
        if (cmd.startsWith('sh -c set --')) return { stdout: '/usr/sbin/zfs 1 2 3\n' };
        if (cmd.startsWith('sh -c exec 2>&1')) return { stdout: 'The ZFS modules are not loaded.\n' };
        return undefined;
      }),
    );
    expect(await serve(h.ctx, 'capabilities')).toBe(0);
    expect(h.out.join('')).toContain('modules are not loaded');
    expect(h.files()).not.toContain('state/capabilities/agent.json');
  });

  it('list prints zfs get stdout verbatim; falls back without receive_resume_token; missing roots are fine', async () => {
    const listing =
      'backup/kraken\ttype\tfilesystem\t-\nbackup/kraken\tguid\t123\t-\nbackup/kraken\tcreatetxg\t1\t-\nbackup/kraken\tcreation\t1700000000\t-\nbackup/kraken\tuserrefs\t-\t-\n';
    const raw = listing.replace(/\t-\n/g, '\n');
    const h = harness(
      box((cmd) => {
        if (cmd.includes('receive_resume_token')) return { exitCode: 2, stderr: "bad property list: invalid property 'receive_resume_token'\nusage: ..." };
        if (cmd === 'zfs get -H -p -r -o name,property,value type,guid,createtxg,creation,userrefs backup/kraken backup/kraken/gone') {
          return { exitCode: 1, stdout: raw, stderr: "cannot open 'backup/kraken/gone': dataset does not exist\n" };
        }
        return undefined;
      }),
    );
    expect(await serve(h.ctx, 'list backup/kraken backup/kraken/gone')).toBe(0);
    expect(h.out.join('')).toBe(raw);
    expect(h.runner.calls).toEqual([
      'zfs get -H -p -r -o name,property,value type,guid,createtxg,creation,userrefs,receive_resume_token,encryption,encryptionroot,keystatus backup/kraken backup/kraken/gone',
      'zfs get -H -p -r -o name,property,value type,guid,createtxg,creation,userrefs backup/kraken backup/kraken/gone',
    ]);
  });

  it('list without arguments lists the configured roots; a zfs failure is exit 1 with the reason', async () => {
    const h = harness(box((cmd) => (cmd.startsWith('zfs get') ? { exitCode: 1, stderr: 'internal error: out of memory\n' } : undefined)));
    expect(await serve(h.ctx, 'list')).toBe(1);
    expect(h.runner.calls[0]).toMatch(/ backup\/kraken$/);
    expect(h.err.join('')).toMatch(/^hozo-agent: list failed: .*out of memory/);
  });

  it('receive creates missing parents top-down with canmount=off, marks the receive, passes stdin through', async () => {
    let during: string[] = [];
    const h = harness(
      box((cmd) => (cmd.startsWith('zfs create') ? {} : undefined)),
      {},
      0,
      (hh) => {
        during = hh.state.receives().map((r) => r.dataset);
      },
    );
    expect(await serve(h.ctx, 'receive -u -s backup/kraken/host/data/home')).toBe(0);
    // First the capability fingerprint and probe (sh -c …): unanswered here, so no receive -o/-x (zfs-fuse).
    expect(h.runner.calls.filter((c) => c.startsWith('sh -c')).length).toBe(2);
    expect(h.runner.calls.filter((c) => !c.startsWith('sh -c'))).toEqual([
      'zfs list -H -o name backup/kraken/host/data',
      'zfs list -H -o name backup/kraken/host',
      'zfs list -H -o name backup/kraken',
      'zfs create -p -o canmount=off backup/kraken/host',
      'zfs create -p -o canmount=off backup/kraken/host/data',
      'zfs list -H -o name -t snapshot -d 1 backup/kraken/host/data/home',
      // The box's own receive time of what arrived (agent/stamp.ts).
      'zfs get -H -p -r -o name,value guid backup/kraken/host/data/home',
      // A first receive: the new backup must not mount itself at the next import or boot.
      'zfs set canmount=noauto backup/kraken/host/data/home',
    ]);
    expect(JSON.parse(readFileSync(join(h.dir, 'state', 'received.json'), 'utf8'))).toEqual({ '123': 1_800_000_000 });
    expect(h.streams).toEqual([{ chain: [['zfs', 'receive', '-u', '-s', 'backup/kraken/host/data/home']], opts: { stdin: 'inherit', stdout: 'inherit' } }]);
    expect(during).toEqual(['backup/kraken/host/data/home']);
    expect(h.state.receives()).toEqual([]);
  });

  describe('on OpenZFS (receive -o/-x): received properties are overridden and read back', () => {
    const probe = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'zfs', 'openzfs-2.3', 'probe.txt'), 'utf8');
    const safe = [
      'backup/kraken/a\ttype\tfilesystem',
      'backup/kraken/a\tmountpoint\tnone',
      'backup/kraken/a\tcanmount\tnoauto',
      'backup/kraken/a\tsetuid\toff',
      'backup/kraken/a\texec\toff',
      'backup/kraken/a\tdevices\toff',
      'backup/kraken/a\tvolmode\tnone',
      'backup/kraken/a\treservation\t0',
      'backup/kraken/a\trefreservation\t0',
      'backup/kraken/a/vol\ttype\tvolume',
      'backup/kraken/a/vol\tmountpoint\t-',
      'backup/kraken/a/vol\tvolmode\tnone',
      'backup/kraken/a/vol\trefreservation\t0',
    ];
    const GET =
      'zfs get -H -p -r -t filesystem,volume,snapshot -o name,property,value type,mountpoint,canmount,setuid,exec,devices,volmode,reservation,refreservation,guid backup/kraken/a';
    const openzfs = (rows: string[], extra: (cmd: string) => Reply = () => undefined) =>
      box(
        (cmd) =>
          extra(cmd) ??
          (cmd.startsWith('sh -c') && cmd.includes('@@ receive-usage')
            ? { stdout: probe }
            : cmd === GET
              ? { stdout: rows.join('\n') + '\n' }
              : cmd.startsWith('zfs set') || cmd.startsWith('zfs create')
                ? {}
                : undefined),
      );

    it('a filesystem: -o mountpoint=none canmount=noauto setuid/exec/devices off volmode=none, -x reservations; parents made safe too', async () => {
      const h = harness(openzfs(safe, (cmd) => (cmd === 'zfs list -H -o name backup/kraken/a' ? { exitCode: 1, stderr: 'does not exist' } : undefined)));
      expect(await serve(h.ctx, 'receive -u backup/kraken/a')).toBe(0);
      expect(h.streams[0]!.chain).toEqual([
        [
          'zfs',
          'receive',
          '-u',
          '-o',
          'mountpoint=none',
          '-o',
          'canmount=noauto',
          '-o',
          'setuid=off',
          '-o',
          'exec=off',
          '-o',
          'devices=off',
          '-o',
          'volmode=none',
          '-x',
          'reservation',
          '-x',
          'refreservation',
          'backup/kraken/a',
        ],
      ]);
      const calls = h.runner.calls.filter((c) => !c.startsWith('sh -c'));
      expect(calls).toContain(GET);
      // No separate canmount=noauto afterwards: the receive set it.
      expect(calls.filter((c) => c.startsWith('zfs set'))).toEqual([]);
      expect(h.err.join('')).toBe('');
    });

    it('one zfs get after the stream reads the protections back and the snapshots for the receive times; no look-up before it', async () => {
      // A snapshot's own setuid/exec rows (inherited) are not datasets to protect.
      const rows = [
        ...safe,
        'backup/kraken/a@s1\ttype\tsnapshot',
        'backup/kraken/a@s1\tguid\t777',
        'backup/kraken/a@s1\tsetuid\ton',
        'backup/kraken/a/vol@s1\ttype\tsnapshot',
        'backup/kraken/a/vol@s1\tguid\t778',
      ];
      const h = harness(openzfs(rows));
      expect(await serve(h.ctx, 'receive -u backup/kraken/a')).toBe(0);
      const zfs = h.runner.calls.filter((c) => c.startsWith('zfs '));
      expect(zfs).toEqual(['zfs list -H -o name backup/kraken', GET]);
      expect(JSON.parse(readFileSync(join(h.dir, 'state', 'received.json'), 'utf8'))).toEqual({ '777': 1_800_000_000, '778': 1_800_000_000 });
      expect(h.err.join('')).toBe('');
    });

    it('a volume (--volume): only volmode=none can be set, the filesystem properties are excluded', async () => {
      const h = harness(openzfs(safe));
      expect(await serve(h.ctx, 'receive -u --volume backup/kraken/a')).toBe(0);
      expect(h.streams[0]!.chain[0]).toEqual([
        'zfs',
        'receive',
        '-u',
        '-o',
        'volmode=none',
        ...['mountpoint', 'canmount', 'setuid', 'exec', 'devices', 'reservation', 'refreservation'].flatMap((p) => ['-x', p]),
        'backup/kraken/a',
      ]);
    });

    it('anything that did not take effect (zfs receive exits 0 without the delegation) is set again and the receive fails', async () => {
      const rows = [
        ...safe.filter((r) => !/a\t(setuid|mountpoint|canmount)\t/.test(r) && !r.includes('vol\tvolmode')),
        'backup/kraken/a\tsetuid\ton',
        'backup/kraken/a\tmountpoint\t/root/.ssh',
        'backup/kraken/a\tcanmount\ton',
        'backup/kraken/a/vol\tvolmode\tdefault',
      ];
      const h = harness(openzfs(rows));
      expect(await serve(h.ctx, 'receive -u backup/kraken/a')).toBe(1);
      expect(h.runner.calls.filter((c) => c.startsWith('zfs set'))).toEqual([
        'zfs set mountpoint=none canmount=noauto setuid=off backup/kraken/a',
        'zfs set volmode=none backup/kraken/a/vol',
      ]);
      expect(h.err.join('')).toMatch(
        /not protected on this box \(backup\/kraken\/a: mountpoint=\/root\/\.ssh; backup\/kraken\/a: setuid=on; backup\/kraken\/a\/vol: volmode=default\); the properties were set now\. Delegate mountpoint,canmount,setuid,exec,devices,volmode to/,
      );
    });
  });

  it('maxReceives: a receive beyond the cap of running ones is refused (exit 3) and starts nothing', async () => {
    const h = harness(
      box((cmd) => (cmd.startsWith('zfs create') ? {} : undefined)),
      { maxReceives: 1 },
    );
    const unmark = h.state.markReceive('backup/kraken/other');
    try {
      expect(await serve(h.ctx, 'receive -u backup/kraken/x')).toBe(3);
      expect(h.err.join('')).toMatch(/1 receive\(s\) of this controller are running already \(maxReceives 1\)/);
      expect(h.streams).toEqual([]);
    } finally {
      unmark();
    }
    expect(await serve(h.ctx, 'receive -u backup/kraken/x')).toBe(0);
  });

  it('receive never creates anything above a missing root', async () => {
    const h = harness(
      box((cmd) =>
        cmd === 'zfs list -H -o name backup/kraken' || cmd === 'zfs list -H -o name backup'
          ? { exitCode: 1, stderr: "cannot open 'x': dataset does not exist\n" }
          : undefined,
      ),
    );
    expect(await serve(h.ctx, 'receive backup/kraken/x')).toBe(1);
    expect(h.runner.calls.filter((c) => c.startsWith('zfs create'))).toEqual([]);
    expect(h.streams).toEqual([]);
    expect(h.err.join('')).toMatch(/backup root "backup\/kraken" does not exist/);
  });

  it("receive creates a missing root when its parent exists; exit code is zfs receive's", async () => {
    const h = harness(
      box((cmd) =>
        cmd === 'zfs list -H -o name backup/kraken'
          ? { exitCode: 1, stderr: "cannot open 'backup/kraken': dataset does not exist\n" }
          : cmd.startsWith('zfs create')
            ? {}
            : undefined,
      ),
      {},
      1,
    );
    expect(await serve(h.ctx, 'receive backup/kraken/x')).toBe(1);
    expect(h.runner.calls.filter((c) => c.startsWith('zfs create'))).toEqual(['zfs create -p -o canmount=off backup/kraken']);
  });

  it('receive -F passes through when allowRollback is set', async () => {
    const h = harness(box(), { allowRollback: true });
    expect(await serve(h.ctx, 'receive -F backup/kraken/x')).toBe(0);
    expect(h.streams[0]!.chain).toEqual([['zfs', 'receive', '-u', '-F', 'backup/kraken/x']]);
  });

  it('receive --zstd --mbuffer: the box side of a compressed, buffered transfer, as one process chain', async () => {
    const h = harness();
    expect(await serve(h.ctx, 'receive --mbuffer --zstd backup/kraken/x')).toBe(0);
    expect(h.streams[0]!.chain).toEqual([
      ['mbuffer', '-q', '-s', '128k', '-m', '128M'],
      ['zstd', '-q', '-d', '-c'],
      ['zfs', 'receive', '-u', 'backup/kraken/x'],
    ]);
  });

  it('send streams zfs send to stdout, nothing read from stdin', async () => {
    const h = harness();
    expect(await serve(h.ctx, 'send -c -I @a backup/kraken/x@c')).toBe(0);
    expect(h.streams).toEqual([
      { chain: [['zfs', 'send', '-c', '-I', 'backup/kraken/x@a', 'backup/kraken/x@c']], opts: { stdin: 'ignore', stdout: 'inherit' } },
    ]);
    const z = harness();
    expect(await serve(z.ctx, 'send --zstd backup/kraken/x@c')).toBe(0);
    expect(z.streams[0]!.chain).toEqual([
      ['zfs', 'send', 'backup/kraken/x@c'],
      ['zstd', '-q', '-c', '-3', '-T0'],
    ]);
  });

  it('status reports pools, leases, receives and the previous activity', async () => {
    const h = harness(
      box((cmd) =>
        cmd.endsWith(' usb')
          ? { exitCode: 1, stderr: "cannot open 'usb': no such pool\n" }
          : cmd.endsWith(' odd')
            ? { exitCode: 1, stderr: 'internal error: Bad file descriptor\n' }
            : undefined,
      ),
      { pools: ['backup', 'usb', 'odd'] },
    );
    h.state.hold('job1', 300);
    expect(await serve(h.ctx, 'status')).toBe(0);
    const s = json(h);
    expect(s).toMatchObject({
      protocol: 1,
      uptimeSeconds: 100_000,
      receiveRunning: false,
      shutdownPending: false,
      lastActivity: null,
      leases: [{ id: 'job1', created: 1_800_000_000, expires: 1_800_000_300 }],
    });
    expect(s['pools']).toEqual([
      {
        name: 'backup',
        imported: true,
        health: 'ONLINE',
        healthy: true,
        capacityRatio: 0.78,
        size: '1.98G',
        allocated: '1.57G',
        errors: 0,
        dataErrors: 0,
        scan: 'none requested',
        scrubRunning: false,
        scrubPaused: false,
        scrubProgress: null,
        resilverRunning: false,
        lastScrubEnd: null,
        disks: [{ name: '/img/a', power: null }],
      },
      expect.objectContaining({ name: 'usb', imported: false, health: null, healthy: false }),
      expect.objectContaining({ name: 'odd', imported: null, healthy: false, error: expect.stringMatching(/Bad file descriptor/) }),
    ]);
  });

  it('prepare imports an exported pool, retrying until its disk appears', async () => {
    let imports = 0;
    let imported = false;
    const h = harness(
      box((cmd) => {
        if (cmd === 'zpool list -H -o name,health,size,alloc,free,cap backup' && !imported)
          return { exitCode: 1, stderr: "cannot open 'backup': no such pool\n" };
        if (cmd === 'zpool import -d /dev/disk/by-id backup') {
          imports++;
          if (imports < 3) return { exitCode: 1, stderr: "cannot import 'backup': no such pool available\n" };
          imported = true;
          return {};
        }
        return undefined;
      }),
      { prepareTimeoutSeconds: 30, importDirectories: ['/dev/disk/by-id'] },
    );
    expect(await serve(h.ctx, 'prepare')).toBe(0);
    expect(imports).toBe(3);
    expect(json(h)).toMatchObject({
      ready: true,
      pools: [{ name: 'backup', imported: true, health: 'ONLINE', importedNow: true }],
      roots: [{ name: 'backup/kraken', exists: true }],
    });
  });

  it('prepare: not ready (exit 3) when the pool never appears; says why', async () => {
    const h = harness(
      box((cmd) =>
        cmd.startsWith('zpool list')
          ? { exitCode: 1, stderr: "cannot open 'backup': no such pool\n" }
          : cmd.startsWith('zpool import')
            ? { exitCode: 1, stderr: "cannot import 'backup': no such pool available\n" }
            : undefined,
      ),
    );
    expect(await serve(h.ctx, 'prepare')).toBe(3);
    expect(json(h)).toMatchObject({ ready: false, pools: [{ name: 'backup', imported: false, error: "cannot import 'backup': no such pool available" }] });
    expect(h.err.join('')).toMatch(/not ready: pool backup: not imported/);
  });
});

describe('leases, shutdown and the pending marker', () => {
  it('hold/release round trip; expired leases do not block shutdown', async () => {
    const h = harness();
    expect(await serve(h.ctx, 'hold ctl-a 60')).toBe(0);
    expect(json(h)).toMatchObject({ held: true, lease: { id: 'ctl-a', expires: 1_800_000_060 }, leases: ['ctl-a'] });
    h.out.length = 0;
    expect(await serve(h.ctx, 'shutdown')).toBe(3);
    expect(json(h)).toEqual({ shutdown: false, deferred: true, reasons: ['lease "ctl-a" is held for 60 more seconds'] });
    expect(h.err.join('')).toMatch(/shutdown deferred until the last lease is released: lease "ctl-a"/);
    expect(h.detached).toEqual([]);
    h.setNow(1_800_000_061); // expired
    h.out.length = 0;
    expect(await serve(h.ctx, 'shutdown')).toBe(0);
    expect(json(h)).toMatchObject({ shutdown: true, poweroffInSeconds: 3, exported: ['backup'], exportErrors: [] });
  });

  it('maxLeases: a new lease beyond the cap is refused (exit 3, nothing written); renewals and expired slots work', async () => {
    const h = harness(box(), { maxLeases: 2 });
    expect(await serve(h.ctx, 'hold a 60')).toBe(0);
    expect(await serve(h.ctx, 'hold b 600')).toBe(0);
    h.out.length = 0;
    expect(await serve(h.ctx, 'hold c 60')).toBe(3);
    expect(json(h)).toEqual({ held: false, id: 'c', reason: '2 leases are held already (maxLeases)', shuttingDown: false });
    expect(h.err.join('')).toMatch(/hold refused: 2 leases are held already \(maxLeases\)/);
    expect(
      h.state
        .leases()
        .map((l) => l.id)
        .sort(),
    ).toEqual(['a', 'b']);
    expect(await serve(h.ctx, 'hold a 120')).toBe(0); // a renewal
    h.setNow(1_800_000_121); // a expired, b still held
    expect(await serve(h.ctx, 'hold c 60')).toBe(0);
    expect(
      h.state
        .leases()
        .map((l) => l.id)
        .sort(),
    ).toEqual(['b', 'c']);
  });

  it('two controllers: shutdown only after the last release', async () => {
    const h = harness();
    await serve(h.ctx, 'hold a 600');
    await serve(h.ctx, 'hold b 600');
    await serve(h.ctx, 'release a');
    expect(await serve(h.ctx, 'shutdown')).toBe(3);
    expect(h.detached).toEqual([]);
    // The deferred request is carried out by the release of the last lease.
    h.out.length = 0;
    await serve(h.ctx, 'release b');
    expect(json(h)).toMatchObject({ released: true, leases: [], shutdown: { poweroffInSeconds: 3 } });
    expect(h.detached).toHaveLength(1);
    expect(await serve(h.ctx, 'shutdown')).toBe(0);
    expect(h.detached).toHaveLength(1);
  });

  it('refuses while a scrub runs or a receive runs', async () => {
    const scrub = harness(box((cmd) => (cmd === 'zpool status backup' ? { stdout: STATUS_SCRUBBING } : undefined)));
    expect(await serve(scrub.ctx, 'shutdown')).toBe(3);
    expect(json(scrub)).toMatchObject({ shutdown: false, reasons: [expect.stringMatching(/pool backup: a scrub is running/)] });

    let inner: number | undefined;
    const recv = harness(box(), {}, 0, (hh) => {
      // A second SSH call while the receive streams (the stream ends after it was answered).
      return serve(hh.ctx, 'shutdown').then((c) => (inner = c));
    });
    expect(await serve(recv.ctx, 'receive backup/kraken/x')).toBe(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(inner).toBe(3);
    expect(recv.out.join('')).toMatch(/a receive into backup\/kraken\/x is running/);
  });

  it('accepted shutdown: exports, detaches the delayed power-off, and refuses new holds and receives meanwhile', async () => {
    const h = harness(box(), { poweroffDelaySeconds: 5, poweroffCommand: ['systemctl', 'start', 'hozo-poweroff.service'] });
    expect(await serve(h.ctx, 'shutdown')).toBe(0);
    expect(h.runner.calls).toContain('zpool export backup');
    expect(h.detached).toHaveLength(1);
    const argv = h.detached[0]!;
    expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(argv.slice(3)).toEqual(['hozo-agent-poweroff', '5', h.state.shutdownPendingPath, 'systemctl', 'start', 'hozo-poweroff.service']);
    expect(h.state.shutdownPending()).toBeDefined();
    h.err.length = 0;
    expect(await serve(h.ctx, 'hold late 60')).toBe(3);
    expect(await serve(h.ctx, 'receive backup/kraken/x')).toBe(3);
    expect(h.streams).toEqual([]);
    expect(h.err.join('')).toMatch(/shutting down/);
    // A second shutdown is a no-op success.
    h.out.length = 0;
    expect(await serve(h.ctx, 'shutdown')).toBe(0);
    expect(json(h)).toEqual({ shutdown: true, alreadyPending: true });
    expect(h.detached).toHaveLength(1);
  });

  it('export failures are reported, the power-off still happens', async () => {
    const h = harness(box((cmd) => (cmd === 'zpool export backup' ? { exitCode: 1, stderr: "cannot export 'backup': permission denied\n" } : undefined)));
    expect(await serve(h.ctx, 'shutdown')).toBe(0);
    expect(json(h)).toMatchObject({ exported: [], exportErrors: [{ pool: 'backup', error: "cannot export 'backup': permission denied" }] });
    expect(h.detached).toHaveLength(1);
  });

  it('exportOnShutdown: false leaves the pools alone', async () => {
    const h = harness(box(), { exportOnShutdown: false });
    expect(await serve(h.ctx, 'shutdown')).toBe(0);
    expect(h.runner.calls.filter((c) => c.includes('export'))).toEqual([]);
  });
});

describe('idle-check', () => {
  let h: Harness;
  beforeEach(() => {
    h = harness(
      box((cmd) => (cmd === 'sh -c echo off' ? { stdout: 'off\n' } : undefined)),
      { idlePoweroffMinutes: 30 },
    );
  });

  it('status and version do not count as activity (monitoring must not keep the box awake)', async () => {
    await serve(h.ctx, 'status');
    await serve(h.ctx, 'version');
    expect(h.state.lastActivity()).toBeUndefined();
    await serve(h.ctx, 'capabilities');
    expect(h.state.lastActivity()).toBeDefined();
  });

  it('powers off after 30 idle minutes (counted from the last serve call)', async () => {
    await serve(h.ctx, 'capabilities');
    h.out.length = 0;
    h.runner.calls.length = 0;
    // The activity stamp is the file's mtime, i.e. real time: move the clock relative to it.
    const last = h.state.lastActivity()!;
    h.setNow(last + 29 * 60);
    expect(await idleCheck(h.ctx)).toBe(0);
    expect(json(h)).toMatchObject({ action: 'none', reasons: [expect.stringMatching(/last activity 1740 s ago \(powers off after 1800 s\)/)] });
    expect(h.runner.calls).not.toContain('sh -c echo off');
    h.out.length = 0;
    h.setNow(last + 31 * 60);
    expect(await idleCheck(h.ctx)).toBe(0);
    expect(json(h)).toMatchObject({ action: 'poweroff', idleSeconds: 1860, exported: ['backup'], poweroff: { exitCode: 0 } });
    expect(h.runner.calls).toContain('sh -c echo off');
    // Still pending after the command returned (`systemctl start --no-block` returns while the box goes down): a
    // prepare or hold now is refused. The next boot makes the marker stale.
    expect(h.state.shutdownPending()).toBeDefined();
    expect(await serve(h.ctx, 'hold late 60')).toBe(3);
  });

  it('a power-off command that fails clears the pending marker: the box stays up and takes work again', async () => {
    const f = harness(
      box((cmd) => (cmd === 'sh -c echo off' ? { exitCode: 1, stderr: 'no permission\n' } : undefined)),
      { idlePoweroffMinutes: 30 },
    );
    f.setNow(1_800_000_000);
    expect(await idleCheck(f.ctx)).toBe(1);
    expect(f.err.join('')).toMatch(/power-off command failed: no permission/);
    expect(f.state.shutdownPending()).toBeUndefined();
  });

  it('without any activity, idle time counts from boot', async () => {
    h.setNow(1_800_000_000); // uptime 100000 s
    expect(await idleCheck(h.ctx)).toBe(0);
    expect(json(h)).toMatchObject({ action: 'poweroff', idleSeconds: 100_000 });
  });

  it('an active lease keeps the box up; so does a scrub', async () => {
    h.state.hold('job', 7200);
    expect(await idleCheck(h.ctx)).toBe(0);
    expect(json(h)).toMatchObject({ action: 'none', reasons: [expect.stringMatching(/lease "job"/)] });
    expect(h.runner.calls).not.toContain('sh -c echo off');

    const s = harness(box((cmd) => (cmd === 'zpool status backup' ? { stdout: STATUS_SCRUBBING } : undefined)));
    expect(await idleCheck(s.ctx)).toBe(0);
    expect(json(s)).toMatchObject({ action: 'none', reasons: [expect.stringMatching(/scrub is running/)] });
  });

  it('disabled with idlePoweroffMinutes: null', async () => {
    const d = harness(box(), { idlePoweroffMinutes: null });
    expect(await idleCheck(d.ctx)).toBe(0);
    expect(json(d)).toMatchObject({ action: 'none', reasons: [expect.stringMatching(/disabled/)] });
    expect(d.runner.calls).toEqual([]);
  });

  it('a failing power-off command is exit 1', async () => {
    const f = harness(box((cmd) => (cmd === 'sh -c echo off' ? { exitCode: 5, stderr: 'Access denied\n' } : undefined)));
    expect(await idleCheck(f.ctx)).toBe(1);
    expect(json(f)).toMatchObject({ action: 'poweroff', poweroff: { exitCode: 5, error: 'Access denied' } });
  });
});

describe('prune', () => {
  const DAY = 86_400;
  const now = Math.floor(Date.now() / 1000);
  function inventoryText(): string {
    const lines = [
      'backup/kraken\ttype\tfilesystem',
      'backup/kraken\tguid\t1',
      'backup/kraken\tcreatetxg\t1',
      'backup/kraken\tcreation\t1',
      'backup/kraken\tuserrefs\t-',
    ];
    lines.push(
      'backup/kraken/x\ttype\tfilesystem',
      'backup/kraken/x\tguid\t2',
      'backup/kraken/x\tcreatetxg\t2',
      'backup/kraken/x\tcreation\t2',
      'backup/kraken/x\tuserrefs\t-',
    );
    // 12 daily snapshots, one held, oldest first.
    for (let i = 11; i >= 0; i--) {
      const n = `backup/kraken/x@d${i}`;
      lines.push(
        `${n}\ttype\tsnapshot`,
        `${n}\tguid\t${100 + i}`,
        `${n}\tcreatetxg\t${100 - i}`,
        `${n}\tcreation\t${now - i * DAY}`,
        `${n}\tuserrefs\t${i === 10 ? 1 : 0}`,
      );
    }
    return lines.join('\n') + '\n';
  }
  const reply = box((cmd) => {
    if (cmd.startsWith('zfs get') && cmd.includes('receive_resume_token'))
      return { exitCode: 2, stderr: "bad property list: invalid property 'receive_resume_token'\n" };
    if (cmd.startsWith('zfs get')) return { stdout: inventoryText() };
    if (cmd.startsWith('zfs destroy backup/kraken/x@')) return {};
    return undefined;
  });

  it('keeps N daily + newest + held, destroys the rest (only snapshots, only under the roots)', async () => {
    const h = harness(reply, { retention: { daily: 3, weekly: 0, monthly: 0 } });
    expect(await serve(h.ctx, 'prune')).toBe(0);
    const r = json(h);
    expect(r['destroyed']).toEqual([
      'backup/kraken/x@d11',
      'backup/kraken/x@d9',
      'backup/kraken/x@d8',
      'backup/kraken/x@d7',
      'backup/kraken/x@d6',
      'backup/kraken/x@d5',
      'backup/kraken/x@d4',
      'backup/kraken/x@d3',
    ]);
    expect(r['kept']).toEqual([
      { snapshot: 'backup/kraken/x@d0', reasons: ['newest', 'daily'] },
      { snapshot: 'backup/kraken/x@d1', reasons: ['daily'] },
      { snapshot: 'backup/kraken/x@d2', reasons: ['daily'] },
      { snapshot: 'backup/kraken/x@d10', reasons: ['held'] },
    ]);
    const destroys = h.runner.calls.filter((c) => c.startsWith('zfs destroy'));
    expect(destroys).toHaveLength(8);
    for (const c of destroys) expect(c).toMatch(/^zfs destroy backup\/kraken\/x@d\d+$/);
  });

  it('--dry-run destroys nothing; a destroy failure is exit 1 and the rest continue', async () => {
    const dry = harness(reply, { retention: { daily: 3, weekly: 0, monthly: 0 } });
    expect(await serve(dry.ctx, 'prune --dry-run')).toBe(0);
    expect(json(dry)).toMatchObject({ dryRun: true });
    expect((json(dry)['destroyed'] as string[]).length).toBe(8);
    expect(dry.runner.calls.filter((c) => c.startsWith('zfs destroy'))).toEqual([]);

    const busy = harness(
      box((cmd) => (cmd === 'zfs destroy backup/kraken/x@d5' ? { exitCode: 1, stderr: "cannot destroy 'backup/kraken/x@d5': dataset is busy\n" } : reply(cmd))),
      { retention: { daily: 3, weekly: 0, monthly: 0 } },
    );
    expect(await serve(busy.ctx, 'prune')).toBe(1);
    expect(json(busy)['failed']).toEqual([{ snapshot: 'backup/kraken/x@d5', error: expect.stringMatching(/dataset is busy/) }]);
    expect((json(busy)['destroyed'] as string[]).length).toBe(7);
  });
});
