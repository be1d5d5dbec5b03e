// Tests of the web client's state (web/app/state.js): each event type on
// its own, then a randomized check that a client applying the event log in
// any batches, from any snapshot, ends with exactly what a fresh read
// returns. No server, no DOM:
//   node --test web/tests/state.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  addSent, applyEvents, beginRead, cancelRead, createState, currentItems, dropTimeline, finishRead, firstLine,
  itemAt, lastOwnMessage, openTimeline, quoteFor, reacted, reactionsOf, timelineOf,
} from '../app/state.js';
import { resumableStream, watchUnion } from '../app/stream.js';
import { Natter } from '../sdk/natter.js';

const ROOM = 7;
const ME = 1;
const NAMES = { 1: 'Ann', 2: 'Bo', 3: 'Cy', 4: 'Di', 5: 'Ed' };

// --- helpers for the unit cases --------------------------------------------

/** A state signed in as user 1, with room 7 listed and its history open. */
function setup({ listed = true, open = true } = {}) {
  const state = createState();
  state.me = { id: ME, display_name: NAMES[ME] };
  if (listed) {
    state.rooms.set(ROOM, { id: ROOM, kind: 'group', title: 'r', role: 'member', head_seq: 0, read_seq: 0, unread_count: 0, last_message: null });
  }
  if (open) openTimeline(state, ROOM);
  return state;
}

let clock = 1_000_000;
function ev(type, seq, sender, fields = {}) {
  clock += 1000;
  return { type, room_id: ROOM, seq, ts: clock, sender_id: sender, sender_name: NAMES[sender], ...fields };
}
const msg = (seq, sender, text, fields = {}) => ev('message', seq, sender, { client_msg_id: `c${seq}`, text, reply_to: null, deleted: false, ...fields });
const edit = (seq, sender, target, text) => ev('message_edited', seq, sender, { target_seq: target, text });
const del = (seq, sender, target) => ev('message_deleted', seq, sender, { target_seq: target });
const add = (seq, sender, target, reaction) => ev('reaction_added', seq, sender, { target_seq: target, reaction });
const remove = (seq, sender, target, reaction) => ev('reaction_removed', seq, sender, { target_seq: target, reaction });

const apply = (state, events, options) => applyEvents(state, { events, ephemeral: [] }, options);
const chips = (state, seq) => reactionsOf(itemAt(state, ROOM, seq)).map((c) => [c.reaction, c.user_ids]);

// --- unit cases -------------------------------------------------------------

test('message: stored as current state, counted unread, and kept once', () => {
  const state = setup();
  const changes = apply(state, [msg(1, 2, 'hi')]);
  assert.deepEqual([...changes.added.get(ROOM)], [1]);
  assert.equal(changes.notify.length, 1);
  const stored = itemAt(state, ROOM, 1);
  assert.equal(stored.text, 'hi');
  assert.equal(stored.edited_at, null);
  assert.deepEqual(reactionsOf(stored), []);
  const room = state.rooms.get(ROOM);
  assert.equal(room.unread_count, 1);
  assert.equal(room.head_seq, 1);
  assert.equal(room.last_message.text, 'hi');

  // The same event again (a repeat) changes nothing.
  const again = apply(state, [msg(1, 2, 'hi')]);
  assert.equal(again.added.size, 0);
  assert.equal(again.notify.length, 0);
  assert.equal(room.unread_count, 1);
  assert.equal(timelineOf(state, ROOM).items.length, 1);
});

test('message: one already known from history is kept as known', () => {
  const state = setup();
  const read = beginRead(state, ROOM);
  finishRead(state, read, { messages: [{ ...msg(1, 2, 'edited text'), edited_at: 5, reactions: [{ reaction: '👍', count: 1, user_ids: [3] }] }], hasMore: false });
  apply(state, [msg(1, 2, 'original text')]);
  const stored = itemAt(state, ROOM, 1);
  assert.equal(stored.text, 'edited text');
  assert.equal(stored.edited_at, 5);
  assert.deepEqual(chips(state, 1), [['👍', [3]]]);
});

test('message: a redacted one (deleted since) is stored deleted, never unread or notified', () => {
  const state = setup();
  const changes = apply(state, [msg(1, 2, '', { deleted: true })]);
  assert.equal(itemAt(state, ROOM, 1).deleted, true);
  assert.equal(itemAt(state, ROOM, 1).text, '');
  assert.equal(state.rooms.get(ROOM).unread_count, 0);
  assert.equal(changes.notify.length, 0);
  // Its later events do nothing to it.
  apply(state, [edit(2, 2, 1, ''), add(3, 3, 1, '👍'), del(4, 2, 1)]);
  assert.deepEqual(chips(state, 1), []);
  assert.equal(itemAt(state, ROOM, 1).text, '');
});

