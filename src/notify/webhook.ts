// Webhook: the run report as JSON, POSTed as is (the receiver gets every field `hozo run --json` prints).
import { post, readSecretFile } from './http.js';
import type { NotifyReport } from './message.js';
import type { WebhookChannel } from './schema.js';

export async function sendWebhook(channel: WebhookChannel, report: NotifyReport): Promise<void> {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'User-Agent': 'hozo',
    'X-Hozo-Job': report.job,
    'X-Hozo-Result': report.result,
  };
  const secrets: string[] = [];
  if (channel.tokenFile !== undefined) {
    const token = await readSecretFile(channel.tokenFile, 'webhook token');
    headers['Authorization'] = `Bearer ${token}`;
    secrets.push(token);
  }
  await post(channel.url, { headers, body: JSON.stringify(report), timeoutSeconds: channel.timeout, secrets });
}
