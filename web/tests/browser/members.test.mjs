// The member pane of a room bigger than one page (issue 14): the first 50
// members by name, "Show more" for the rest, a search the server answers,
// joins and leaves placed without reading the list again, and the `@`
// autocomplete asking the server for people not loaded. 60 members, in a
// server whose rooms of more than 3 are big (presence only to watchers).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  expectAccessible, loginInUi, newContext, openRoomInUi, screenshot, serverAndBrowser, unique,
} from './harness.mjs';

const env = serverAndBrowser({ rateLimits: false, args: ['--big-room-members', '3'] });

const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
const LOCALES = { en: 'en-US', zh: 'zh-CN' };

/** The big room, made once: its owner "Ann Owner", "Li Lei", "韩梅梅" and
 *  57 students "Student 00" … "Student 56" (60 in all). By name the first
 *  page is Ann, Li Lei and Students 00–47; the second Students 48–56 and
 *  韩梅梅 (code point order puts Chinese after Latin). */
let made = null;
async function bigRoom() {
  if (made) return made;
  const tag = unique();
  const owner = await env.server.user(`own${tag}`, 'Ann Owner');
  const room = await owner.createRoom(`Grade 3 ${tag}`, { visibility: 'public' });
  const names = ['Li Lei', '韩梅梅', ...Array.from({ length: 57 }, (_, i) => `Student ${String(i).padStart(2, '0')}`)];
  const people = [];
  // Two at a time: each registration is a password hash.
  for (let i = 0; i < names.length; i += 2) {
    people.push(...await Promise.all(names.slice(i, i + 2).map(async (name, j) => {
      const client = await env.server.user(`s${i + j}${tag}`, name);
      await client.joinRoom(room.id);
      return client;
    })));
  }
  made = { owner, room, people, tag, byName: (name) => people.find((p) => p.user.display_name === name) };
  return made;
}

/** The member-list reads `page` makes of `roomId` (their query strings). */
function memberReads(page, roomId) {
  const reads = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (request.method() === 'GET' && url.pathname === `/api/v1/rooms/${roomId}/members`) reads.push(url.search);
  });
  return reads;
}

/** A page of the owner with the big room open; `requests` lists the
 *  member-list reads it makes (their query strings). */
async function ownerPage({ locale, viewport } = {}) {
  const { owner, room } = await bigRoom();
  const context = await newContext(env.browser, { locale, viewport });
  const page = await context.newPage();
  const requests = memberReads(page, room.id);
  await loginInUi(page, env.server.base, owner.user.username);
  await openRoomInUi(page, room.title);
  await page.locator('#connection[data-state="connected"]').waitFor();
  return { context, page, requests };
}

const rows = (page) => page.locator('#members .member-list .member');

