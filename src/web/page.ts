// The dashboard of `hozo serve`, rendered on the server: plain HTML with forms, readable and usable without
// JavaScript (the Content-Security-Policy allows none inline, and the page needs none). Every value from the config,
// the state or a box is escaped here; nothing else builds markup.
import type { JobConfig } from '../config/schema.js';
import type { StatusDocument } from '../cli/commands/status-hosts.js';
import { formatBytes } from '../util/log.js';

/** Text for HTML content and attribute values. */
export function esc(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const path = (...parts: string[]) => parts.map((p) => encodeURIComponent(p)).join('/');

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<link rel="icon" href="/static/hozo.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/hozo.css">
<script src="/static/hozo.js" defer></script>
</head>
<body>
<header><h1>Hōzō</h1><p class="sub">off-site ZFS backups</p></header>
<main>
${body}
</main>
</body>
</html>
`;
}

/** A notice above the tables: what a button just did. */
export interface Notice {
  readonly ok: boolean;
  readonly text: string;
}

export interface PageData {
  readonly status: StatusDocument;
  readonly jobs: readonly JobConfig[];
  /** Jobs whose run is going on now (a lock is held), with who holds it. */
  readonly running: ReadonlyMap<string, string>;
  /** The transfer progress of running jobs (the CLI's progress line). */
  readonly progress?: ReadonlyMap<string, string>;
  /** Hosts that can be put to sleep from here (shutdown is not "none"). */
  readonly canShutdown: ReadonlySet<string>;
  readonly notice?: Notice;
}

function ago(iso: string | undefined, now: number): string {
  if (iso === undefined) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

/** The dashboard: jobs (last run, datasets, run now) and hosts (state, pools, wake, shut down). */
export function dashboard(d: PageData, now = Date.now()): string {
  const notice = d.notice === undefined ? '' : `<p class="notice ${d.notice.ok ? 'ok' : 'bad'}" role="status">${esc(d.notice.text)}</p>\n`;
  const jobs = d.jobs.map((j) => {
    const st = d.status.jobs.find((x) => x.job === j.name)?.state ?? null;
    const run = st?.lastRun;
    const running = d.running.get(j.name);
    const datasets = (run?.datasets ?? j.datasets.map((x) => ({ source: x.source, target: x.target })))
      .map((x: { source: string; target: string; result?: string; newest?: string; error?: { message: string; hint?: string } }) => {
        const result = x.result !== undefined ? ` <span class="r-${esc(x.result)}">${esc(x.result)}</span>` : '';
        const newest = x.newest !== undefined ? ` (newest on target: <code>${esc(x.newest)}</code>)` : '';
        // A dataset's own error, unless it is the run's (shown below the run already).
        const own = x.error !== undefined && x.error.message !== run?.error?.message ? x.error : undefined;
        const error =
          own === undefined
            ? ''
            : `<br><span class="err">${esc(own.message)}</span>${own.hint !== undefined ? `<br><span class="hint">hint: ${esc(own.hint)}</span>` : ''}`;
        return `<li><code>${esc(x.source)}</code> → <code>${esc(x.target)}</code>${result}${newest}${error}</li>`;
      })
      .join('');
    const last =
      run === undefined
        ? '<span class="muted">never run</span>'
        : `<span class="r-${esc(run.result)}">${esc(run.result)}</span> ${esc(ago(run.finishedAt, now))} — ${esc(formatBytes(run.bytes))} in ${esc(run.seconds.toFixed(1))} s${
            run.error !== undefined
              ? `<br><span class="err">${esc(run.error.message)}</span>${run.error.hint !== undefined ? `<br><span class="hint">hint: ${esc(run.error.hint)}</span>` : ''}`
              : ''
          }`;
    const moving = d.progress?.get(j.name);
    const action =
      running !== undefined
        ? `<span class="running">running (${esc(running)})</span><br><span class="progress" data-progress="${esc(j.name)}" aria-live="polite">${esc(moving ?? '')}</span>`
        : `<a class="button" href="/confirm/run/${path(j.name)}">Run now</a>`;
    return `<tr>
<th scope="row">${esc(j.name)}</th><td>${esc(j.host)}</td><td><code>${esc(j.schedule)}</code></td>
<td>${last}<br><span class="muted">last success: ${esc(ago(st?.lastSuccess, now))}</span><ul class="datasets">${datasets}</ul></td>
<td>${action}</td>
</tr>`;
  });
  const hosts = d.status.hosts.map((h) => {
    const pools = (h.pools ?? [])
      .map(
        (p) =>
          `<li>${esc(p.name)} <span class="h-${esc(p.health)}">${esc(p.health)}</span>${p.capacity ? ` ${esc(p.capacity)} full` : ''}${p.scrub ? `, ${esc(p.scrub)}` : ''}</li>`,
      )
      .join('');
    const actions = [
      h.state !== 'awake' ? `<a class="button" href="/confirm/wake/${path(h.name)}">Wake</a>` : '',
      h.state === 'awake' && d.canShutdown.has(h.name) ? `<a class="button" href="/confirm/shutdown/${path(h.name)}">Shut down</a>` : '',
    ].join(' ');
    return `<tr>
<th scope="row">${esc(h.name)}</th><td><span class="s-${esc(h.state)}">${esc(h.state)}</span>${h.error ? `<br><span class="err">${esc(h.error)}</span>` : ''}</td>
<td>${pools !== '' ? `<ul class="pools">${pools}</ul>` : '<span class="muted">—</span>'}</td><td>${actions}</td>
</tr>`;
  });
  return layout(
    'Hōzō',
    `${notice}<section aria-labelledby="jobs-h"><h2 id="jobs-h">Jobs</h2>
${jobs.length === 0 ? '<p>No jobs are configured.</p>' : `<table><thead><tr><th scope="col">Job</th><th scope="col">Host</th><th scope="col">Schedule</th><th scope="col">Last run</th><th scope="col"><span class="vh">Action</span></th></tr></thead><tbody>\n${jobs.join('\n')}\n</tbody></table>`}
</section>
<section aria-labelledby="hosts-h"><h2 id="hosts-h">Boxes</h2>
${hosts.length === 0 ? '<p>No boxes are configured.</p>' : `<table><thead><tr><th scope="col">Box</th><th scope="col">State</th><th scope="col">Pools</th><th scope="col"><span class="vh">Action</span></th></tr></thead><tbody>\n${hosts.join('\n')}\n</tbody></table>`}
</section>
<p class="muted">As of ${esc(new Date(now).toISOString())}. <a href="/">Refresh</a> · <a href="/api/status">status as JSON</a></p>`,
  );
}

const VERBS = {
  run: { title: 'Run job', button: 'Run now', what: 'job' },
  wake: { title: 'Wake box', button: 'Wake', what: 'box' },
  shutdown: { title: 'Shut down box', button: 'Shut down', what: 'box' },
} as const;
export type Verb = keyof typeof VERBS;

/** The confirmation of a button: one form that POSTs with the page's CSRF token. */
export function confirmPage(verb: Verb, name: string, csrf: string): string {
  const v = VERBS[verb];
  const action = verb === 'run' ? `/jobs/${path(name)}/run` : `/hosts/${path(name)}/${verb}`;
  return layout(
    `${v.title} ${name}`,
    `<h2>${esc(v.title)} ${esc(name)}?</h2>
<form method="post" action="${esc(action)}">
<input type="hidden" name="csrf" value="${esc(csrf)}">
<button type="submit">${esc(v.button)}</button> <a href="/">Cancel</a>
</form>`,
  );
}

/** The login form (a server with a token, a browser without the cookie). */
export function loginPage(failed: boolean): string {
  return layout(
    'Hōzō — log in',
    `<h2>Log in</h2>${failed ? '<p class="notice bad" role="status">That token is not right.</p>' : ''}
<form method="post" action="/login">
<label for="token">Token</label> <input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form>`,
  );
}

/**
 * The page's one script (served from the package: no CDN, works on an offline LAN; the CSP allows only it). It keeps
 * the page current without a click: a running job's transfer progress as it goes, and on each event of /api/events
 * that changes what the page shows (a run started or finished, a wake or shutdown done) it loads the page again.
 * Without it the page is the same, refreshed by hand.
 */
export const SCRIPT = `'use strict';
(function () {
  if (!window.EventSource || document.querySelector('form')) return;
  var events = new EventSource('/api/events');
  var again = function () { events.close(); window.location.replace('/'); };
  events.addEventListener('run', again);
  events.addEventListener('host', again);
  events.addEventListener('progress', function (e) {
    var p = JSON.parse(e.data);
    document.querySelectorAll('[data-progress]').forEach(function (el) {
      if (el.getAttribute('data-progress') === p.job) el.textContent = p.text;
    });
  });
})();
`;

/** The page's icon: a storehouse (宝蔵) — a roof over a box. */
export const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><path d="M3 14 16 4l13 10" fill="none" stroke="#8a5a2b" stroke-width="3" stroke-linejoin="round"/><rect x="7" y="14" width="18" height="14" rx="1.5" fill="#8a5a2b"/><rect x="13" y="19" width="6" height="9" fill="#f3e6c8"/></svg>
`;

export const STYLESHEET = `:root { color-scheme: light dark; --ok: #1a7f37; --bad: #cf222e; --muted: #6e7781; }
body { font: 16px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 70rem; padding: 0 1rem 2rem; }
header { display: flex; align-items: baseline; gap: 1rem; border-bottom: 1px solid #8884; }
h1 { margin: .6rem 0; font-size: 1.6rem; } .sub { color: var(--muted); margin: 0; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; vertical-align: top; padding: .45rem .5rem; border-bottom: 1px solid #8883; }
ul.datasets, ul.pools { margin: .3rem 0 0; padding-left: 1.1rem; font-size: .92rem; }
.progress { font-variant-numeric: tabular-nums; font-size: .92rem; } .muted { color: var(--muted); } .err { color: var(--bad); } .hint { color: var(--muted); font-size: .92rem; }
.r-ok, .r-sent, .r-up-to-date, .h-ONLINE, .s-awake { color: var(--ok); font-weight: 600; }
.r-failed, .r-unreachable, .r-error, .r-conflict, .h-DEGRADED, .h-FAULTED, .h-UNKNOWN, .h-MISSING, .s-unreachable { color: var(--bad); font-weight: 600; }
.s-asleep { color: var(--muted); font-weight: 600; }
.notice { padding: .6rem .8rem; border-radius: .4rem; border: 1px solid; } .notice.ok { border-color: var(--ok); } .notice.bad { border-color: var(--bad); }
a.button, button { display: inline-block; white-space: nowrap; padding: .4rem .8rem; border-radius: .4rem; border: 1px solid #8888; background: #8881; color: inherit; text-decoration: none; font: inherit; cursor: pointer; }
.vh { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
@media (max-width: 40rem) { table, thead, tbody, tr, th, td { display: block; } thead { display: none; } tr { border-bottom: 2px solid #8885; padding: .4rem 0; } td, th { border: 0; padding: .2rem 0; } }
`;
