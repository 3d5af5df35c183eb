// Unit tests run in parallel; integration and e2e tests (real zfs-fuse daemons, namespaces, sshd) run one file at a
// time in a single fork, with generous timeouts. Each integration file should still use its own lab id.
// The openzfs project runs on real OpenZFS in the VM lab (tests/openzfs/global-setup.ts boots it once for all its
// files); without the cached image it is skipped loudly, and HOZO_OPENZFS=0 turns it off.
import { defineConfig } from 'vitest/config';

const slow = ['tests/integration/**/*.test.ts', 'tests/e2e/**/*.test.ts', 'tests/lab/**/*.test.ts'];
const openzfs = ['tests/openzfs/**/*.test.ts'];

export default defineConfig({
  test: {
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
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
          sequence: { concurrent: false },
        },
      },
    ],
  },
});
