// The dashboard of `hozo serve` in a real browser (Debian's Chromium, driven by playwright-core) against the zfs-fuse
// lab's sleeping box (a network namespace, a wake listener that plays the NIC firmware, hozo-agent as the forced
// command; "power off" = stopping the box's sshd, nothing is powered off). What a user does: sees the job and the box
// asleep, presses "Run now", confirms, sees the run going and then its success with the box asleep again; a failing
// job shows its error and hint; wake and shut down work from their buttons. No console errors (a CSP violation is
// one), no accessibility violations (axe-core), nothing wider than a phone. Screenshots of each state go to
// .lab/artifacts/dashboard/ (not committed).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentBuilt, installAgent } from '../../src/lab/agent.js';
import { createLab, labPrerequisites, type Lab } from '../../src/lab/lab.js';
import { writeConfig } from '../helpers/hozo.js';
import { serve, stop, type Server } from '../helpers/serve.js';

const CHROMIUM = '/usr/bin/chromium';
const missing = [
  ...labPrerequisites(),
  ...(agentBuilt() ? [] : ['a built agent (npm run build)']),
  ...(existsSync(CHROMIUM) ? [] : [`${CHROMIUM} (Debian package chromium)`]),
];
if (missing.length > 0) console.warn(`SKIP: tests/e2e/dashboard.test.ts needs ${missing.join(', ')}`);

const ARTIFACTS = resolve(import.meta.dirname, '..', '..', '.lab', 'artifacts', 'dashboard');
// The flags that work on this kind of machine (closed network: no background connections, no sandbox as root).
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

type Browser = import('playwright-core').Browser;
type Page = import('playwright-core').Page;

