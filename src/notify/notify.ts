// Sends the run's notification to every configured channel. A channel that fails is logged and counted; nothing
// here ever throws: a notification problem must not turn a good backup into a failed run.
import type { JobReport } from '../job/report.js';
import type { Logger } from '../util/log.js';
import { sendEmail } from './email.js';
import { redactUrl } from './http.js';
import { formatMessage, type NotifyReport } from './message.js';
import { sendNtfy } from './ntfy.js';
import { sendPushover } from './pushover.js';
import type { NotifyChannel } from './schema.js';
import { sendWebhook } from './webhook.js';

/** Whether a channel's `on` asks for this run (dry runs never notify). */
export function wantsNotification(channel: Pick<NotifyChannel, 'on'>, report: Pick<JobReport, 'result' | 'dryRun'>): boolean {
  if (report.dryRun) return false;
  const ok = report.result === 'ok';
  return channel.on === 'always' || (channel.on === 'success' ? ok : !ok);
}

/** "ntfy https://ntfy.sh", "email to a@b" — what a log line may say about a channel (no paths, no tokens). */
export function describeChannel(channel: NotifyChannel): string {
  switch (channel.type) {
    case 'ntfy':
      return `ntfy ${redactUrl(channel.url)}`;
    case 'pushover':
      return `pushover ${redactUrl(channel.apiUrl)}`;
    case 'email':
      return `email to ${channel.to.join(', ')}`;
    case 'webhook':
      return `webhook ${redactUrl(channel.url)}`;
  }
}

async function send(channel: NotifyChannel, report: NotifyReport): Promise<void> {
  const message = formatMessage(report);
  switch (channel.type) {
    case 'ntfy':
      return sendNtfy(channel, message);
    case 'pushover':
      return sendPushover(channel, message);
    case 'email':
      return sendEmail(channel, message);
    case 'webhook':
      return sendWebhook(channel, report);
  }
}

/**
 * Notifies every channel whose `on` matches the run, in parallel. Resolves to the number of channels that failed
 * (the caller adds it to hozo_notify_failures_total); never rejects.
 */
export async function notifyAll(channels: readonly NotifyChannel[], report: NotifyReport, log: Logger): Promise<number> {
  const chosen = channels.filter((c) => wantsNotification(c, report));
  const results = await Promise.allSettled(chosen.map((c) => send(c, report)));
  let failures = 0;
  results.forEach((r, i) => {
    const what = describeChannel(chosen[i]!);
    if (r.status === 'fulfilled') {
      log.info(`notified via ${what}`);
    } else {
      failures++;
      const reason = r.reason instanceof Error ? r.reason.message : String(r.reason);
      log.error(`notification via ${what} failed: ${reason}`);
    }
  });
  return failures;
}
