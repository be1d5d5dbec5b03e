// One event stream that can be told to try again at once. The SDK's loop
// waits up to 30 s between attempts while the server is away; "Retry now"
// should not. The SDK's own `retryNow()` ends that wait, and the same
// loop polls again from the last cursor it handled, so nothing is lost
// or repeated (docs/protocol.md: reconnects are exact). Used by the
// shared worker and, where there is none, by the tab itself.

/** What one poll may watch at most (docs/protocol.md). */
export const MAX_WATCH = 8;

/**
 * The rooms one stream watches for the tabs that share it: `lists` holds
 * each tab's open rooms, the tab that changed room last first, so that
 * past 8 rooms the ones just opened are those watched.
 */
export function watchUnion(lists) {
  const rooms = new Set();
  for (const ids of lists) {
    for (const id of ids) if (rooms.size < MAX_WATCH) rooms.add(id);
  }
  return [...rooms];
}

/**
 * Like `client.subscribe(handlers, { watch })`, on a client of its own
 * that keeps the token it began with; returns `{ stop, retryNow, watch }`.
 * Nothing reaches `handlers` once stopped (not even the loop's last
 * "stopped").
 */
export function resumableStream(client, handlers, { watch = [] } = {}) {
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
  }, { watch });
  return {
    stop() {
      live = false;
      stop();
    },
    /** Reconnects at once if the stream waits to; else nothing. */
    retryNow() {
      if (live) stop.retryNow();
    },
    /** The rooms open (at most 8): in a big room only those looking at
     *  it hear presence and typing (docs/protocol.md, "Presence"). */
    watch(roomIds) {
      if (live) stop.watch(roomIds);
    },
  };
}
