// ntfy: POST the body to the topic URL; title, priority and tags as headers (the title RFC 2047-encoded when not ASCII).
import type { NotifyMessage } from './message.js';
import { encodeHeaderWord } from './message.js';
import { post, readSecretFile } from './http.js';
import type { NtfyChannel } from './schema.js';

export async function sendNtfy(channel: NtfyChannel, message: NotifyMessage): Promise<void> {
  const headers: Record<string, string> = {
    'Content-Type': 'text/plain; charset=utf-8',
    Title: encodeHeaderWord(message.title),
    Priority: message.failed ? 'high' : 'default',
    Tags: message.failed ? 'rotating_light,hozo' : 'white_check_mark,hozo',
  };
  const secrets: string[] = [];
  if (channel.tokenFile !== undefined) {
    const token = await readSecretFile(channel.tokenFile, 'ntfy token');
    headers['Authorization'] = `Bearer ${token}`;
    secrets.push(token);
  }
  await post(channel.url, { headers, body: message.body, timeoutSeconds: channel.timeout, secrets });
}
