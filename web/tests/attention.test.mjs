// The rules of web/app/attention.js under Node: mention tokens to names and
// back, the composer's mention query, the typing throttle and who is shown
// typing, the notification decision, where "Seen" goes; and how
// state.js's applyEvents keeps mention counts, typing notices, receipts
// and notification levels.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  TypingThrottle, addMention, applyTyping, fromTokens, levelOf, matchMembers, mentionQuery, mentionsMe, mentionsOf,
  namesForTokens, nextExpiry, pruneTyping, seenSeq, shouldNotify, splitMentions, toTokens, typersOf, typingWords,
} from '../app/attention.js';
import { ROOM_LIST_DELAY_MS, applyEvents, createState } from '../app/state.js';

const names = new Map([[2, 'Li Lei'], [3, 'Li'], [4, '韩梅梅']]);
const nameOf = (id) => names.get(id) ?? 'someone';

test('tokens are read as the server reads them', () => {
  assert.deepEqual(mentionsOf('hi <@12> and <@3>, <@12> again'), [12, 3]);
  assert.deepEqual(mentionsOf('<@7><@8>'), [7, 8]);
  assert.deepEqual(mentionsOf('李雷 <@42> 你好'), [42]);
  assert.deepEqual(mentionsOf('<@> <@x> <@0> <@1234567890123456789> @2 <2>'), []);
  assert.equal(mentionsOf(Array.from({ length: 60 }, (_, i) => `<@${i + 1}>`).join(' ')).length, 50);
  assert.deepEqual(splitMentions('a <@2> b'), ['a ', { id: 2 }, ' b']);
  assert.deepEqual(splitMentions('<@2>'), [{ id: 2 }]);
  assert.equal(namesForTokens('hi <@2>, <@9>!', nameOf), 'hi @Li Lei, @someone!');
});

test('mentionsMe uses the event\'s list, else the text', () => {
  assert.ok(mentionsMe({ mentions: [5], text: '' }, 5));
  assert.ok(!mentionsMe({ mentions: [], text: '<@5>' }, 5));
  assert.ok(mentionsMe({ text: 'yo <@5>' }, 5));
  assert.ok(!mentionsMe({ text: 'yo <@5>' }, null));
});

test('inserted names become tokens on send, longest first, and come back for an edit', () => {
  const inserted = [{ name: 'Li', id: 3 }, { name: 'Li Lei', id: 2 }];
  assert.equal(toTokens('@Li Lei and @Li, not @Lu', inserted), '<@2> and <@3>, not @Lu');
  assert.equal(toTokens('@韩梅梅你好', [{ name: '韩梅梅', id: 4 }]), '<@4>你好');
  assert.equal(toTokens('plain @Li Lei', []), 'plain @Li Lei');
  const back = fromTokens('hi <@2> and <@4>', nameOf);
  assert.equal(back.text, 'hi @Li Lei and @韩梅梅');
  assert.equal(toTokens(back.text, back.mentions), 'hi <@2> and <@4>');
});

test('a name becomes a token only as a word of its own, the longest that fits', () => {
  const li = [{ name: 'Li', id: 1 }];
  assert.equal(toTokens('hi @Lily', li), 'hi @Lily', 'a longer word');
  assert.equal(toTokens('a@Li.com', li), 'a@Li.com', 'inside an address');
  assert.equal(toTokens('mail me@Li Lei', [{ name: 'Li Lei', id: 2 }]), 'mail me@Li Lei');
  assert.equal(toTokens('@Li2 @Li_x', li), '@Li2 @Li_x');
  assert.equal(toTokens('(@Li), @Li. @Li!', li), '(<@1>), <@1>. <@1>!');
  assert.equal(toTokens('（@李雷）和@李雷你好', [{ name: '李雷', id: 5 }]), '（<@5>）和@李雷你好', 'after 和 it is inside a word; 你 may follow');
  // "@Li Leiming" is not Li Lei, but it is Li followed by a word.
  assert.equal(toTokens('@Li Leiming', [{ name: 'Li', id: 3 }, { name: 'Li Lei', id: 2 }]), '<@3> Leiming');
});

