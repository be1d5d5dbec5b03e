// A SharedWorker that holds one event stream per session for all tabs of
// a browser profile and forwards what it receives to that session's tabs
// only (two tabs logged in as different users never see each other's).
// Any of them may ask it to reconnect at once ("Retry now").

import { Natter } from '/sdk/natter.js';
import { resumableStream } from './stream.js';

/** token → { ports, stop, state, ready } */
const streams = new Map();
/** port → token */
const tokenOf = new Map();

function send(port, handler, ...args) {
  port.postMessage({ handler, args });
}

function start(port, { token, baseUrl }) {
  leave(port);
  tokenOf.set(port, token);
  const existing = streams.get(token);
  if (existing) {
    existing.ports.add(port);
    // A tab that joins a running stream gets its current state.
    if (existing.state) send(port, 'onState', existing.state);
    if (existing.ready) send(port, 'onReady');
    return;
  }
  const stream = { ports: new Set([port]), state: null, ready: false, events: null };
  streams.set(token, stream);
  const live = () => streams.get(token) === stream;
  const broadcast = (handler, ...args) => {
    if (!live()) return; // callbacks of a stream already stopped are dropped
    for (const p of stream.ports) send(p, handler, ...args);
  };
  const client = new Natter({ baseUrl, token });
  stream.events = resumableStream(client, {
    onReady: (cursor) => {
      stream.ready = true;
      broadcast('onReady', cursor);
    },
    onEvents: (batch) => broadcast('onEvents', batch),
    onState: (state) => {
      stream.state = state;
      broadcast('onState', state);
    },
    onResync: () => broadcast('onResync'),
    onStop: (code) => {
      broadcast('onStop', code);
      if (live()) streams.delete(token);
    },
  });
}

function leave(port) {
  const token = tokenOf.get(port);
  tokenOf.delete(port);
  const stream = token === undefined ? null : streams.get(token);
  if (!stream) return;
  stream.ports.delete(port);
  if (stream.ports.size === 0) {
    streams.delete(token);
    stream.events.stop();
  }
}

/** A tab's "Retry now": the stream its session shares reconnects at once. */
function retry(port) {
  streams.get(tokenOf.get(port))?.events.retryNow();
}

self.onconnect = (event) => {
  const port = event.ports[0];
  port.onmessage = (message) => {
    const data = message.data || {};
    if (data.type === 'start') start(port, data);
    if (data.type === 'bye') leave(port);
    if (data.type === 'retry') retry(port);
  };
  port.start();
};
