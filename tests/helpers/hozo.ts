// Runs the built `hozo` binary the way a user does, with a config written into the lab.
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { stringify } from 'yaml';

// The bundle that ships (package.json "bin", scripts/bundle.mjs).
export const HOZO = resolve(import.meta.dirname, '../../dist/bin/hozo/hozo.js');

export interface HozoResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export function writeConfig(dir: string, config: unknown, name = 'config.yaml'): string {
  const path = join(dir, name);
  writeFileSync(path, stringify(config));
  return path;
}

export function startHozo(config: string, args: readonly string[], env: Record<string, string> = {}): ResultPromise<{ reject: false }> {
  return execa('node', [HOZO, '--config', config, ...args], { reject: false, env: { ...env }, timeout: 120_000 });
}

export async function hozo(config: string, ...args: string[]): Promise<HozoResult> {
  const r = await startHozo(config, args);
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** `hozo … --json` parsed. */
export async function hozoJson<T = any>(config: string, ...args: string[]): Promise<{ exitCode: number; json: T; stderr: string }> {
  const r = await hozo(config, ...args, '--json');
  let json: T;
  try {
    json = JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`hozo ${args.join(' ')} printed no JSON (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}`);
  }
  return { exitCode: r.exitCode, json, stderr: r.stderr };
}