test('two people of one name keep their own mentions through an edit', () => {
  const unknown = () => 'someone';
  const back = fromTokens('<@2> and <@3>', unknown);
  assert.equal(back.text, '@someone and @someone');
  assert.equal(toTokens(back.text, back.mentions), '<@2> and <@3>');
  const twins = fromTokens('<@4>, <@5>, <@4>', () => 'Wang Fang');
  assert.equal(toTokens(`${twins.text}!`, twins.mentions), '<@4>, <@5>, <@4>!');
  // Picked from the list: each goes in at its place among those of its name.
  const picked = [];
  let text = '@Wang Fang ';
  addMention(picked, text, 0, 'Wang Fang', 7);
  text = '@Wang Fang @Wang Fang ';
  addMention(picked, text, 11, 'Wang Fang', 8);
  text = '@Wang Fang @Wang Fang @Wang Fang ';
  addMention(picked, text, 0, 'Wang Fang', 9);
  assert.deepEqual(picked.map((m) => m.id), [9, 7, 8]);
  assert.equal(toTokens(text, picked), '<@9> <@7> <@8> ');
});

test('tokens follow the server: no leading zero, 1 to 18 digits, 50 people at most', () => {
  assert.deepEqual(mentionsOf('<@012> <@000000000000000002> <@-3> <@1x>'), []);
  assert.deepEqual(splitMentions('<@012>'), ['<@012>']);
  assert.deepEqual(mentionsOf('<@<@5>'), [5]);
  assert.deepEqual(mentionsOf('<@123456789012345678>'), [123456789012345678]);
  assert.deepEqual(mentionsOf('<@1234567890123456789>'), []);
  const text = Array.from({ length: 60 }, (_, i) => `<@${i + 1}>`).join(' ');
  assert.deepEqual(mentionsOf(text), Array.from({ length: 50 }, (_, i) => i + 1));
  // Past the fiftieth person every token is plain text, a repeat too.
  const parts = splitMentions(`${text} <@1>`);
  assert.equal(parts.filter((p) => typeof p !== 'string').length, 50);
  assert.ok(parts.at(-1).endsWith('<@60> <@1>'));
  assert.equal(namesForTokens(`${text} <@1>`, () => 'x').match(/@x/g).length, 50);
});

test('the mention being typed, and who matches it', () => {
  assert.deepEqual(mentionQuery('hi @li', 6), { start: 3, query: 'li' });
  assert.deepEqual(mentionQuery('@', 1), { start: 0, query: '' });
  assert.deepEqual(mentionQuery('hi @Li L', 8), { start: 3, query: 'Li L' });
  assert.equal(mentionQuery('mail me@li', 10), null);
  assert.equal(mentionQuery('hi @ li', 7), null);
  assert.equal(mentionQuery('hi @li\nthere', 12), null);
  assert.equal(mentionQuery('no at', 5), null);
  assert.deepEqual(mentionQuery('（@李', 3), { start: 1, query: '李' });
  const members = [
    { id: 1, display_name: 'Me', username: 'me' },
    { id: 2, display_name: 'Li Lei', username: 'lilei' },
    { id: 5, display_name: 'Ali', username: 'ali' },
    { id: 6, display_name: 'Bob Li', username: 'bobby' },
  ];
  assert.deepEqual(matchMembers(members, 'li', 1).map((m) => m.id), [2, 6, 5]);
  assert.deepEqual(matchMembers(members, '', 1).map((m) => m.id), [5, 6, 2]);
  assert.deepEqual(matchMembers(members, 'bobby', 1).map((m) => m.id), [6]);
  assert.deepEqual(matchMembers(members, 'me', 1), []);
});

test('typing: at once, then at most once per 3 s; false only when emptied after a true', () => {
  const th = new TypingThrottle();
  assert.equal(th.input(7, 'h', 0), 'start');
  assert.equal(th.input(7, 'he', 1000), null);
  assert.equal(th.input(7, 'hel', 2999), null);
  assert.equal(th.input(7, 'hell', 3000), 'start');
  assert.equal(th.input(8, 'x', 3100), 'start', 'each room on its own');
  assert.equal(th.input(7, '', 3500), 'stop');
  assert.equal(th.input(7, '', 3600), null, 'one false is enough');
  assert.equal(th.input(7, '   ', 3700), null, 'blank is empty');
  assert.equal(th.input(7, 'a', 3800), 'start');
  th.sent(7);
  assert.equal(th.input(7, '', 3900), null, 'a send needs no false');
  assert.equal(th.input(7, 'n', 4000), 'start', 'after a send the next key announces at once');
});

