// Publishing into JetStream until it is stored: a publish is retried with the same
// message id (JetStream drops the second copy within its duplicate window), so a
// retry after a lost acknowledgement never makes two messages.

import type { JetStreamClient, PubAck } from '@nats-io/jetstream';

export async function publishStored(js: JetStreamClient, subject: string, data: Uint8Array, msgID: string, until: () => boolean, timeoutMs = 5000): Promise<PubAck> {
  for (;;) {
    try {
      return await js.publish(subject, data, { msgID, timeout: timeoutMs });
    } catch (err) {
      if (!until()) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
