// The event stream for this tab. Where the browser has SharedWorker, all
// tabs of one browser profile share a single stream (one open poll, not
// one per tab, so ten tabs never hit the six-connections-per-host limit);
// elsewhere each tab runs its own. Either way the stream can be told to
// reconnect at once (stream.js), and which rooms this tab has open: in a
// big room only those looking at it hear presence and typing
// (docs/protocol.md, "Presence"); the worker watches every tab's rooms.

import { resumableStream } from './stream.js';

/**
 * Starts receiving events for `client`'s session; `handlers` are those of
 * `Natter.subscribe`, `watch` the rooms open now. Returns `{ stop,
 * retryNow, watch }`: stop listening, reconnect now rather than after the
 * backoff (the "Retry now" button), and say which rooms are open now.
 */
export function openEvents(client, handlers, { watch = [] } = {}) {
  if (typeof SharedWorker !== 'function') {
    return resumableStream(client, handlers, { watch });
  }
  let worker;
  try {
    worker = new SharedWorker('/app/worker.js', { type: 'module', name: 'natter-events' });
  } catch {
    return resumableStream(client, handlers, { watch });
  }
  let rooms = [...watch];
  const port = worker.port;
  port.onmessage = (message) => {
    const { handler, args } = message.data || {};
    if (typeof handlers[handler] === 'function') handlers[handler](...(args || []));
  };
  port.start();
  const hello = () => port.postMessage({ type: 'start', token: client.token, baseUrl: client.baseUrl, watch: rooms });
  const bye = () => port.postMessage({ type: 'bye' });
  // A page restored from the back/forward cache joins the stream again.
  const back = (event) => {
    if (event.persisted) hello();
  };
  hello();
  addEventListener('pagehide', bye);
  addEventListener('pageshow', back);
  return {
    stop() {
      removeEventListener('pagehide', bye);
      removeEventListener('pageshow', back);
      bye();
      port.close();
    },
    retryNow: () => port.postMessage({ type: 'retry' }),
    watch(roomIds) {
      if (roomIds.join(',') === rooms.join(',')) return;
      rooms = [...roomIds];
      port.postMessage({ type: 'watch', rooms });
    },
  };
}
