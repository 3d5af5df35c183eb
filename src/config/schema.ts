// The config file's shape. Names are the user-facing contract (the NixOS module renders the JSON form of this).
import { z } from 'zod';
import { datasetNameProblem } from '../zfs/names.js';
import { parseDuration } from './duration.js';

const datasetName = z.string().superRefine((v, ctx) => {
  const problem = datasetNameProblem(v);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `not a valid ZFS dataset name: "${v}" ${problem}` });
});

const duration = (what: string) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const s = parseDuration(v);
    if (s === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected ${what} as seconds or a duration like "30s", "5m", "1h"` });
      return z.NEVER;
    }
    return s;
  });

const MAC = /^([0-9A-Fa-f]{2})([:-])[0-9A-Fa-f]{2}(\2[0-9A-Fa-f]{2}){4}$/;
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9.\-]*[A-Za-z0-9])?$|^\[?[0-9A-Fa-f:.]+\]?$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.\-]*$/;

const absolutePath = z.string().refine((p) => p.startsWith('/'), { message: 'expected an absolute path' });

export const wakeSchema = z
  .object({
    method: z.enum(['wol', 'ssh-relay', 'http', 'command', 'none']).default('wol'),
    mac: z.string().regex(MAC, 'expected a MAC address like 52:54:00:7a:0b:01').optional(),
    address: z.string().regex(HOSTNAME, 'expected an IP or broadcast address').optional(),
    port: z.number().int().min(1).max(65535).default(9),
  })
  .strict();

export const hostSchema = z
  .object({
    address: z.string().regex(HOSTNAME, 'expected a host name or IP address'),
    port: z.number().int().min(1).max(65535).default(22),
    user: z.string().regex(/^[a-z_][a-z0-9_-]*\$?$/i, 'expected a user name').default('root'),
    sshKeyFile: absolutePath.optional(),
    knownHostsFile: absolutePath.optional(),
    /** Extra `ssh -o` options, e.g. ["Ciphers=aes128-gcm@openssh.com"]. Host key checking cannot be turned off here. */
    sshOptions: z.array(z.string().regex(/^[A-Za-z]+=\S+$/, 'expected Key=value')).default([]),
    wake: wakeSchema.optional(),
    readyTimeout: duration('readyTimeout').default(300),
    shutdown: z.enum(['agent', 'ssh', 'none']).default('none'),
  })
  .strict()
  .superRefine((h, ctx) => {
    for (const [i, o] of h.sshOptions.entries()) {
      if (/^(StrictHostKeyChecking|UserKnownHostsFile|GlobalKnownHostsFile)=/i.test(o) && /=(no|off|\/dev\/null)$/i.test(o)) {
        ctx.addIssue({ code: 'custom', path: ['sshOptions', i], message: 'host key checking cannot be disabled; set knownHostsFile instead' });
      }
    }
  });

export const datasetSchema = z
  .object({
    source: datasetName,
    target: datasetName,
    recursive: z.boolean().default(false),
    exclude: z.array(datasetName).default([]),
  })
  .strict()
  .superRefine((d, ctx) => {
    for (const [i, e] of d.exclude.entries()) {
      if (!(e === d.source || e.startsWith(d.source + '/'))) {
        ctx.addIssue({ code: 'custom', path: ['exclude', i], message: `"${e}" is not below source "${d.source}"` });
      }
    }
    if (d.exclude.length > 0 && !d.recursive) {
      ctx.addIssue({ code: 'custom', path: ['exclude'], message: 'exclude only makes sense with recursive: true' });
    }
  });

export const jobSchema = z
  .object({
    name: z.string().regex(NAME, 'expected a job name of letters, digits, _ . - (it becomes a systemd unit name)'),
    host: z.string().min(1),
    datasets: z.array(datasetSchema).min(1, 'expected at least one dataset'),
    snapshots: z.enum(['all', 'latest']).default('all'),
    rollback: z.boolean().default(false),
    schedule: z.string().min(1).default('daily'),
    shutdownAfter: z.boolean().default(true),
    retries: z.number().int().min(0).max(100).default(3),
    retryDelay: duration('retryDelay').default(60),
    /** Put mbuffer on both ends when both have it (helps on slow or bursty links). */
    buffer: z.enum(['auto', 'mbuffer', 'none']).default('none'),
    /** Compress the stream in transit with zstd when both ends have it. */
    compress: z.enum(['zstd', 'none']).default('none'),
  })
  .strict();

export const configSchema = z
  .object({
    stateDirectory: absolutePath.default('/var/lib/hozo'),
    /** Prometheus textfile output (absent: no metrics file). */
    metrics: z.object({ textfileDirectory: absolutePath }).strict().optional(),
    /** Append log lines to this file as well as stderr (the NixOS module rotates it). */
    logFile: absolutePath.optional(),
    hosts: z.record(z.string().regex(NAME, 'expected a host name of letters, digits, _ . -'), hostSchema).default({}),
    jobs: z.array(jobSchema).default([]),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seen = new Map<string, number>();
    const targets = new Map<string, string>();
    c.jobs.forEach((job, i) => {
      if (seen.has(job.name)) {
        ctx.addIssue({ code: 'custom', path: ['jobs', i, 'name'], message: `duplicate job name "${job.name}" (also jobs[${seen.get(job.name)}])` });
      }
      seen.set(job.name, i);
      if (job.host !== 'local' && !(job.host in c.hosts)) {
        const known = Object.keys(c.hosts);
        ctx.addIssue({
          code: 'custom',
          path: ['jobs', i, 'host'],
          message: `unknown host "${job.host}" (expected "local"${known.length ? ' or one of: ' + known.join(', ') : ''})`,
        });
      }
      job.datasets.forEach((d, j) => {
        const key = `${job.host}:${d.target}`;
        const other = targets.get(key);
        if (other !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['jobs', i, 'datasets', j, 'target'], message: `target "${d.target}" on host "${job.host}" is also the target of ${other}` });
        }
        targets.set(key, `jobs[${i}].datasets[${j}]`);
        if (job.host === 'local' && (d.target === d.source || d.target.startsWith(d.source + '/') || d.source.startsWith(d.target + '/'))) {
          ctx.addIssue({ code: 'custom', path: ['jobs', i, 'datasets', j, 'target'], message: `target "${d.target}" overlaps source "${d.source}" on the same host` });
        }
      });
    });
  });

export type Config = z.output<typeof configSchema>;
export type HostConfig = z.output<typeof hostSchema>;
export type JobConfig = z.output<typeof jobSchema>;
export type DatasetConfig = z.output<typeof datasetSchema>;
export type WakeConfig = z.output<typeof wakeSchema>;