test('message: own message clears its pending copy; the send answer is not stored twice', () => {
  const state = setup();
  state.pending.set('c1', { roomId: ROOM, text: 'mine', status: 'sending' });
  assert.equal(addSent(state, msg(1, ME, 'mine')), true);
  const changes = apply(state, [msg(1, ME, 'mine')]);
  assert.equal(changes.sent.get('c1'), ROOM);
  assert.equal(state.pending.size, 0);
  assert.equal(timelineOf(state, ROOM).items.length, 1);
  assert.equal(state.rooms.get(ROOM).unread_count, 0, 'own messages are not unread');
  assert.equal(changes.notify.length, 0);
});

test('message_edited: changes a loaded target and its quote, nothing else', () => {
  const state = setup();
  apply(state, [msg(1, 2, 'first\nsecond'), msg(2, 3, 'answer', { reply_to: 1 })]);
  const changes = apply(state, [edit(3, 2, 1, 'better\nlines')]);
  const target = itemAt(state, ROOM, 1);
  assert.equal(target.text, 'better\nlines');
  assert.equal(target.edited_at, clock);
  assert.deepEqual([...changes.changed.get(ROOM)].sort(), [1, 2], 'the reply quoting it is redrawn too');
  assert.equal(quoteFor(state, ROOM, 1).text, 'better');
  assert.equal(state.rooms.get(ROOM).last_message.seq, 2);
  // Edits of something not loaded, or not a message, change nothing.
  const none = apply(state, [edit(4, 2, 99, 'x'), edit(5, 2, 2, '')]);
  assert.equal(none.changed.size, 0);
  assert.equal(itemAt(state, ROOM, 2).text, 'answer');
});

test('message_edited: the room list shows the edited last message', () => {
  const state = setup({ open: false });
  apply(state, [msg(1, 2, 'tpyo'), edit(2, 2, 1, 'typo')]);
  const last = state.rooms.get(ROOM).last_message;
  assert.equal(last.text, 'typo');
  assert.ok(last.edited_at);
});

test('message_deleted: clears text, reply, edit time and reactions; unread and list follow', () => {
  const state = setup();
  apply(state, [msg(1, 2, 'question'), msg(2, 3, 'reply', { reply_to: 1 }), edit(3, 3, 2, 'reply!'), add(4, 1, 2, '👍')]);
  assert.equal(state.rooms.get(ROOM).unread_count, 2);
  const changes = apply(state, [del(5, 1, 2)]);
  const gone = itemAt(state, ROOM, 2);
  assert.deepEqual(
    { deleted: gone.deleted, text: gone.text, edited_at: gone.edited_at, reply_to: gone.reply_to, reactions: reactionsOf(gone) },
    { deleted: true, text: '', edited_at: null, reply_to: null, reactions: [] },
  );
  assert.ok(changes.changed.get(ROOM).has(2));
  const room = state.rooms.get(ROOM);
  assert.equal(room.unread_count, 1);
  assert.equal(room.last_message.deleted, true);
  assert.equal(room.last_message.text, '');
  // A deleted message takes no more changes.
  apply(state, [edit(6, 3, 2, 'back?'), add(7, 2, 2, '❤️')]);
  assert.equal(itemAt(state, ROOM, 2).text, '');
  assert.deepEqual(chips(state, 2), []);
  // A quote of it says deleted.
  apply(state, [msg(8, 2, 're', { reply_to: 1 }), del(9, 2, 1)]);
  assert.equal(quoteFor(state, ROOM, 1).deleted, true);
});

test('message_deleted: of an unread message not loaded, the list is reloaded', () => {
  const state = setup({ open: false });
  state.rooms.get(ROOM).unread_count = 3;
  state.rooms.get(ROOM).head_seq = 10;
  const changes = apply(state, [del(11, 2, 4)]);
  assert.equal(changes.reloadRooms, 300);
  assert.equal(state.rooms.get(ROOM).unread_count, 3);
});