describe.skipIf(missing.length > 0)('the dashboard in Chromium against a sleeping box', () => {
  let lab: Lab;
  let server: Server;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const shots: string[] = [];

  const shot = async (name: string) => {
    const file = join(ARTIFACTS, `${String(shots.length + 1).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    shots.push(file);
  };
  /** Loads the page until `ok` holds for its text (the page script reloads it on events too), bounded. */
  const until = async (what: string, ok: (text: string) => boolean, ms = 90_000) => {
    const deadline = Date.now() + ms;
    for (let i = 0; i < 300 && Date.now() < deadline; i++) {
      // The page's script may be loading it again right now (an event): then this round does not count.
      const text = await page
        .locator('main')
        .innerText({ timeout: 5000 })
        .catch(() => '');
      if (ok(text)) return text;
      await page.waitForTimeout(1000);
      // Loaded again by hand now and then (a goto the page's own reload overtakes is aborted: fine, it loaded).
      if (i % 5 === 4) await page.goto(`${server.url}/`).catch(() => undefined);
    }
    throw new Error(`${what}: not within ${ms} ms; the page says:\n${await page.locator('main').innerText()}`);
  };
  const row = (name: string) => page.locator('tr', { has: page.locator(`th[scope="row"]`, { hasText: new RegExp(`^${name}$`) }) });
  const press = async (href: string, button: string) => {
    await page.goto(`${server.url}/`);
    await page.click(`a[href="${href}"]`);
    await page.getByRole('button', { name: button }).click();
    await page.waitForURL(/\/\?notice=/);
  };

  beforeAll(async () => {
    rmSync(ARTIFACTS, { recursive: true, force: true });
    mkdirSync(ARTIFACTS, { recursive: true });
    lab = await createLab({ id: 'web', poolSizeMB: 512, sshd: false, wakeListener: { startSshd: true, bootDelayMs: 800 } });
    const src = lab.source.name;
    await lab.hostZfs(['create', `${src}/photos`]);
    await execa('sh', ['-c', `head -c 48M /dev/urandom > ${join(lab.source.mountpoint, 'photos/album.bin')}`]);
    await lab.hostZfs(['snapshot', `${src}/photos@web1`]);
    const root = `${lab.box.pool.name}/web`;
    installAgent(lab.box, { roots: [root] });
    const config = writeConfig(
      lab.dir,
      {
        stateDirectory: join(lab.dir, 'state-web'),
        hosts: { offsite: { ...lab.box.hostConfig(), readyTimeout: 30, shutdown: 'agent' } },
        jobs: [
          // Capped at 8 MiB/s (pv): the 48 MiB stream lasts long enough to watch its progress on the page.
          { name: 'nightly', host: 'offsite', retries: 0, bandwidthLimit: '8M', datasets: [{ source: `${src}/photos`, target: `${root}/photos` }] },
          { name: 'broken', host: 'local', datasets: [{ source: `${src}/no-such-dataset`, target: 'hznopool/copy' }] },
        ],
      },
      'web.yaml',
    );
    server = await serve(config);
    const { chromium } = createRequire(import.meta.url)('playwright-core') as typeof import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  });

  afterAll(async () => {
    await browser?.close();
    await stop(server);
    await lab?.destroy();
    if (shots.length > 0) writeFileSync(join(ARTIFACTS, 'index.txt'), `${shots.join('\n')}\n`);
  });

  it('shows the job never run and the box asleep', async () => {
    await page.goto(`${server.url}/`);
    await expect.poll(() => row('nightly').innerText()).toMatch(/offsite[\s\S]*never run/);
    expect(await row('offsite').innerText()).toMatch(/asleep/);
    await shot('asleep');
  });

  it('"Run now" → confirm: the box is woken, the run succeeds and the box is asleep again', async () => {
    await press('/confirm/run/nightly', 'Run now');
    expect(await page.locator('.notice.ok').innerText()).toMatch(/Job nightly started \(pid \d+\)/);
    expect(await row('nightly').innerText()).toMatch(/running/);
    // The transfer's progress as it goes (the run's progress file, through the event stream and the page's script).
    await page.waitForFunction(
      () => /photos: \d+(\.\d)? MiB .* MiB\/s/.test(document.querySelector('[data-progress="nightly"]')?.textContent ?? ''),
      undefined,
      {
        timeout: 30_000,
      },
    );
    await shot('running');
    await until('the run succeeded', (t) => /nightly[\s\S]*\bok\b[\s\S]*last success: \d+ s ago/.test(t));
    expect(await row('nightly').innerText()).toMatch(/photos → .*\/web\/photos sent \(newest on target: web1\)/);
    await until('the box is asleep again', (t) => /offsite\s+asleep/.test(t), 60_000);
    await shot('done');
  });

  it('a failing job shows its error and hint', async () => {
    await press('/confirm/run/broken', 'Run now');
    const text = await until('the run failed', (t) => /broken[\s\S]*failed/.test(t));
    expect(text).toMatch(/does not exist on the source host/);
    // The dataset's own error and hint, below the run's (its target pool is not there either).
    expect(
      await row('broken')
        .locator('.hint', { hasText: /^hint: check the dataset name/ })
        .count(),
    ).toBe(1);
    expect(
      await row('broken')
        .locator('.err', { hasText: /target pool hznopool could not be read/ })
        .count(),
    ).toBe(1);
    await shot('failed');
  });

  it('Wake and Shut down work from their buttons', async () => {
    await press('/confirm/wake/offsite', 'Wake');
    expect(await page.locator('.notice').innerText()).toMatch(/^offsite: /);
    await until('the box is awake', (t) => /offsite\s+awake/.test(t), 60_000);
    await shot('awake');
    await press('/confirm/shutdown/offsite', 'Shut down');
    expect(await page.locator('.notice.ok').innerText()).toMatch(/^offsite: done/);
    await until('the box is asleep', (t) => /offsite\s+asleep/.test(t), 60_000);
  });

  it('no console errors, no accessibility violations (axe-core), and nothing wider than a phone', async () => {
    await page.goto(`${server.url}/`);
    // axe is evaluated through the DevTools protocol, which the page's CSP does not govern (it allows no inline script).
    const axe = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
    const run = async () =>
      (await page.evaluate(
        `${axe}; axe.run(document, { resultTypes: ['violations'] }).then(r => r.violations.map(v => v.id + ': ' + v.help + ' (' + v.nodes.length + ')'))`,
      )) as string[];
    expect(await run()).toEqual([]);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${server.url}/`);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    expect(await run()).toEqual([]);
    await shot('phone');
    await page.goto(`${server.url}/confirm/run/nightly`);
    expect(await run()).toEqual([]);
    expect(problems).toEqual([]);
  });
});
