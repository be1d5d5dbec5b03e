// One event stream that can be told to try again at once. The SDK's loop
// waits up to 30 s between attempts while the server is away; "Retry now"
// should not. The SDK's own `retryNow()` ends that wait, and the same
// loop polls again from the last cursor it handled, so nothing is lost
// or repeated (docs/protocol.md: reconnects are exact). Used by the
// shared worker and, where there is none, by the tab itself.

/**
 * Like `client.subscribe(handlers)`, on a client of its own that keeps
 * the token it began with; returns `{ stop, retryNow }`. Nothing reaches
 * `handlers` once stopped (not even the loop's last "stopped").
 */
export function resumableStream(client, handlers) {
  let live = true;
  const relay = (name) => (...args) => {
    if (live) handlers[name]?.(...args);
  };
  const own = new client.constructor({
    baseUrl: client.baseUrl, token: client.token, transport: client.transport, fetch: client.fetch,
  });
  const stop = own.subscribe({
    onReady: relay('onReady'),
    onEvents: relay('onEvents'),
    onState: relay('onState'),
    onResync: relay('onResync'),
    onStop: relay('onStop'),
  });
  return {
    stop() {
      live = false;
      stop();
    },
    /** Reconnects at once if the stream waits to; else nothing. */
    retryNow() {
      if (live) stop.retryNow();
    },
  };
}
