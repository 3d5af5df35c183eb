// Pushover: a form POST to the messages API with the application token and the user key, both read from files.
import type { NotifyMessage } from './message.js';
import { shorten } from './message.js';
import { NotifyError, post, readSecretFile } from './http.js';
import type { PushoverChannel } from './schema.js';

export async function sendPushover(channel: PushoverChannel, message: NotifyMessage): Promise<void> {
  const [token, user] = await Promise.all([readSecretFile(channel.tokenFile, 'pushover token'), readSecretFile(channel.userFile, 'pushover user key')]);
  const form = new URLSearchParams({
    token,
    user,
    title: shorten(message.title, 250),
    message: shorten(message.body, 1024),
    priority: message.failed ? '1' : '0',
  });
  const text = await post(channel.apiUrl, {
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
    timeoutSeconds: channel.timeout,
    secrets: [token, user],
  });
  // The API answers {"status":1,...} on success; anything else is a refusal even with a 2xx.
  try {
    const answer = JSON.parse(text) as { status?: unknown };
    if (answer.status !== 1) throw new NotifyError(`pushover refused the message (status ${String(answer.status)})`);
  } catch (e) {
    if (e instanceof NotifyError) throw e;
    throw new NotifyError('pushover answered something that is not JSON');
  }
}
