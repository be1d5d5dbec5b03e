// Tests of the loaded member pages (web/app/member-pages.js): the
// server's order, joins and leaves placed without a reload, pages on
// their way that hear of them. No server, no DOM:
//   node --test web/tests/member-pages.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { appendPage, applyMembership, compareMembers, isComplete, nameMatches, newList } from '../app/member-pages.js';

const m = (id, name) => ({ id, display_name: name, online: false });
const page = (members, next = null, count = members.length, countSeq = 0) =>
  ({ members, next, member_count: count, member_count_seq: countSeq, online_count: 0 });
const join = (seq, id, name) => ({ type: 'member_joined', seq, room_id: 7, user_id: id, display_name: name, role: 'member' });
const leave = (seq, id) => ({ type: 'member_left', seq, room_id: 7, user_id: id });
const ids = (list) => list.members.map((x) => x.id);

test('the order is the server’s: code points of the name, then id', () => {
  const sorted = [m(3, 'Bo'), m(1, 'Ann'), m(2, 'Ann'), m(4, 'bo'), m(5, '李雷'), m(6, '😀')].sort(compareMembers);
  assert.deepEqual(sorted.map((x) => x.id), [1, 2, 3, 4, 5, 6]);
  assert.ok(nameMatches('Li Lei', 'li l'));
  assert.ok(nameMatches('韩梅梅', '梅'));
  assert.ok(!nameMatches('Ann', 'bo'));
  assert.ok(nameMatches('Ann', '  '));
});

test('a complete list places a joiner by name and loses a leaver; the count follows', () => {
  const list = newList(7, '', page([m(1, 'Ann'), m(3, 'Cy')]));
  assert.ok(isComplete(list));
  applyMembership(list, join(5, 2, 'Bo'));
  assert.deepEqual(ids(list), [1, 2, 3]);
  assert.equal(list.count, 3);
  applyMembership(list, leave(6, 1));
  assert.deepEqual(ids(list), [2, 3]);
  assert.equal(list.count, 2);
  // The same events again (an older cursor) change nothing.
  applyMembership(list, join(5, 2, 'Bo'));
  applyMembership(list, leave(6, 1));
  assert.equal(list.count, 2);
});

test('a list in pages places a joiner only within what is loaded', () => {
  const list = newList(7, '', page([m(1, 'Ann'), m(3, 'Cy')], 3, 10));
  applyMembership(list, join(1, 2, 'Bo'));
  applyMembership(list, join(2, 9, 'Zed'));
  assert.deepEqual(ids(list), [1, 2, 3], 'Zed belongs to a page not read yet');
  assert.equal(list.count, 12);
  appendPage(list, page([m(4, 'Di'), m(9, 'Zed')], null, 12));
  assert.deepEqual(ids(list), [1, 2, 3, 4, 9]);
  assert.ok(isComplete(list));
});

test('a search list shows only those its text finds and keeps no count', () => {
  const list = newList(7, 'li', page([m(1, 'Li Lei')], null, 40));
  applyMembership(list, join(1, 2, 'Bo'));
  applyMembership(list, join(2, 3, 'Alice'));
  assert.deepEqual(ids(list), [3, 1]);
  assert.equal(list.count, 40);
});

test('joins and leaves heard while a page was read go with it', () => {
  // The first page: a join it may already hold, a leave it still lists.
  const first = newList(7, '', page([m(1, 'Ann'), m(2, 'Bo')], null, 2, 4), {
    asOf: 3, heard: [join(3, 1, 'Ann'), join(4, 2, 'Bo'), leave(5, 1)],
  });
  assert.deepEqual(ids(first), [2]);
  assert.equal(first.count, 1);
  // A next page that still lists someone who left while it was read.
  const list = newList(7, '', page([m(1, 'Ann')], 1, 3));
  applyMembership(list, leave(9, 4));
  appendPage(list, page([m(4, 'Di'), m(5, 'Ed')], null, 3), [leave(9, 4)]);
  assert.deepEqual(ids(list), [1, 5]);
  assert.equal(list.count, 2);
});

test('a join heard while a big room\'s first page was read is counted once', () => {
  // The count (1,001) already holds Zed's join (seq 20), but the first
  // page of 2 does not list Zed: the page's members cannot tell, the
  // count's seq can.
  const counted = newList(7, '', page([m(1, 'Ann'), m(2, 'Bo')], 2, 1001, 20), {
    asOf: 19, heard: [join(20, 99, 'Zed')],
  });
  assert.equal(counted.count, 1001);
  assert.deepEqual(ids(counted), [1, 2]);
  // A join newer than the count, though the page (read after it was
  // committed) lists the joiner already: counted, listed once.
  const listed = newList(7, '', page([m(1, 'Ann'), m(2, 'Bo')], 2, 1000, 19), {
    asOf: 19, heard: [join(20, 2, 'Bo')],
  });
  assert.equal(listed.count, 1001);
  assert.deepEqual(ids(listed), [1, 2]);
  // Later events go on from there; a replay of the counted one does not.
  applyMembership(counted, join(20, 99, 'Zed'));
  applyMembership(counted, leave(21, 1));
  assert.equal(counted.count, 1000);
  assert.deepEqual(ids(counted), [2]);
});
