// Unit tests run in parallel; integration and e2e tests (real zfs-fuse daemons, namespaces, sshd) run one file at a
// time in a single fork, with generous timeouts. Each integration file should still use its own lab id.
import { defineConfig } from 'vitest/config';

const slow = ['tests/integration/**/*.test.ts', 'tests/e2e/**/*.test.ts', 'tests/lab/**/*.test.ts'];

export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['tests/**/*.test.ts', 'src/**/*.test.ts', 'agent/**/*.test.ts'],
          exclude: ['**/node_modules/**', 'dist/**', ...slow],
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
    ],
  },
});