test('reaction_added / reaction_removed: chips, repeats, and order after removal', () => {
  const state = setup();
  apply(state, [msg(1, 2, 'vote')]);
  apply(state, [add(2, 2, 1, '👍'), add(3, 3, 1, '❤️'), add(4, 4, 1, '👍'), add(5, 1, 1, ':smile:')]);
  assert.deepEqual(chips(state, 1), [['👍', [2, 4]], ['❤️', [3]], [':smile:', [1]]]);
  assert.equal(reacted(itemAt(state, ROOM, 1), ':smile:', ME), true);
  // A user already there: no change.
  const same = apply(state, [add(6, 2, 1, '👍')]);
  assert.equal(same.changed.size, 0);
  // A chip keeps its place while anyone is on it, even without its first user.
  apply(state, [remove(7, 2, 1, '👍')]);
  assert.deepEqual(chips(state, 1), [['👍', [4]], ['❤️', [3]], [':smile:', [1]]]);
  // A user who comes back goes last in the chip.
  apply(state, [add(8, 2, 1, '👍')]);
  assert.deepEqual(chips(state, 1), [['👍', [4, 2]], ['❤️', [3]], [':smile:', [1]]]);
  apply(state, [remove(9, 2, 1, '👍')]);
  // A chip with nobody left goes; one re-added goes last.
  apply(state, [remove(10, 3, 1, '❤️'), add(11, 3, 1, '❤️')]);
  assert.deepEqual(chips(state, 1), [['👍', [4]], [':smile:', [1]], ['❤️', [3]]]);
  // Removing someone who is not there changes nothing.
  assert.equal(apply(state, [remove(12, 2, 1, '❤️')]).changed.size, 0);
  // A target that is not loaded, or not a message, changes nothing.
  assert.equal(apply(state, [add(13, 2, 42, '👍'), add(14, 2, 0, '👍')]).changed.size, 0);
});

test('a batch delivered twice is applied once', () => {
  const state = setup();
  const batch = [msg(1, 2, 'x'), add(2, 3, 1, '👍'), remove(3, 3, 1, '👍'), add(4, 3, 1, '👍'), del(5, 2, 1)];
  apply(state, batch.slice(0, 4));
  const before = currentItems(state, ROOM);
  apply(state, batch.slice(0, 4));
  assert.deepEqual(currentItems(state, ROOM), before);
  apply(state, batch.slice(2));
  apply(state, batch);
  assert.equal(itemAt(state, ROOM, 1).deleted, true);
  assert.equal(state.rooms.get(ROOM).unread_count, 0);
});

test('room events: kept in the history, member lists and the room list reloaded', () => {
  const state = setup();
  state.activeRoomId = ROOM;
  const changes = apply(state, [
    ev('room_updated', 1, 2, { title: 'new', visibility: 'public' }),
    ev('member_joined', 2, 4, { user_id: 4, display_name: 'Dee', role: 'member' }),
    ev('member_left', 3, 3, { user_id: 3 }),
  ]);
  assert.deepEqual(currentItems(state, ROOM).map((e) => e.type), ['room_updated', 'member_joined', 'member_left']);
  assert.ok(changes.members.has(ROOM));
  assert.equal(changes.reloadRooms, 300);
  assert.equal(state.names.get(4), 'Dee');
  assert.equal(changes.leftActive, false);
  // Events of a room not listed yet: the list is reloaded at once.
  const unknown = applyEvents(state, { events: [{ ...ev('room_created', 1, 2, { title: 'dm', kind: 'direct' }), room_id: 99 }] });
  assert.equal(unknown.reloadRooms, 50);
});

test('member_left of the user: the history is dropped and the room closed', () => {
  const state = setup();
  state.activeRoomId = ROOM;
  apply(state, [msg(1, 2, 'bye')]);
  const changes = apply(state, [ev('member_left', 2, ME, { user_id: ME })]);
  assert.ok(changes.left.has(ROOM));
  assert.equal(changes.leftActive, true);
  assert.equal(state.activeRoomId, null);
  assert.equal(timelineOf(state, ROOM), null);
});

test('read markers: another tab reading to the last message clears unread, even after later reactions', () => {
  const state = setup();
  apply(state, [msg(1, 2, 'a'), msg(2, 2, 'b'), add(3, 2, 2, '👍')]);
  assert.equal(state.rooms.get(ROOM).unread_count, 2);
  applyEvents(state, { events: [], ephemeral: [{ type: 'read', room_id: ROOM, seq: 2 }] });
  assert.equal(state.rooms.get(ROOM).unread_count, 0);
  const presence = applyEvents(state, { ephemeral: [{ type: 'presence', user_id: 2, online: true }] });
  assert.equal(presence.presence, true);
  assert.equal(state.presence.get(2), true);
});

