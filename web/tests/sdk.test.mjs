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

// --- editable messages: edit, delete, reactions, replies -------------------

/** A room of `owner`'s that `member` has joined. */
async function sharedRoom(title) {
  const owner = await newUser('own');
  const member = await newUser('mem');
  const room = await owner.createRoom(title, { visibility: 'public' });
  await member.joinRoom(room.id);
  return { owner, member, room };
}

test('editMessage changes the text once; only the sender may, and history shows it', async () => {
  const { owner, member, room } = await sharedRoom('edits');
  const sent = await member.send(room.id, 'teh first line');
  const edited = await member.editMessage(room.id, sent.seq, 'the first line');
  assert.equal(edited.changed, true);
  assert.equal(edited.message.text, 'the first line');
  assert.equal(typeof edited.message.edited_at, 'number');
  const again = await member.editMessage(room.id, sent.seq, 'the first line');
  assert.equal(again.changed, false, 'the same text again changes nothing');
  await assert.rejects(owner.editMessage(room.id, sent.seq, 'not mine'), (e) => e.status === 403 && e.code === 'forbidden');
  await assert.rejects(member.editMessage(room.id, 999999, 'x'), (e) => e.status === 404 && e.code === 'message_not_found');
  await assert.rejects(member.editMessage(room.id, sent.seq, '   '), (e) => e.status === 400);
  const page = await owner.history(room.id);
  const shown = page.messages.find((m) => m.seq === sent.seq);
  assert.equal(shown.text, 'the first line');
  assert.equal(shown.edited_at, edited.message.edited_at);
  assert.ok(!page.messages.some((m) => m.type === 'message_edited'), 'edits are not history entries');
});

test('deleteMessage: the sender or the room owner; a deleted message takes no more changes', async () => {
  const { owner, member, room } = await sharedRoom('deletions');
  const mine = await owner.send(room.id, 'the owner speaks');
  const theirs = await member.send(room.id, 'a member speaks');
  await assert.rejects(member.deleteMessage(room.id, mine.seq), (e) => e.status === 403 && e.code === 'forbidden');
  const gone = await owner.deleteMessage(room.id, theirs.seq);
  assert.equal(gone.changed, true);
  assert.equal(gone.message.deleted, true);
  assert.equal(gone.message.text, '');
  assert.equal((await owner.deleteMessage(room.id, theirs.seq)).changed, false);
  await assert.rejects(member.editMessage(room.id, theirs.seq, 'back'), (e) => e.status === 409 && e.code === 'message_deleted');
  await assert.rejects(owner.react(room.id, theirs.seq, '👍'), (e) => e.status === 409 && e.code === 'message_deleted');
  const shown = (await member.history(room.id)).messages.find((m) => m.seq === theirs.seq);
  assert.equal(shown.deleted, true);
  assert.equal(shown.text, '');
  const listed = (await member.rooms()).find((r) => r.id === room.id);
  assert.equal(listed.last_message.seq, theirs.seq);
  assert.equal(listed.last_message.deleted, true);
});

test('react and unreact: chips in the order they first appeared, codes and emoji alike', async () => {
  const { owner, member, room } = await sharedRoom('reactions');
  const sent = await owner.send(room.id, 'vote');
  assert.equal((await owner.react(room.id, sent.seq, '👍')).changed, true);
  await member.react(room.id, sent.seq, '[微笑]');
  const both = await member.react(room.id, sent.seq, '👍');
  assert.deepEqual(both.message.reactions, [
    { reaction: '👍', count: 2, user_ids: [owner.userId, member.userId] },
    { reaction: '[微笑]', count: 1, user_ids: [member.userId] },
  ]);
  assert.equal((await member.react(room.id, sent.seq, '👍')).changed, false, 'once per user');
  // The owner takes back the first 👍: the chip keeps its place, the member still on it.
  const after = await owner.unreact(room.id, sent.seq, '👍');
  assert.equal(after.changed, true);
  assert.deepEqual(after.message.reactions.map((r) => [r.reaction, r.user_ids]), [
    ['👍', [member.userId]],
    ['[微笑]', [member.userId]],
  ]);
  assert.equal((await owner.unreact(room.id, sent.seq, '👍')).changed, false);
  await assert.rejects(owner.react(room.id, sent.seq, 'not one emoji'), (e) => e.status === 400 && e.code === 'invalid_reaction');
  assert.deepEqual((await owner.message(room.id, sent.seq)).reactions, after.message.reactions);
});

test('send with replyTo, and message() shows what the reply quotes as it is now', async () => {
  const { owner, member, room } = await sharedRoom('replies');
  const question = await owner.send(room.id, 'lunch?\nsecond line');
  const answer = await member.send(room.id, 'yes', { replyTo: question.seq });
  assert.equal(answer.reply_to, question.seq);
  const read = await owner.message(room.id, answer.seq);
  assert.equal(read.seq, answer.seq);
  assert.deepEqual(
    { seq: read.reply_preview.seq, sender_id: read.reply_preview.sender_id, text: read.reply_preview.text, deleted: read.reply_preview.deleted },
    { seq: question.seq, sender_id: owner.userId, text: 'lunch?', deleted: false },
  );
  await owner.deleteMessage(room.id, question.seq);
  assert.equal((await member.message(room.id, answer.seq)).reply_preview.deleted, true);
  await assert.rejects(member.send(room.id, 'to nothing', { replyTo: question.seq }), (e) => e.status === 409 && e.code === 'message_deleted');
  await assert.rejects(owner.message(room.id, 999999), (e) => e.status === 404 && e.code === 'message_not_found');
});

test('edits, reactions and deletions reach subscribers as events, in order', async () => {
  const { owner, member, room } = await sharedRoom('change events');
  const sent = await owner.send(room.id, 'watch this');
  let onEvents = () => {};
  let onReady = () => {};
  const ready = waitFor((f) => { onReady = f; }, () => true);
  const seen = [];
  const stop = member.subscribe({
    onReady: (c) => onReady(c),
    onEvents: (batch) => {
      seen.push(...batch.events.filter((e) => e.room_id === room.id));
      onEvents(batch);
    },
  });
  try {
    await ready;
    const done = waitFor((f) => { onEvents = f; }, () => seen.some((e) => e.type === 'message_deleted'), 5000);
    await owner.editMessage(room.id, sent.seq, 'watch this!');
    await member.react(room.id, sent.seq, ':smile:');
    await member.unreact(room.id, sent.seq, ':smile:');
    await owner.deleteMessage(room.id, sent.seq);
    await done;
    assert.deepEqual(seen.map((e) => [e.type, e.target_seq]), [
      ['message_edited', sent.seq],
      ['reaction_added', sent.seq],
      ['reaction_removed', sent.seq],
      ['message_deleted', sent.seq],
    ]);
    assert.equal(seen[0].text, 'watch this!');
    assert.equal(seen[1].reaction, ':smile:');
    assert.equal(seen[1].sender_id, member.userId);
    assert.equal(seen[3].sender_id, owner.userId);
    for (let i = 1; i < seen.length; i++) assert.equal(seen[i].seq, seen[i - 1].seq + 1, 'consecutive seqs');
  } finally {
    stop();
  }
});