test('a room bigger than a page: the first page, Show more for the rest, and a search by part of a name', async () => {
  const { room } = await bigRoom();
  const { context, page, requests } = await ownerPage();
  await page.locator('#members h2', { hasText: '60 members' }).waitFor();
  assert.equal(await rows(page).count(), 50);
  assert.deepEqual(requests, ['?limit=50'], 'one page read on open');
  assert.equal(await rows(page).first().locator('.name').textContent(), 'Ann Owner (you)');
  assert.equal(await page.locator('#members .member', { hasText: '韩梅梅' }).count(), 0, 'not on the first page');
  await expectAccessible(page, 'the paged member pane');

  // A search the server answers, by part of a name, Chinese too.
  const box = page.getByRole('searchbox', { name: 'Search members by name' });
  const asked = (q) => requests.some((r) => new URLSearchParams(r).get('q') === q);
  await box.fill('梅');
  await page.locator('#members .member', { hasText: '韩梅梅' }).waitFor();
  await page.waitForFunction(() => document.querySelectorAll('#members .member').length === 1);
  assert.ok(asked('梅'), `the server was asked: ${requests}`);
  await box.fill('LEI');
  await page.locator('#members .member', { hasText: 'Li Lei' }).waitFor();
  await page.waitForFunction(() => document.querySelectorAll('#members .member').length === 1);
  assert.ok(asked('LEI'), `the server was asked: ${requests}`);
  await box.fill('nobody-here');
  await page.locator('#member-status', { hasText: 'No member by that name.' }).waitFor();
  assert.equal(await rows(page).count(), 0);
  // A search finds more than a page: it pages the same way.
  await box.fill('student');
  await page.waitForFunction(() => document.querySelectorAll('#members .member').length === 50);
  const more = page.getByRole('button', { name: 'Show more' });
  await more.click();
  await page.waitForFunction(() => document.querySelectorAll('#members .member').length === 57);
  assert.ok(requests.some((r) => /after=[\w-]+/.test(r) && new URLSearchParams(r).get('q') === 'student'), `${requests}`);
  assert.equal(await more.count(), 0);
  // Cleared: the first page of everyone again, as loaded, with no read.
  const before = requests.length;
  await box.fill('');
  await page.waitForFunction(() => document.querySelectorAll('#members .member').length === 50);
  assert.equal(requests.length, before);
  assert.equal(await page.locator('#member-status').textContent(), '');

  // Show more, from the keyboard: the rest, none twice, and the button goes.
  await more.focus();
  await page.keyboard.press('Enter');
  await page.locator('#members .member', { hasText: '韩梅梅' }).waitFor();
  assert.equal(await rows(page).count(), 60);
  const ids = await rows(page).evaluateAll((nodes) => nodes.map((n) => n.dataset.user));
  assert.equal(new Set(ids).size, 60, 'no one twice');
  assert.equal(await more.count(), 0, 'nothing more to show');
  assert.ok(/after=[\w-]+/.test(requests.at(-1)) && !new URLSearchParams(requests.at(-1)).has('q'), `${requests}`);
  // The keyboard went on to the first member the last page brought.
  assert.equal(await page.evaluate(() => document.activeElement?.closest('.member')?.textContent), 'Student 48Message');

  // All loaded now: a search is answered here, without asking.
  const loaded = requests.length;
  await box.fill('梅');
  await page.waitForFunction(() => document.querySelectorAll('#members .member').length === 1);
  assert.equal(requests.length, loaded);
  assert.equal(await page.locator('#members h2', { hasText: '60 members' }).count(), 1, `room ${room.id}`);
  await context.close();
});

test('in a big room a joiner appears in name order and a leaver goes, with no reload of the list', async () => {
  const { room, tag } = await bigRoom();
  const { context, page, requests } = await ownerPage();
  await page.locator('#members h2', { hasText: '60 members' }).waitFor();
  const read = requests.length;

  // "Student 10a" belongs on the loaded page, after Student 10.
  const joiner = await env.server.user(`j${tag}`, 'Student 10a');
  await joiner.joinRoom(room.id);
  const row = page.locator('#members .member', { hasText: 'Student 10a' });
  await row.waitFor();
  await page.locator('#members h2', { hasText: '61 members' }).waitFor();
  const order = await rows(page).locator('.name').allTextContents();
  assert.equal(order[order.indexOf('Student 10a') - 1], 'Student 10');
  assert.equal(order[order.indexOf('Student 10a') + 1], 'Student 11');

  // "Zed" belongs to a page not read yet: only the count moves.
  const late = await env.server.user(`z${tag}`, 'Zed');
  await late.joinRoom(room.id);
  await page.locator('#members h2', { hasText: '62 members' }).waitFor();
  assert.equal(await page.locator('#members .member', { hasText: 'Zed' }).count(), 0);

  await joiner.leaveRoom(room.id);
  await row.waitFor({ state: 'detached' });
  await late.leaveRoom(room.id);
  await page.locator('#members h2', { hasText: '60 members' }).waitFor();
  assert.equal(await rows(page).count(), 50);
  assert.equal(requests.length, read, `no member list read for joins and leaves: ${requests.slice(read)}`);
  await context.close();
});