test('typing notices: shown until they expire, ended by false, never one\'s own', () => {
  const typing = new Map();
  assert.ok(applyTyping(typing, { room_id: 7, user_id: 2, typing: true, expires_in_ms: 6000 }, 1, 1000));
  assert.ok(!applyTyping(typing, { room_id: 7, user_id: 2, typing: true, expires_in_ms: 6000 }, 1, 3000), 'a renewal');
  assert.ok(applyTyping(typing, { room_id: 7, user_id: 3, typing: true, expires_in_ms: 6000 }, 1, 4000));
  assert.ok(!applyTyping(typing, { room_id: 7, user_id: 1, typing: true, expires_in_ms: 6000 }, 1, 4000));
  assert.deepEqual(typersOf(typing, 7, 5000), [2, 3]);
  assert.equal(nextExpiry(typing), 9000);
  assert.deepEqual(typersOf(typing, 7, 9500), [3]);
  assert.ok(pruneTyping(typing, 9500));
  assert.ok(applyTyping(typing, { room_id: 7, user_id: 3, typing: false, expires_in_ms: 0 }, 1, 9600));
  assert.deepEqual(typersOf(typing, 7, 9600), []);
  assert.equal(typing.size, 0);
  assert.deepEqual(typingWords(['Li Lei']), ['typingOne', { name: 'Li Lei' }]);
  assert.deepEqual(typingWords(['A', 'B']), ['typingTwo', { a: 'A', b: 'B' }]);
  assert.deepEqual(typingWords(['A', 'B', 'C']), ['typingMany', {}]);
  assert.equal(typingWords([]), null);
});

test('desktop notifications follow the room\'s level', () => {
  const me = 1;
  const plain = { sender_id: 2, text: 'hello' };
  const mention = { sender_id: 2, text: 'hi <@1>', mentions: [1] };
  const own = { sender_id: 1, text: 'mine <@1>', mentions: [1] };
  const rooms = {
    all: { kind: 'group', notifications: 'all' },
    mentions: { kind: 'direct', notifications: 'mentions' },
    none: { kind: 'direct', notifications: 'none' },
  };
  assert.deepEqual([plain, mention, own].map((m) => shouldNotify(rooms.all, m, me)), [true, true, false]);
  assert.deepEqual([plain, mention, own].map((m) => shouldNotify(rooms.mentions, m, me)), [false, true, false]);
  assert.deepEqual([plain, mention, own].map((m) => shouldNotify(rooms.none, m, me)), [false, false, false]);
  // The defaults: everything in a direct conversation, mentions in a group.
  assert.equal(levelOf({ kind: 'direct' }), 'all');
  assert.equal(levelOf({ kind: 'group' }), 'mentions');
  assert.ok(shouldNotify({ kind: 'direct' }, plain, me));
  assert.ok(!shouldNotify({ kind: 'group' }, plain, me));
  assert.ok(!shouldNotify(rooms.all, { ...plain, deleted: true }, me));
});

test('"Seen" goes under one\'s own last message once the other person read it', () => {
  const items = [
    { type: 'message', seq: 1, sender_id: 1 },
    { type: 'message', seq: 2, sender_id: 1 },
    { type: 'message', seq: 3, sender_id: 2 },
    { type: 'reaction_added', seq: 4, sender_id: 2 },
  ];
  assert.equal(seenSeq({ kind: 'direct', peer_read_seq: 3 }, items, 1), 2);
  assert.equal(seenSeq({ kind: 'direct', peer_read_seq: 1 }, items, 1), null);
  assert.equal(seenSeq({ kind: 'direct', peer_read_seq: null }, items, 1), null, 'receipts off');
  assert.equal(seenSeq({ kind: 'group', peer_read_seq: 9 }, items, 1), null);
  assert.equal(seenSeq({ kind: 'direct', peer_read_seq: 9 }, [{ ...items[0], deleted: true }], 1), null);
});

