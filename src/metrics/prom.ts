// The three prom-client classes a textfile needs, loaded without the rest of the package. Its index requires every
// metric type, the push gateway, the cluster aggregator and the default process metrics, and those load
// @opentelemetry/api: 2.2 s of CPU per `hozo run` in the OpenZFS lab's emulated VMs (node --cpu-prof), a third of a
// no-op run's own work there, and tens to hundreds of milliseconds on a Raspberry Pi — for nothing a textfile uses.
// prom-client's lib files are CommonJS and the package has no exports map, so they are required directly; the
// types are the package's own (tests/unit/metrics-prom.test.ts checks these are the classes its index exports).
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

const require = createRequire(import.meta.url);

export const Registry: typeof PromClient.Registry = require('prom-client/lib/registry.js');
export const Gauge: typeof PromClient.Gauge = require('prom-client/lib/gauge.js');
export const Counter: typeof PromClient.Counter = require('prom-client/lib/counter.js');