test("room_online: a big room's count as its watchers hear it, for the header and the room list", () => {
  const state = setup();
  state.rooms.get(ROOM).online_count = 3;
  const changes = applyEvents(state, { ephemeral: [{ type: 'room_online', room_id: ROOM, online_count: 123 }] });
  const room = state.rooms.get(ROOM);
  assert.equal(room.online_count, 123);
  assert.ok(changes.rooms.has(ROOM), 'the room list redraws');
  assert.equal(changes.reloadRooms, null, 'the count is news enough: no reload of the list');
  assert.equal(changes.presence, false, 'nobody in particular came or went');
  // Newer than any list read before it (loads.js keeps the count then).
  const heard = room.onlineChange;
  assert.ok(heard > 0);
  applyEvents(state, { ephemeral: [{ type: 'room_online', room_id: ROOM, online_count: 120 }] });
  assert.equal(room.online_count, 120);
  assert.ok(room.onlineChange > heard, 'each count is newer than the last');
  // A room not in the list, or a malformed item, changes nothing.
  const other = applyEvents(state, { ephemeral: [
    { type: 'room_online', room_id: 99, online_count: 5 },
    { type: 'room_online', room_id: ROOM },
  ] });
  assert.equal(other.rooms.size, 0);
  assert.equal(state.rooms.has(99), false);
  assert.equal(room.online_count, 120);
  // Presence in a small room works as before: the list is read again.
  const presence = applyEvents(state, { ephemeral: [{ type: 'presence', user_id: 3, online: true }] });
  assert.equal(state.presence.get(3), true);
  assert.notEqual(presence.reloadRooms, null);
});

test('a message seen as it arrives is not counted unread', () => {
  const state = setup();
  apply(state, [msg(1, 2, 'a')], { seen: (roomId) => roomId === ROOM });
  assert.equal(state.rooms.get(ROOM).unread_count, 0);
});

test('a change heard while a page is read is applied to the page unless the page shows it', () => {
  // The page was made before the reaction: the reaction must still show.
  const state = setup();
  const read = beginRead(state, ROOM);
  apply(state, [add(11, 3, 5, '👍'), edit(12, 2, 5, 'after')]);
  finishRead(state, read, { messages: [{ ...msg(5, 2, 'before'), edited_at: null, reactions: [] }], hasMore: false });
  assert.deepEqual(chips(state, 5), [['👍', [3]]]);
  assert.equal(itemAt(state, ROOM, 5).text, 'after');

  // The page was made after them (its head_seq says so): they are not applied again.
  const other = setup();
  const second = beginRead(other, ROOM);
  apply(other, [add(11, 3, 5, '👍'), edit(12, 2, 5, 'after')]);
  finishRead(other, second, { messages: [{ ...msg(5, 2, 'before'), text: 'after', edited_at: clock, reactions: [{ reaction: '👍', count: 1, user_ids: [3] }] }], hasMore: false, asOf: 12 });
  assert.deepEqual(chips(other, 5), [['👍', [3]]]);
  assert.equal(itemAt(other, ROOM, 5).text, 'after');
});

test('a read whose history was dropped meanwhile is ignored; a failed one forgets what it heard', () => {
  const state = setup();
  const read = beginRead(state, ROOM);
  dropTimeline(state, ROOM);
  openTimeline(state, ROOM);
  assert.equal(finishRead(state, read, { messages: [msg(1, 2, 'old')] }), null);
  assert.equal(timelineOf(state, ROOM).items.length, 0);
  const failed = beginRead(state, ROOM);
  apply(state, [add(3, 2, 1, '👍')]);
  cancelRead(state, failed);
  assert.equal(timelineOf(state, ROOM).heard.length, 0);
});

test('chips read from a page keep their order as events change them', () => {
  const state = setup();
  finishRead(state, beginRead(state, ROOM), {
    messages: [{ ...msg(1, 2, 'x'), edited_at: null, reactions: [
      { reaction: 'A', count: 2, user_ids: [2, 3] },
      { reaction: 'B', count: 1, user_ids: [4] },
    ] }],
    hasMore: false,
  });
  apply(state, [remove(10, 2, 1, 'A'), add(11, 5, 1, 'B'), add(12, 2, 1, 'C')]);
  assert.deepEqual(chips(state, 1), [['A', [3]], ['B', [4, 5]], ['C', [2]]]);
  apply(state, [remove(13, 3, 1, 'A'), add(14, 3, 1, 'A')]);
  assert.deepEqual(chips(state, 1), [['B', [4, 5]], ['C', [2]], ['A', [3]]]);
});

test('a quote is the first line that shows something, cut like the server cuts it', () => {
  assert.equal(firstLine('\n\n  \nhi\nthere'), 'hi');
  assert.equal(firstLine('one\rtwo'), 'one');
  assert.equal(firstLine('x'.repeat(201)), `${'x'.repeat(200)}…`);
  assert.equal(firstLine('x'.repeat(200)), 'x'.repeat(200));
});

