// A SharedWorker that holds one event stream for all tabs of a browser
// profile and forwards everything it receives to each of them.

import { Natter } from '/sdk/natter.js';

const ports = new Set();
let stream = null; // { token, stop, state, ready }

function broadcast(handler, ...args) {
  for (const port of ports) port.postMessage({ handler, args });
}

function start(port, { token, baseUrl }) {
  ports.add(port);
  if (stream && stream.token !== token) {
    stream.stop();
    stream = null;
  }
  if (stream) {
    // A tab that joins a running stream gets its current state.
    if (stream.state) port.postMessage({ handler: 'onState', args: [stream.state] });
    if (stream.ready) port.postMessage({ handler: 'onReady', args: [] });
    return;
  }
  const client = new Natter({ baseUrl, token });
  const current = { token, state: null, ready: false };
  stream = current;
  current.stop = client.subscribe({
    onReady: (cursor) => {
      current.ready = true;
      broadcast('onReady', cursor);
    },
    onEvents: (batch) => broadcast('onEvents', batch),
    onState: (state) => {
      current.state = state;
      broadcast('onState', state);
    },
    onResync: () => broadcast('onResync'),
    onStop: (code) => {
      if (stream === current) stream = null;
      broadcast('onStop', code);
    },
  });
}

function leave(port) {
  ports.delete(port);
  if (ports.size === 0 && stream) {
    stream.stop();
    stream = null;
  }
}

self.onconnect = (event) => {
  const port = event.ports[0];
  port.onmessage = (message) => {
    const data = message.data || {};
    if (data.type === 'start') start(port, data);
    if (data.type === 'bye') leave(port);
  };
  port.start();
};
