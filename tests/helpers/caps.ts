// A Capabilities value for tests that build argv or plans without probing a host: nothing optional, holds on;
// override what the test is about.
import type { Capabilities } from '../../src/zfs/types.js';

export function testCaps(overrides: Partial<Capabilities> = {}): Capabilities {
  return {
    listParsable: true,
    resumeTokens: false,
    bookmarks: false,
    sendFlags: new Set(),
    receiveFlags: new Set(),
    holds: true,
    mbuffer: false,
    pv: false,
    zstd: false,
    implementation: 'test',
    ...overrides,
  };
}