test('quotes of messages not loaded come from reply_preview and follow edits', () => {
  const state = setup();
  finishRead(state, beginRead(state, ROOM), {
    messages: [{ ...msg(9, 3, 'sure'), reply_to: 4, edited_at: null, reactions: [], reply_preview: { seq: 4, sender_id: 2, sender_name: 'Bo', text: 'lunch?', deleted: false } }],
    hasMore: true,
  });
  assert.equal(quoteFor(state, ROOM, 4).text, 'lunch?');
  const changes = apply(state, [edit(10, 2, 4, 'dinner?\nat 7')]);
  assert.equal(quoteFor(state, ROOM, 4).text, 'dinner?');
  assert.ok(changes.changed.get(ROOM).has(9));
  apply(state, [del(11, 2, 4)]);
  assert.equal(quoteFor(state, ROOM, 4).deleted, true);
  assert.equal(quoteFor(state, ROOM, 5), null);
});

test('lastOwnMessage skips deleted messages and others\' messages', () => {
  const state = setup();
  apply(state, [msg(1, ME, 'one'), msg(2, ME, 'two'), msg(3, 2, 'theirs'), del(4, ME, 2)]);
  assert.equal(lastOwnMessage(state, ROOM).seq, 1);
});

// --- the randomized check ----------------------------------------------------

/** A small seeded generator (mulberry32), so a failing seed can be rerun. */
function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const between = (random, lo, hi) => lo + Math.floor(random() * (hi - lo + 1));
const pick = (random, list) => list[Math.floor(random() * list.length)];

const REACTIONS = ['👍', '❤️', ':smile:', '[微笑]', '🎉'];
const ADMINS = new Set([1, 2]);

/**
 * A log a server could write: several users send, reply, edit their own
 * messages, delete (their own, or any as admins) and react, with
 * consecutive seqs. Also returns when each message was deleted.
 */
function generateLog(random, length) {
  const log = [];
  const live = new Map(); // seq → { sender, text, deleted, reactions: Set("user reaction") }
  const deletedAt = new Map();
  let ts = 1_000_000;
  const append = (type, sender, fields) => {
    ts += between(random, 1, 90_000);
    const event = { type, room_id: ROOM, seq: log.length + 1, ts, sender_id: sender, sender_name: NAMES[sender], ...fields };
    log.push(event);
    return event;
  };
  append('room_created', 1, { title: 'room', kind: 'group', visibility: 'public', member_ids: [1, 2, 3, 4, 5] });
  const users = [1, 2, 3, 4, 5];
  // Most changes go to the last few messages, so reactions pile up.
  const target = (filter) => {
    const list = [...live.entries()].filter(([, m]) => !m.deleted && filter(m));
    if (!list.length) return null;
    const recent = list.slice(-2);
    return random() < 0.75 ? pick(random, recent) : pick(random, list);
  };
  while (log.length < length) {
    const roll = random();
    const user = pick(random, users);
    if (roll < 0.25 || live.size === 0) {
      const text = random() < 0.2 ? `line ${log.length}\nmore ${log.length}` : `text ${log.length}`;
      const answered = random() < 0.3 ? target(() => true) : null;
      const event = append('message', user, { client_msg_id: `m${log.length}`, text, reply_to: answered ? answered[0] : null, deleted: false });
      live.set(event.seq, { sender: user, text, deleted: false, reactions: new Set() });
    } else if (roll < 0.37) {
      const own = target((m) => m.sender === user);
      if (!own) continue;
      const text = `${own[1].text.split('\n')[0]}+`;
      append('message_edited', user, { target_seq: own[0], text });
      own[1].text = text;
    } else if (roll < 0.44) {
      const victim = target((m) => m.sender === user || ADMINS.has(user));
      if (!victim) continue;
      const event = append('message_deleted', user, { target_seq: victim[0] });
      victim[1].deleted = true;
      deletedAt.set(victim[0], event.seq);
    } else if (roll < 0.97) {
      const onto = target(() => true);
      if (!onto) continue;
      const reaction = pick(random, REACTIONS);
      const key = `${user} ${reaction}`;
      // Taking one back is likelier when there is one to take back.
      if (onto[1].reactions.has(key) && random() < 0.8) {
        append('reaction_removed', user, { target_seq: onto[0], reaction });
        onto[1].reactions.delete(key);
      } else if (!onto[1].reactions.has(key)) {
        append('reaction_added', user, { target_seq: onto[0], reaction });
        onto[1].reactions.add(key);
      }
    } else {
      append('room_updated', user, { title: `title ${log.length}`, visibility: 'public' });
    }
  }
  return { log, deletedAt };
}

