// The JSON API of `hozo serve` as an OpenAPI 3.1 document (schemas/openapi.json, generated with the output schemas by
// write-schemas.ts; a test keeps the committed file equal to this, and the web tests check each real response against
// the schema this document names for its path and status).
import { jsonSchemas, type OUTPUT_SCHEMAS } from './schemas.js';

type SchemaName = keyof typeof OUTPUT_SCHEMAS;

const json = (name: SchemaName, description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } },
});
const error = (description: string) => json('error', description);
const nameParam = (name: 'job' | 'host') => ({
  name,
  in: 'path',
  required: true,
  schema: { type: 'string' },
  description: `The ${name}'s name in the config.`,
});

/** What a refused request answers, on every path. */
const refusals = {
  '401': error('A token is configured and the request does not carry it.'),
  '421': error('A server without a token answers only to its loopback names (no DNS rebinding).'),
  '429': error('Too many requests from this client.'),
};
const changing = {
  ...refusals,
  '403': error('Another origin, a cross-site request, or neither the bearer token nor the CSRF token (X-Hozo-CSRF).'),
  '413': error('The request body is over 16 KiB.'),
};

export function openApi(): Record<string, unknown> {
  const schemas = jsonSchemas();
  return {
    openapi: '3.1.0',
    info: {
      title: 'hozo serve',
      version: '1',
      description:
        'The JSON API of the Hōzō dashboard. Every answer carries `version` (1). Without --token-file the server listens on loopback only; with one, every request carries `Authorization: Bearer <token>`. A POST without the bearer token needs the CSRF token of GET /api/csrf in X-Hozo-CSRF, and no other Origin.',
    },
    components: {
      schemas,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, csrf: { type: 'apiKey', in: 'header', name: 'X-Hozo-CSRF' } },
    },
    security: [{}, { bearer: [] }],
    paths: {
      '/api/status': {
        get: {
          summary: 'Each job’s last run and each box’s state (as `hozo status --json`; never wakes a box)',
          responses: { '200': json('status', 'The status.'), ...refusals },
        },
      },
      '/api/jobs': { get: { summary: 'The configured jobs (as `hozo jobs list --json`)', responses: { '200': json('jobs-list', 'The jobs.'), ...refusals } } },
      '/api/csrf': { get: { summary: 'The CSRF token for X-Hozo-CSRF', responses: { '200': json('csrf', 'The token of this server process.'), ...refusals } } },
      '/api/jobs/{job}/runs': {
        get: {
          summary: 'The job’s kept runs, newest first (at most 100)',
          parameters: [nameParam('job')],
          responses: { '200': json('job-runs', 'The runs.'), '404': error('No such job.'), ...refusals },
        },
      },
      '/api/jobs/{job}/run': {
        post: {
          summary: 'Start `hozo run <job>` (the job’s lock, state, history and metrics as a timer run)',
          parameters: [nameParam('job')],
          security: [{ bearer: [] }, { csrf: [] }],
          responses: {
            '202': json('run-started', 'Started.'),
            '404': error('No such job.'),
            '409': error('A run of the job is going on (LOCKED), started here, by a timer or by hand.'),
            ...changing,
          },
        },
      },
      '/api/hosts/{host}/wake': {
        post: {
          summary: 'Wake the box (as `hozo wake <host> --json`)',
          parameters: [nameParam('host')],
          security: [{ bearer: [] }, { csrf: [] }],
          responses: {
            '200': json('host-action', 'Woken (or, wake: none, nothing to do).'),
            '404': error('No such host.'),
            '409': error('A wake or shutdown of the box is under way (BUSY).'),
            '502': error('The box could not be reached (UNREACHABLE).'),
            ...changing,
          },
        },
      },
      '/api/hosts/{host}/shutdown': {
        post: {
          summary: 'Put the box to sleep (as `hozo shutdown <host> --json`; the agent refuses while receives, scrubs or leases run)',
          parameters: [nameParam('host')],
          security: [{ bearer: [] }, { csrf: [] }],
          responses: {
            '200': json('host-action', 'Shut down, or already asleep.'),
            '400': error('The host has shutdown: none.'),
            '404': error('No such host.'),
            '409': json('host-action', 'Refused or failed (shutdown says which; shutdownDetail why).'),
            ...changing,
          },
        },
      },
      '/api/events': {
        get: {
          summary:
            'Server-Sent Events: `status` (on connect), `run` (started, finished), `progress` (once a second while a run transfers: job, dataset, bytes, seconds, estimate, text) and `host` (a wake or shutdown ended)',
          responses: {
            '200': { description: 'An event stream.', content: { 'text/event-stream': { schema: { type: 'string' } } } },
            '503': error('Too many event streams.'),
            ...refusals,
          },
        },
      },
    },
  };
}
