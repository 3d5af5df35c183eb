// The config's top-level `notify:` list. Secrets (tokens, user keys) live in files named here, never in the config.
import { z } from 'zod';
import { parseDuration } from '../config/duration.js';
import { absolutePath, checked, httpUrlProblem } from '../config/fields.js';

const httpUrl = checked(httpUrlProblem).refine(
  (v) => {
    try {
      const u = new URL(v);
      return u.username === '' && u.password === '';
    } catch {
      return true;
    }
  },
  { message: 'a URL with user:password@ is refused (it would end up in logs and errors); put the token in tokenFile' },
);

// An address that can go on sendmail's command line: a leading "-" would read as an option.
const emailAddress = z.email({ message: 'expected an e-mail address like backup@example.org' }).refine((a) => !a.startsWith('-'), {
  message: 'an e-mail address must not start with "-"',
});

const on = z.enum(['failure', 'success', 'always']).default('failure');

/** Longest wait for one notification: a run must not hang on a dead endpoint (and timers take whole ms). */
export const MAX_NOTIFY_TIMEOUT_SECONDS = 600;

const timeout = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    const s = parseDuration(v);
    if (s === undefined || s <= 0) {
      ctx.addIssue({ code: 'custom', message: 'expected timeout as seconds or a duration like "10s", "1m"' });
      return z.NEVER;
    }
    if (s < 0.001 || s > MAX_NOTIFY_TIMEOUT_SECONDS) {
      ctx.addIssue({ code: 'custom', message: `expected a timeout of 1 ms to ${MAX_NOTIFY_TIMEOUT_SECONDS / 60} minutes (got ${s} s)` });
      return z.NEVER;
    }
    // Whole milliseconds: what the HTTP and sendmail timers take.
    return Math.round(s * 1000) / 1000;
  })
  .default(15);

export const ntfyChannelSchema = z
  .object({
    type: z.literal('ntfy'),
    /** The topic's URL, e.g. https://ntfy.sh/my-backups-3f9c. */
    url: httpUrl.describe("The topic's URL, e.g. https://ntfy.sh/my-backups-3f9c."),
    /** A file holding an access token, sent as `Authorization: Bearer …`. */
    tokenFile: absolutePath.optional().describe('A file holding an access token, sent as `Authorization: Bearer …`.'),
    on,
    timeout,
  })
  .strict();

export const pushoverChannelSchema = z
  .object({
    type: z.literal('pushover'),
    userFile: absolutePath,
    tokenFile: absolutePath,
    apiUrl: httpUrl.default('https://api.pushover.net/1/messages.json'),
    on,
    timeout,
  })
  .strict();

export const emailChannelSchema = z
  .object({
    type: z.literal('email'),
    to: z.union([emailAddress, z.array(emailAddress).min(1, 'expected at least one address')]).transform((v) => (Array.isArray(v) ? v : [v])),
    from: emailAddress.optional(),
    /** A sendmail-compatible command (sendmail, msmtp, nullmailer, OpenSMTPD…); on NixOS /run/wrappers/bin/sendmail. */
    sendmail: absolutePath
      .default('/usr/sbin/sendmail')
      .describe('A sendmail-compatible command (sendmail, msmtp, nullmailer, OpenSMTPD…); on NixOS /run/wrappers/bin/sendmail.'),
    on,
    timeout,
  })
  .strict();

export const webhookChannelSchema = z
  .object({
    type: z.literal('webhook'),
    url: httpUrl,
    /** A file holding a token, sent as `Authorization: Bearer …`. */
    tokenFile: absolutePath.optional().describe('A file holding a token, sent as `Authorization: Bearer …`.'),
    on,
    timeout,
  })
  .strict();

export const notifyChannelSchema = z.discriminatedUnion('type', [ntfyChannelSchema, pushoverChannelSchema, emailChannelSchema, webhookChannelSchema]);

/** The config's top-level `notify:` list (absent: no notifications). */
export const notifySchema = z.array(notifyChannelSchema).default([]);

export type NotifyChannel = z.output<typeof notifyChannelSchema>;
export type NotifyConfig = z.output<typeof notifySchema>;
export type NtfyChannel = z.output<typeof ntfyChannelSchema>;
export type PushoverChannel = z.output<typeof pushoverChannelSchema>;
export type EmailChannel = z.output<typeof emailChannelSchema>;
export type WebhookChannel = z.output<typeof webhookChannelSchema>;