// The server's reply_preview rule: the first line that shows something,
// at most 200 characters, then an ellipsis.
const firstLineOf = (text) => {
  const chars = [...(text.split(/[\n\r]/).find((l) => l.trim() !== '') ?? '')];
  return chars.length > 200 ? `${chars.slice(0, 200).join('')}…` : chars.join('');
};

/**
 * The reference: the log folded the plain way, as a fresh read of the
 * history after `upTo` returns it (current state, with reply previews).
 */
function reference(log, upTo = Infinity) {
  const items = [];
  const bySeq = new Map();
  for (const e of log) {
    if (e.seq > upTo) break;
    const m = bySeq.get(e.target_seq);
    const open = m && m.type === 'message' && !m.deleted;
    switch (e.type) {
      case 'message': {
        const item = { ...e, edited_at: null, chips: [] };
        items.push(item);
        bySeq.set(e.seq, item);
        break;
      }
      case 'message_edited':
        if (open) Object.assign(m, { text: e.text, edited_at: e.ts });
        break;
      case 'message_deleted':
        if (open) Object.assign(m, { deleted: true, text: '', edited_at: null, reply_to: null, chips: [] });
        break;
      case 'reaction_added': {
        // A new chip goes last, a new user last in their chip.
        if (!open) break;
        let chip = m.chips.find((c) => c.reaction === e.reaction);
        if (!chip) m.chips.push((chip = { reaction: e.reaction, user_ids: [] }));
        if (!chip.user_ids.includes(e.sender_id)) chip.user_ids.push(e.sender_id);
        break;
      }
      case 'reaction_removed': {
        // The user leaves; a chip with nobody left goes, the others stay put.
        const chip = open && m.chips.find((c) => c.reaction === e.reaction);
        if (!chip) break;
        chip.user_ids = chip.user_ids.filter((u) => u !== e.sender_id);
        if (!chip.user_ids.length) m.chips = m.chips.filter((c) => c !== chip);
        break;
      }
      default: {
        const item = { ...e };
        items.push(item);
        bySeq.set(e.seq, item);
      }
    }
  }
  return items.map((item) => {
    if (item.type !== 'message') return { ...item };
    const { chips, ...rest } = item;
    const reactions = chips.map(({ reaction, user_ids }) => ({ reaction, count: user_ids.length, user_ids: [...user_ids] }));
    const quoted = rest.reply_to === null ? null : bySeq.get(rest.reply_to);
    const reply_preview = quoted
      ? { seq: quoted.seq, sender_id: quoted.sender_id, sender_name: quoted.sender_name, text: quoted.deleted ? '' : firstLineOf(quoted.text), deleted: quoted.deleted }
      : null;
    return { ...rest, reactions, reply_preview };
  });
}

const withoutPreviews = (items) => items.map(({ reply_preview: _p, ...rest }) => rest);

/** The log as a poll at server position `at` delivers it: redacted where deleted by then. */
function delivered(events, deletedAt, at, random) {
  return events.map((e) => {
    if (e.type === 'message' && deletedAt.get(e.seq) <= at) {
      return { ...e, text: '', deleted: true, reply_to: random() < 0.5 ? null : e.reply_to };
    }
    if (e.type === 'message_edited' && deletedAt.get(e.target_seq) <= at) return { ...e, text: '' };
    return e;
  });
}

function unreadIn(items) {
  return items.filter((i) => i.type === 'message' && !i.deleted && i.sender_id !== ME).length;
}

/**
 * One client's run: from an empty room, or (`snapshot`) from the room list
 * and a page of history read while the stream runs; then batches of
 * random sizes, repeats and pages of older history, each page answered at
 * a random later server position. Returns the state and what to compare.
 */