function signedIn() {
  const state = createState();
  state.me = { id: 1, display_name: 'Me' };
  state.rooms.set(7, { id: 7, kind: 'group', head_seq: 1, unread_count: 0, mention_count: 0, read_seq: 1, notifications: 'mentions' });
  state.rooms.set(8, { id: 8, kind: 'direct', head_seq: 1, unread_count: 0, mention_count: 0, read_seq: 1, peer_read_seq: 0 });
  return state;
}

const message = (seq, sender, text, extra = {}) => ({
  type: 'message', room_id: 7, seq, ts: seq, sender_id: sender, sender_name: `u${sender}`, client_msg_id: `c${seq}`,
  text, reply_to: null, deleted: false, mentions: mentionsOf(text), ...extra,
});

test('applyEvents counts mentions live and a read clears them', () => {
  const state = signedIn();
  applyEvents(state, { events: [message(2, 2, 'hi <@1>'), message(3, 2, 'plain'), message(4, 1, 'me <@1>')] });
  const room = state.rooms.get(7);
  assert.equal(room.unread_count, 2);
  assert.equal(room.mention_count, 1);
  // Not while the room is read on screen.
  applyEvents(state, { events: [message(5, 2, 'again <@1>')] }, { seen: () => true });
  assert.equal(room.mention_count, 1);
  const changes = applyEvents(state, { ephemeral: [{ type: 'read', room_id: 7, seq: 5 }] });
  assert.equal(room.mention_count, 0);
  assert.ok(changes.rooms.has(7));
});

test('applyEvents keeps typing notices, ends one with its author\'s message, ignores one\'s own', () => {
  const state = signedIn();
  let changes = applyEvents(state, {
    ephemeral: [
      { type: 'typing', room_id: 7, user_id: 2, typing: true, expires_in_ms: 6000 },
      { type: 'typing', room_id: 7, user_id: 1, typing: true, expires_in_ms: 6000 },
    ],
  }, { now: 1000 });
  assert.ok(changes.typing.has(7));
  assert.deepEqual(typersOf(state.typing, 7, 2000), [2]);
  changes = applyEvents(state, { events: [message(2, 2, 'done')] });
  assert.ok(changes.typing.has(7));
  assert.deepEqual(typersOf(state.typing, 7, 2000), []);
  // A notice that came in the same answer as its author's message is
  // older than it when the head it carries is below the message...
  applyEvents(state, {
    events: [message(3, 2, 'again')],
    ephemeral: [{ type: 'typing', room_id: 7, user_id: 2, typing: true, seq: 2, expires_in_ms: 6000 }],
  }, { now: 3000 });
  assert.deepEqual(typersOf(state.typing, 7, 3000), []);
  // ...and newer when it has reached the message: they are typing again.
  applyEvents(state, {
    events: [message(4, 2, 'and again')],
    ephemeral: [{ type: 'typing', room_id: 7, user_id: 2, typing: true, seq: 4, expires_in_ms: 6000 }],
  }, { now: 4000 });
  assert.deepEqual(typersOf(state.typing, 7, 4000), [2]);
  // A message delivered after a newer notice (the page's cursor predates
  // it) does not end that notice; a later message does.
  applyEvents(state, {
    ephemeral: [{ type: 'typing', room_id: 7, user_id: 2, typing: true, seq: 9, expires_in_ms: 6000 }],
  }, { now: 4100 });
  applyEvents(state, { events: [message(9, 2, 'sent before the notice')] }, { now: 4150 });
  assert.deepEqual(typersOf(state.typing, 7, 4150), [2]);
  applyEvents(state, { events: [message(10, 2, 'sent')] }, { now: 4200 });
  assert.deepEqual(typersOf(state.typing, 7, 4200), []);
});

