// One event stream that can be told to try again at once. The SDK's loop
// waits up to 30 s between attempts while the server is away; "Retry now"
// should not. While the stream waits to reconnect, `retryNow()` ends that
// loop and starts another from the last cursor delivered, so nothing is
// lost or repeated (docs/protocol.md: reconnects are exact). Used by the
// shared worker and, where there is none, by the tab itself.

import { Natter } from '/sdk/natter.js';

/**
 * Like `client.subscribe(handlers)`; returns `{ stop, retryNow }`.
 * Only the newest loop's callbacks reach `handlers`.
 */
export function resumableStream(client, handlers) {
  let cursor = null;
  let state = null;
  let loop = null;
  const inner = client.transport;
  // The cursor of every answer, as the SDK takes it: an answer is handled
  // in the same turn it arrives, so a restart never skips one.
  const transport = {
    name: inner.name,
    async next(natter, from, signal) {
      const answer = await inner.next(natter, from, signal);
      cursor = answer.cursor;
      return answer;
    },
  };
  const start = () => {
    const mine = {};
    loop = mine;
    const live = () => loop === mine;
    const natter = new Natter({ baseUrl: client.baseUrl, token: client.token, transport });
    const relay = (name) => (...args) => {
      if (!live()) return;
      if (name === 'onState') state = args[0];
      // A resync starts from nothing; so would a restart after it.
      if (name === 'onResync') cursor = null;
      handlers[name]?.(...args);
    };
    mine.stop = natter.subscribe({
      onReady: relay('onReady'),
      onEvents: relay('onEvents'),
      onState: relay('onState'),
      onResync: relay('onResync'),
      onStop: relay('onStop'),
    }, { cursor });
  };
  start();
  return {
    stop() {
      const last = loop;
      loop = null;
      last?.stop();
    },
    /** Reconnects at once if the stream is waiting to; else nothing. */
    retryNow() {
      if (!loop || state !== 'reconnecting') return;
      const last = loop;
      start();
      last.stop();
    },
  };
}
