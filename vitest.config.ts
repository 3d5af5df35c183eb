// Unit tests run in parallel; integration and e2e tests (real zfs-fuse daemons, namespaces, sshd) run one file at a
// time in a single fork, with generous timeouts. Each integration file should still use its own lab id.
// The openzfs project runs on real OpenZFS in the VM labs (tests/openzfs/global-setup.ts boots one per lane once for all
// its files, tests/openzfs/lanes.ts); without the cached image it is skipped loudly, and HOZO_OPENZFS=0 turns it off.
import { defineConfig } from 'vitest/config';
import LongestFirst from './tests/openzfs/lanes.js';

const slow = ['tests/integration/**/*.test.ts', 'tests/e2e/**/*.test.ts', 'tests/lab/**/*.test.ts'];
const openzfs = ['tests/openzfs/**/*.test.ts'];

export default defineConfig({
  test: {
    // A root option: orders the openzfs files for its lanes, longest first (tests/openzfs/lanes.ts).
    sequence: { sequencer: LongestFirst },
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['tests/**/*.test.ts', 'src/**/*.test.ts', 'agent/**/*.test.ts'],
          exclude: ['**/node_modules/**', 'dist/**', ...slow, ...openzfs],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: slow,
          exclude: ['**/node_modules/**', 'dist/**'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
      {
        extends: true,
        test: {
          name: 'openzfs',
          include: openzfs,
          exclude: ['**/node_modules/**', 'dist/**'],
          globalSetup: ['tests/openzfs/global-setup.ts'],
          // Emulated CPUs: an SSH handshake takes ~3 s, a cold boot ~1 min.
          testTimeout: 600_000,
          hookTimeout: 600_000,
          // One file at a time per lane, each lane on its own lab, longest files first; how many lanes run at once is
          // --maxWorkers (scripts/test.sh), which vitest takes from the command line, not from a project.
          pool: 'forks',
          sequence: { concurrent: false },
        },
      },
    ],
  },
});