test('the @ autocomplete of a big room finds a member the loaded page does not hold', async () => {
  const { context, page, requests } = await ownerPage();
  await page.locator('#members h2', { hasText: '60 members' }).waitFor();
  await page.locator('#composer').fill('Hello @韩');
  await page.locator('#composer').press('End');
  const option = page.getByRole('option', { name: /韩梅梅/ });
  await option.waitFor();
  assert.ok(requests.some((q) => new URLSearchParams(q).get('q') === '韩'), `the server was asked: ${requests}`);
  await page.locator('#composer').press('Enter');
  assert.equal(await page.locator('#composer').inputValue(), 'Hello @韩梅梅 ');
  // A member on the loaded page is offered at once, the server's answer
  // adding to it; the user is never offered to themself.
  await page.locator('#composer').fill('');
  await page.locator('#composer').pressSequentially('@Li');
  await page.getByRole('option', { name: /Li Lei/ }).waitFor();
  await page.locator('#composer').fill('');
  await page.locator('#composer').pressSequentially('@Ann');
  await page.waitForTimeout(600);
  assert.equal(await page.locator('#mention-list [role="option"]').count(), 0, 'the owner is not offered to herself');
  await context.close();
});

test('a reconnect reads no member list again; lost news (ephemeral_gap) reads the first page only', async () => {
  const { owner, room } = await bigRoom();
  // The page's own stream (no shared worker), so its polls can be cut
  // off or told that news was lost.
  const context = await newContext(env.browser);
  await context.addInitScript(() => Object.defineProperty(window, 'SharedWorker', { value: undefined }));
  const page = await context.newPage();
  const cut = { polls: 0, gap: false };
  await page.route('**/api/v1/events?*', async (route) => {
    if (cut.polls > 0) {
      cut.polls -= 1;
      return route.abort('connectionreset');
    }
    let response;
    let answer;
    try {
      response = await route.fetch();
      answer = await response.json();
    } catch {
      return route.abort().catch(() => {}); // renewed, or the page closed meanwhile
    }
    if (cut.gap && answer.cursor) {
      cut.gap = false;
      answer.ephemeral_gap = true;
    }
    await route.fulfill({ response, json: answer }).catch(() => {});
  });
  const requests = memberReads(page, room.id);
  await loginInUi(page, env.server.base, owner.user.username);
  await openRoomInUi(page, room.title);
  await page.locator('#connection[data-state="connected"]').waitFor();
  await page.locator('#members h2', { hasText: '60 members' }).waitFor();
  await page.getByRole('button', { name: 'Show more' }).click();
  await page.locator('#members .member', { hasText: '韩梅梅' }).waitFor();
  const read = requests.length;

  // The next polls fail: the page reconnects from its cursor, and reads
  // no member list again (nothing was lost).
  cut.polls = 2;
  await owner.send(room.id, 'a poll answers, the next ones fail');
  await page.locator('#connection[data-state="reconnecting"]').waitFor();
  await page.locator('#connection[data-state="connected"]').waitFor({ timeout: 15000 });
  await owner.send(room.id, 'back');
  await page.locator('.message .text', { hasText: 'back' }).waitFor();
  assert.deepEqual(requests.slice(read), [], 'no member list read after a reconnect');
  assert.equal(await rows(page).count(), 60, 'what was loaded stays');

  // News was lost: the first page is read again, once.
  cut.gap = true;
  await owner.send(room.id, 'some news was lost');
  await page.waitForFunction(() => document.querySelectorAll('#members .member').length === 50);
  assert.deepEqual(requests.slice(read), ['?limit=50']);
  await context.close();
});

test('screenshots of the paged member pane', async () => {
  const { room } = await bigRoom();
  for (const [lang, locale] of Object.entries(LOCALES)) {
    for (const [size, viewport] of Object.entries(SIZES)) {
      const { context, page } = await ownerPage({ locale, viewport });
      if (size === 'phone') {
        await page.locator('.members-toggle').click();
        await page.locator('#members').waitFor({ state: 'visible' });
      }
      await page.locator('#members h2', { hasText: lang === 'zh' ? '60 位成员' : '60 members' }).waitFor();
      await page.getByRole('button', { name: lang === 'zh' ? '显示更多' : 'Show more' }).waitFor();
      await screenshot(page, `${size}-${lang}-members-paged`);
      await page.locator('#member-search').fill('Student 4');
      await page.waitForFunction(() => document.querySelectorAll('#members .member').length === 10);
      await screenshot(page, `${size}-${lang}-members-search`);
      assert.ok(room.id);
      await context.close();
    }
  }
});
