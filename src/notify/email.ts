// E-mail through a sendmail-compatible command: recipients as argv, the message on stdin. No shell involved.
import { execa, ExecaError } from 'execa';
import { hostname } from 'node:os';
import type { NotifyMessage } from './message.js';
import { encodeHeaderWord } from './message.js';
import { NotifyError } from './http.js';
import type { EmailChannel } from './schema.js';

/** The RFC 5322 message (LF line ends: sendmail converts for the wire). */
export function buildEmail(channel: Pick<EmailChannel, 'to' | 'from'>, message: NotifyMessage, date: Date = new Date()): string {
  const headers = [
    ...(channel.from !== undefined ? [`From: ${channel.from}`] : []),
    `To: ${channel.to.join(', ')}`,
    `Subject: ${encodeHeaderWord(message.title, '\n ')}`,
    `Date: ${date.toUTCString().replace(/GMT$/, '+0000')}`,
    `Message-ID: <hozo.${date.getTime()}.${process.pid}@${hostname() || 'localhost'}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    'Auto-Submitted: auto-generated',
    'X-Hozo-Result: ' + (message.failed ? 'failed' : 'ok'),
  ];
  return `${headers.join('\n')}\n\n${message.body}\n`;
}

/** argv after the command: -i (a lone "." does not end the message), -f envelope sender, then the recipients. */
export function sendmailArgs(channel: Pick<EmailChannel, 'to' | 'from'>): string[] {
  return ['-i', ...(channel.from !== undefined ? ['-f', channel.from] : []), ...channel.to];
}

export async function sendEmail(channel: EmailChannel, message: NotifyMessage): Promise<void> {
  try {
    await execa(channel.sendmail, sendmailArgs(channel), {
      input: buildEmail(channel, message),
      timeout: Math.max(1, Math.round(channel.timeout * 1000)),
      forceKillAfterDelay: 2000,
      stdout: 'pipe',
      stderr: 'pipe',
      stripFinalNewline: true,
      env: { LC_ALL: 'C' },
      extendEnv: true,
    });
  } catch (e) {
    if (e instanceof ExecaError) {
      const why = e.timedOut
        ? `timed out after ${channel.timeout}s`
        : e.code !== undefined && e.exitCode === undefined
          ? `cannot run (${e.code})`
          : `exited with ${e.exitCode !== undefined ? `code ${e.exitCode}` : `signal ${e.signal ?? '?'}`}`;
      const stderr =
        String(e.stderr ?? '')
          .split('\n')[0]
          ?.trim()
          .slice(0, 200) ?? '';
      throw new NotifyError(`${channel.sendmail} ${why}${stderr ? `: ${stderr}` : ''}`, { cause: e });
    }
    throw new NotifyError(`${channel.sendmail} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}
