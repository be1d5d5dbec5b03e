// A SharedWorker that holds one event stream per session for all tabs of
// a browser profile and forwards what it receives to that session's tabs
// only (two tabs logged in as different users never see each other's).
// Any of them may ask it to reconnect at once ("Retry now"). Each tab
// says which room it has open, and the stream watches them all (in a big
// room only those looking at it hear presence and typing).

import { Natter } from '/sdk/natter.js';
import { resumableStream, watchUnion } from './stream.js';

/** token → { ports, stop, state, ready } */
const streams = new Map();
/** port → token */
const tokenOf = new Map();
/** port → the rooms its tab has open; the latest to change comes last. */
const roomsOf = new Map();

function send(port, handler, ...args) {
  port.postMessage({ handler, args });
}

/** The rooms a stream's tabs have open (at most 8, the latest first). */
function watched(stream) {
  return watchUnion([...roomsOf].reverse().filter(([port]) => stream.ports.has(port)).map(([, ids]) => ids));
}

/** A tab opened or closed a room: the stream its session shares watches anew. */
function watch(port, rooms) {
  if (!tokenOf.has(port)) return; // said goodbye: it watches nothing
  roomsOf.delete(port);
  roomsOf.set(port, Array.isArray(rooms) ? rooms : []);
  const stream = streams.get(tokenOf.get(port));
  stream?.events.watch(watched(stream));
}

function start(port, { token, baseUrl, watch: rooms }) {
  leave(port);
  tokenOf.set(port, token);
  roomsOf.set(port, Array.isArray(rooms) ? rooms : []);
  const existing = streams.get(token);
  if (existing) {
    existing.ports.add(port);
    existing.events.watch(watched(existing));
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
  }, { watch: watched(stream) });
}

function leave(port) {
  const token = tokenOf.get(port);
  tokenOf.delete(port);
  roomsOf.delete(port);
  const stream = token === undefined ? null : streams.get(token);
  if (!stream) return;
  stream.ports.delete(port);
  if (stream.ports.size === 0) {
    streams.delete(token);
    stream.events.stop();
  } else {
    stream.events.watch(watched(stream));
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
    if (data.type === 'watch') watch(port, data.rooms);
  };
  port.start();
};
