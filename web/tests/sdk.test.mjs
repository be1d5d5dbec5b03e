// Tests of the JS SDK against a real natter server, run by Node's own test
// runner. crates/natter/tests/api/sdk.rs starts the server and runs this
// file with NATTER_URL set; by hand:
//   NATTER_URL=http://127.0.0.1:8080 node --test web/tests/sdk.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Natter, NatterError, backoffDelay } from '../sdk/natter.js';

const BASE = process.env.NATTER_URL;
if (!BASE) throw new Error('set NATTER_URL to a running natter server');

const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
let counter = 0;

/** A logged-in client for a new user. */
async function newUser(prefix, options = {}) {
  const name = `${prefix}${run}${counter++}`.slice(0, 32);
  const client = new Natter({ baseUrl: BASE, ...options });
  await client.register(name, 'password-1');
  const { user } = await client.login(name, 'password-1');
  client.userId = user.id;
  return client;
}

/** Resolves with the first value `predicate` accepts, or rejects after `ms`. */
function waitFor(register, predicate, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms);
    register((value) => {
      if (predicate(value)) {
        clearTimeout(timer);
        resolve(value);
      }
    });
  });
}

test('a subscribed client receives a message within 2 s of its send', async () => {
  const alice = await newUser('alice');
  const bob = await newUser('bob');
  const room = await alice.createRoom('sdk room', { visibility: 'public' });
  await bob.joinRoom(room.id);

  let onEvents = () => {};
  let onReady = () => {};
  const ready = waitFor((f) => { onReady = f; }, () => true);
  const stop = bob.subscribe({
    onReady: (c) => onReady(c),
    onEvents: (batch) => onEvents(batch),
  });
  try {
    await ready;
    const arrived = waitFor(
      (f) => { onEvents = f; },
      (batch) => batch.events.some((e) => e.type === 'message' && e.text === 'hello [微笑]'),
      2000,
    );
    const sent = await alice.send(room.id, 'hello [微笑]');
    assert.equal(sent.type, 'message');
    assert.equal(sent.sender_id, alice.userId);
    const batch = await arrived;
    const message = batch.events.find((e) => e.type === 'message');
    assert.equal(message.seq, sent.seq);
    assert.equal(message.room_id, room.id);
  } finally {
    stop();
  }
});

test('a send whose answer was lost is retried with the same id and stored once', async () => {
  let dropNextAnswer = true;
  const lossyFetch = async (url, init) => {
    const response = await fetch(url, init);
    if (init?.method === 'POST' && url.endsWith('/messages') && dropNextAnswer) {
      dropNextAnswer = false;
      throw new TypeError('connection reset (simulated after the server answered)');
    }
    return response;
  };
  const alice = await newUser('carol', { fetch: lossyFetch });
  const room = await alice.createRoom('retries');
  const message = await alice.send(room.id, 'exactly once', { clientMsgId: `once-${run}` });
  assert.equal(message.text, 'exactly once');
  const page = await alice.history(room.id);
  const messages = page.messages.filter((e) => e.type === 'message');
  assert.equal(messages.length, 1, 'the retry did not store a second message');
});

test('refusals are not retried and carry the API code', async () => {
  const alice = await newUser('dave');
  const room = await alice.createRoom('refusals');
  await assert.rejects(alice.send(room.id, '   '), (e) => {
    assert.ok(e instanceof NatterError);
    assert.equal(e.status, 400);
    assert.equal(e.code, 'empty_text');
    return true;
  });
  await assert.rejects(alice.send(999999999, 'hi'), (e) => e.code === 'room_not_found');
});

test('logging out stops the stream with session_ended', async () => {
  const erin = await newUser('erin');
  const other = new Natter({ baseUrl: BASE, token: erin.token });
  let onReady = () => {};
  let onStop = () => {};
  const ready = waitFor((f) => { onReady = f; }, () => true);
  const stopped = waitFor((f) => { onStop = f; }, () => true);
  const states = [];
  other.subscribe({
    onReady: (c) => onReady(c),
    onStop: (code) => onStop(code),
    onState: (s) => states.push(s),
  });
  await ready;
  await new Promise((r) => setTimeout(r, 200));
  await erin.logout();
  assert.equal(await stopped, 'session_ended');
  assert.deepEqual(states.slice(-1), ['stopped']);
});

test('a cursor the server cannot serve leads to a resync, then a fresh start', async () => {
  const frank = await newUser('frank');
  const calls = [];
  let onReady = () => {};
  const ready = waitFor((f) => { onReady = f; }, () => true);
  const stop = frank.subscribe(
    {
      onResync: () => calls.push('resync'),
      onReady: (c) => { calls.push('ready'); onReady(c); },
    },
    { cursor: 'not-a-cursor' },
  );
  try {
    await ready;
    assert.deepEqual(calls, ['resync', 'ready']);
  } finally {
    stop();
  }
});

test('an unreachable server means reconnecting, with jittered backoff', async () => {
  const client = new Natter({ baseUrl: 'http://127.0.0.1:9', token: 'x' });
  const states = [];
  let onState = () => {};
  const reconnecting = waitFor((f) => { onState = f; }, (s) => s === 'reconnecting');
  const stop = client.subscribe({ onState: (s) => { states.push(s); onState(s); } });
  await reconnecting;
  stop();
  assert.equal(states[0], 'connecting');
  for (let attempt = 0; attempt < 12; attempt++) {
    const delay = backoffDelay(attempt);
    assert.ok(delay >= 0 && delay <= Math.min(30000, 500 * 2 ** attempt));
  }
  assert.equal(backoffDelay(3, { random: () => 0.5 }), 2000);
});
