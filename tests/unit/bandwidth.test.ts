// bandwidthLimit: the rate format (pv -L's), the smaller of host and job, and the schema's refusals.
import { describe, expect, it } from 'vitest';
import { bandwidthBytes, effectiveLimit } from '../../src/pipeline/bandwidth.js';
import { validateConfig } from '../../src/config/load.js';

const config = (host: Record<string, unknown>, job: Record<string, unknown>) => ({
  hosts: { box: { address: '10.0.0.2', ...host } },
  jobs: [{ name: 'n', host: 'box', datasets: [{ source: 'tank/a', target: 'backup/a' }], ...job }],
});

describe('bandwidthLimit', () => {
  it('reads K, M and G as 1024-based bytes per second, like pv -L', () => {
    expect(bandwidthBytes('500K')).toBe(500 * 1024);
    expect(bandwidthBytes('20M')).toBe(20 * 1024 * 1024);
    expect(bandwidthBytes('1G')).toBe(1024 ** 3);
    expect(() => bandwidthBytes('20')).toThrow();
  });

  it("the smaller of the host's and the job's applies, and says which", () => {
    expect(effectiveLimit(undefined, undefined)).toBeUndefined();
    expect(effectiveLimit('20M', undefined)).toMatchObject({ limit: '20M', from: 'host' });
    expect(effectiveLimit(undefined, '5M')).toMatchObject({ limit: '5M', from: 'job' });
    expect(effectiveLimit('20M', '5M')).toMatchObject({ limit: '5M', from: 'job' });
    expect(effectiveLimit('2048K', '5M')).toMatchObject({ limit: '2048K', bytesPerSecond: 2 * 1024 * 1024, from: 'host' });
  });

  it('the config accepts it on hosts and jobs and refuses what pv could not take', () => {
    const ok = validateConfig(config({ bandwidthLimit: '20M' }, { bandwidthLimit: '500K' }));
    expect(ok.hosts['box']!.bandwidthLimit).toBe('20M');
    expect(ok.jobs[0]!.bandwidthLimit).toBe('500K');
    for (const bad of ['20', '20 M', '20MB', '0M', '-1M', '1.5M', '20m', '99999999K', '$(reboot)']) {
      expect(() => validateConfig(config({ bandwidthLimit: bad }, {})), bad).toThrow(/bandwidthLimit[\s\S]*expected a rate in bytes per second/);
      expect(() => validateConfig(config({}, { bandwidthLimit: bad })), bad).toThrow(/expected a rate in bytes per second/);
    }
  });
});