function run(seed, { snapshot, stepwise = false }) {
  const random = seeded(seed);
  const { log, deletedAt } = generateLog(random, between(random, 20, 160));
  const end = log.length;
  const state = createState();
  state.me = { id: ME };
  // The stream starts after `start`; the room list was read there.
  const start = snapshot ? between(random, 0, end) : 0;
  const listed = reference(log, start);
  const lastListed = listed.filter((i) => i.type === 'message').at(-1) ?? null;
  state.rooms.set(ROOM, {
    id: ROOM, kind: 'group', title: 'room', role: 'member', head_seq: start, read_seq: 0,
    unread_count: unreadIn(listed), last_message: lastListed,
  });
  openTimeline(state, ROOM);
  const reads = [];
  let position = start; // what the stream has delivered
  let reloadAsked = false;
  const take = (changes) => {
    if (changes?.reloadRooms === 300) reloadAsked = true;
  };
  if (snapshot) reads.push({ kind: 'latest', begun: position, read: beginRead(state, ROOM) });
  const finish = (r, at) => {
    const page = reference(log, at);
    const older = page.filter((i) => r.before === undefined || i.seq < r.before);
    const size = between(random, 3, 40);
    const chunk = older.slice(-size);
    take(finishRead(state, r.read, { messages: chunk, hasMore: older.length > chunk.length, asOf: at }));
  };
  while (position < end || reads.length) {
    const roll = random();
    if (reads.length && (roll < 0.25 || position === end)) {
      const r = reads.splice(Math.floor(random() * reads.length), 1)[0];
      // The server answered at some position after the read began.
      finish(r, between(random, r.begun, end));
    } else if (roll < 0.3) {
      const timeline = timelineOf(state, ROOM);
      const first = timeline.items[0];
      if (first && timeline.hasMore && !reads.some((r) => r.kind === 'older')) {
        reads.push({ kind: 'older', before: first.seq, begun: position, read: beginRead(state, ROOM) });
      }
    } else if (roll < 0.35 && position > start) {
      // A repeat of something already delivered.
      const from = between(random, start, position - 1);
      const to = between(random, from + 1, position);
      take(applyEvents(state, { events: delivered(log.slice(from, to), deletedAt, between(random, to, end), random) }));
    } else if (position < end) {
      const to = Math.min(end, position + between(random, 1, 8));
      // Stepwise, each batch is read as it is written (redacted only by
      // deletions within it), so the state must be the reference after each.
      const at = stepwise ? to : between(random, to, end);
      const batch = delivered(log.slice(position, to), deletedAt, at, random);
      position = to;
      take(applyEvents(state, { events: batch, ephemeral: [] }));
      if (stepwise) {
        assert.deepEqual(currentItems(state, ROOM), withoutPreviews(reference(log, position)), `seed ${seed} at ${position}`);
      }
    }
  }
  return { state, log, reloadAsked };
}

function check(seed, snapshot, stepwise = false) {
  const { state, log, reloadAsked } = run(seed, { snapshot, stepwise });
  const truth = reference(log);
  const got = currentItems(state, ROOM);
  const from = got[0]?.seq ?? Infinity;
  const expected = withoutPreviews(truth.filter((i) => i.seq >= from));
  assert.deepEqual(got, expected, `seed ${seed}${snapshot ? ' (from a snapshot)' : ''}`);
  if (!snapshot) assert.equal(from, 1, `seed ${seed}: from an empty room, everything is loaded`);
  // What replies show of their originals, where the client has it.
  const bySeq = new Map(truth.map((i) => [i.seq, i]));
  for (const item of got) {
    if (item.type !== 'message' || item.reply_to === null) continue;
    const quote = quoteFor(state, ROOM, item.reply_to);
    if (!quote) continue;
    const original = bySeq.get(item.reply_to);
    assert.deepEqual(
      { text: quote.text, deleted: quote.deleted, sender_id: quote.sender_id },
      { text: original.deleted ? '' : firstLineOf(original.text), deleted: original.deleted, sender_id: original.sender_id },
      `seed ${seed}: quote of ${item.reply_to}`,
    );
  }
  // The room list: its last message as it is now, and (unless it asked
  // the server) the unread count.
  const room = state.rooms.get(ROOM);
  const last = truth.filter((i) => i.type === 'message').at(-1) ?? null;
  assert.equal(room.last_message?.seq ?? null, last?.seq ?? null, `seed ${seed}: last message`);
  if (last) {
    assert.deepEqual([room.last_message.text, room.last_message.deleted], [last.text, last.deleted], `seed ${seed}: preview`);
  }
  if (!reloadAsked) assert.equal(room.unread_count, unreadIn(truth), `seed ${seed}: unread`);
}

test('randomized: any batches of the log, from an empty room, give the reference state', () => {
  for (let seed = 1; seed <= 400; seed++) check(seed, false, seed % 2 === 0);
});

test('randomized: starting from snapshots read while the stream runs gives the reference state', () => {
  for (let seed = 1001; seed <= 5000; seed++) check(seed, true);
});

// --- the event stream's "Retry now" (web/app/stream.js) ---------------------

/** A stream on a transport whose polls the test answers by hand (and,
 *  with `abortable`, that a poll's signal ends, as fetch would). */
