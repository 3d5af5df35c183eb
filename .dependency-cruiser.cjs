// The import rules of the code base, checked by tests/unit/architecture.test.ts (dependency-cruiser) on every test run.
// See README "Architecture" for the layers.
//
// The core is what both binaries share: errors, the agent protocol (src/protocol), the zfs layer (argv, names,
// inventory, capabilities, errors), the runners and quoting, process and file helpers, the config-reading primitives
// and the stream stages. hozo-agent runs on the box, which is assumed compromised one day: it may import only the
// core, and the core nothing but itself, so no controller code (jobs, wake, config schema, notifications, metrics,
// the lab) is ever loaded on the box.
const CORE =
  '^src/(errors|version)[.]ts$|^src/protocol/|^src/util/|^src/zfs/|^src/transport/(local|quote|runner|batch)[.]ts$|^src/state/files[.]ts$|' +
  '^src/config/(cache|read|fields|issues|shown|rules|addresses|mac|duration)[.]ts$|^src/pipeline/(pipeline|transfer)[.]ts$';

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycle anywhere, type-only imports included: every module can be read after the ones it imports.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'agent-imports-only-the-core',
      severity: 'error',
      comment: 'hozo-agent (agent/) imports from src/ only the shared core.',
      from: { path: '^agent/' },
      to: { path: '^src/', pathNot: CORE },
    },
    {
      name: 'core-imports-only-the-core',
      severity: 'error',
      comment: 'The core imports nothing outside itself (so what the agent loads stays the core).',
      from: { path: CORE },
      to: { path: '^(src|agent)/', pathNot: CORE },
    },
    {
      name: 'lab-only-for-demo',
      severity: 'error',
      comment: 'The test lab (src/lab) is loaded by `hozo demo` alone, never by another command or by the agent.',
      from: { path: '^(src|agent)/', pathNot: '^src/lab/|^src/cli/commands/demo[.]ts$' },
      to: { path: '^src/lab/' },
    },
    {
      name: 'controller-never-imports-agent',
      severity: 'error',
      comment: 'The controller talks to the agent over its protocol, never by importing its code (the man-page builder and the lab read it).',
      from: { path: '^src/', pathNot: '^src/(lab|man)/' },
      to: { path: '^agent/' },
    },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
  },
};