test('applyEvents takes read receipts in direct rooms and notification levels from other sessions', () => {
  const state = signedIn();
  let changes = applyEvents(state, { ephemeral: [{ type: 'read_receipt', room_id: 8, user_id: 2, seq: 5 }] });
  assert.equal(state.rooms.get(8).peer_read_seq, 5);
  assert.ok(changes.receipts.has(8));
  changes = applyEvents(state, { ephemeral: [{ type: 'read_receipt', room_id: 8, user_id: 2, seq: 3 }] });
  assert.equal(state.rooms.get(8).peer_read_seq, 5, 'never backwards');
  assert.ok(!changes.receipts.has(8));
  applyEvents(state, { ephemeral: [{ type: 'read_receipt', room_id: 7, user_id: 2, seq: 3 }] });
  assert.equal(state.rooms.get(7).peer_read_seq, undefined, 'not in groups');
  changes = applyEvents(state, { ephemeral: [{ type: 'notifications', room_id: 7, level: 'none' }] });
  assert.equal(state.rooms.get(7).notifications, 'none');
  assert.ok(changes.notifications.has(7) && changes.rooms.has(7));
});

const edited = (seq, sender, target, text) => ({
  type: 'message_edited', room_id: 7, seq, ts: seq, sender_id: sender, target_seq: target, text, mentions: mentionsOf(text),
});

test('an edit that adds or drops a mention of me in an unread message has the room list read again', () => {
  const state = signedIn();
  applyEvents(state, { events: [message(2, 2, 'plain')] });
  const reload = (events) => applyEvents(state, { events }).reloadRooms;
  assert.equal(reload([edited(3, 2, 2, 'now <@1>')]), ROOM_LIST_DELAY_MS, 'named');
  assert.deepEqual(state.rooms.get(7).last_message.mentions, [1]);
  assert.equal(reload([edited(4, 2, 2, 'now <@1>!')]), null, 'still named: the count stands');
  assert.equal(reload([edited(5, 2, 2, 'no one')]), ROOM_LIST_DELAY_MS, 'no longer named');
  assert.deepEqual(state.rooms.get(7).last_message.mentions, []);
  assert.equal(reload([edited(6, 2, 2, 'no one, still')]), null);
  assert.equal(reload([edited(6, 2, 2, 'a repeat <@1>')]), null, 'an edit seen before changes nothing');
  // A read message counts no mention either way.
  state.rooms.get(7).read_seq = 6;
  assert.equal(reload([edited(7, 2, 2, 'read <@1>')]), null);
});

test('a read marker from another session that reads part of a room has the list say what is left', () => {
  const state = signedIn();
  applyEvents(state, { events: [message(2, 2, 'a <@1>'), message(3, 2, 'b'), message(4, 2, 'c <@1>')] });
  const room = state.rooms.get(7);
  assert.equal(room.mention_count, 2);
  let changes = applyEvents(state, { ephemeral: [{ type: 'read', room_id: 7, seq: 3 }] });
  assert.equal(changes.reloadRooms, ROOM_LIST_DELAY_MS);
  assert.equal(room.read_seq, 3);
  changes = applyEvents(state, { ephemeral: [{ type: 'read', room_id: 7, seq: 2 }] });
  assert.equal(changes.reloadRooms, null, 'an older marker moves nothing');
  changes = applyEvents(state, { ephemeral: [{ type: 'read', room_id: 7, seq: 4 }] });
  assert.equal(changes.reloadRooms, null, 'all read: nothing to ask');
  assert.equal(room.mention_count, 0);
  assert.equal(room.unread_count, 0);
});

test('only a message newer than a typing notice ends it', () => {
  const state = signedIn();
  applyEvents(state, { events: [message(2, 2, 'first')] });
  const typing = { type: 'typing', room_id: 7, user_id: 2, typing: true, expires_in_ms: 6000 };
  applyEvents(state, { ephemeral: [typing] }, { now: 1000 });
  // The same message again (history overlapping the stream, an older cursor).
  let changes = applyEvents(state, { events: [message(2, 2, 'first')] }, { now: 1500 });
  assert.ok(!changes.typing.has(7));
  assert.deepEqual(typersOf(state.typing, 7, 1500), [2]);
  // An old message in a batch does not make the batch's notice older than it.
  applyEvents(state, { events: [message(1, 3, 'older')], ephemeral: [{ ...typing, user_id: 3 }] }, { now: 1600 });
  assert.deepEqual(typersOf(state.typing, 7, 1600), [2, 3]);
  changes = applyEvents(state, { events: [message(3, 2, 'second')] }, { now: 2000 });
  assert.ok(changes.typing.has(7));
  assert.deepEqual(typersOf(state.typing, 7, 2000), [3]);
});