function handStream({ watch, abortable = false } = {}) {
  const polls = [];
  const transport = {
    name: 'by hand',
    next: (_natter, from, signal, options = {}) => new Promise((resolve, reject) => {
      polls.push({ from, watch: options.watch, resolve, reject });
      if (abortable) signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
    }),
  };
  const seen = { events: [], states: [] };
  const stream = resumableStream(new Natter({ baseUrl: 'http://natter.invalid', token: 't', transport }), {
    onEvents: (batch) => seen.events.push(...batch.events.map((e) => e.seq)),
    onState: (s) => seen.states.push(s),
  }, { watch });
  const polled = async (count) => {
    for (let i = 0; polls.length < count; i++) {
      if (i > 2000) throw new Error(`${polls.length} polls, not ${count}`);
      await new Promise((r) => setTimeout(r, 1));
    }
    return polls[count - 1];
  };
  return { polls, seen, stream, polled };
}

const answer = (cursor, seqs = []) => ({ cursor, events: seqs.map((seq) => ({ type: 'message', seq })), ephemeral: [] });

test('Retry now, pressed while a poll is on its way, loses nothing that poll brings', async (t) => {
  const random = Math.random;
  Math.random = () => 0; // no backoff: each failed poll is tried again at once
  t.after(() => { Math.random = random; });
  const { polls, seen, stream, polled } = handStream();
  try {
    (await polled(1)).resolve(answer('c0'));
    (await polled(2)).reject(new Error('offline'));
    // Reconnecting, and polling again; the user presses twice.
    const third = await polled(3);
    assert.equal(seen.states.at(-1), 'reconnecting');
    stream.retryNow();
    stream.retryNow();
    third.resolve(answer('c1', [5]));
    await polled(4);
    // Whatever else polls now fails, and is retried by hand once more.
    for (const poll of polls.slice(3)) poll.reject(new Error('offline'));
    stream.retryNow();
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(seen.events, [5], 'the answer that moved the cursor was handled');
    assert.ok(polls.slice(3).every((poll) => poll.from === 'c1'), 'every later poll goes on from it');
  } finally {
    stream.stop();
  }
});

test('Retry now ends a backoff wait at once; nothing is heard after a stop', async (t) => {
  const random = Math.random;
  Math.random = () => 0.999; // the longest wait the first backoff allows (about 0.5 s)
  t.after(() => { Math.random = random; });
  const { seen, stream, polled } = handStream();
  (await polled(1)).resolve(answer('c0'));
  (await polled(2)).reject(new Error('offline'));
  await new Promise((r) => setTimeout(r, 20));
  const pressed = Date.now();
  stream.retryNow();
  const third = await polled(3);
  assert.ok(Date.now() - pressed < 200, 'polled again at once');
  assert.equal(third.from, 'c0');
  stream.stop();
  third.resolve(answer('c1', [9]));
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen.events, []);
  assert.ok(!seen.states.includes('stopped'), 'a stopped stream says nothing more');
});

test('the rooms watched change at once: the waiting poll is renewed from the same cursor', async () => {
  const { polls, seen, stream, polled } = handStream({ watch: [7], abortable: true });
  try {
    (await polled(1)).resolve(answer('c0'));
    const second = await polled(2);
    assert.deepEqual(second.watch, [7]);
    // Another room opens: the waiting poll ends and the next names it.
    stream.watch([12]);
    const third = await polled(3);
    assert.equal(third.from, 'c0');
    assert.deepEqual(third.watch, [12]);
    // The same rooms again renew nothing; no room open watches none.
    stream.watch([12]);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(polls.length, 3);
    stream.watch([]);
    const fourth = await polled(4);
    assert.deepEqual(fourth.watch, []);
    fourth.resolve(answer('c1', [3]));
    await polled(5);
    assert.deepEqual(seen.events, [3]);
    assert.ok(!seen.states.includes('reconnecting'), 'a renewal is no error');
  } finally {
    stream.stop();
  }
});

test("the shared worker's one poll watches every tab's open room, at most 8, the latest first", () => {
  assert.deepEqual(watchUnion([]), []);
  assert.deepEqual(watchUnion([[], [7]]), [7], 'a tab with no room open adds nothing');
  assert.deepEqual(watchUnion([[12], [7], [12]]), [12, 7], 'two tabs on one room: watched once');
  const tabs = [[20], [19], [18], [17], [16], [15], [14], [13], [12], [11]];
  assert.deepEqual(watchUnion(tabs), [20, 19, 18, 17, 16, 15, 14, 13], 'past 8, the tabs that changed last');
});
