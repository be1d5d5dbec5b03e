// The defects a review of the conversation view found, each as the test
// that would have caught it: mentions lost from a kept draft, an edit
// that retargets its mentions, the mention badge after an edit, the first
// message of a new direct conversation not notifying, a failed older page
// that kept a room unread, a session's views outliving it, an older room
// list undoing a notification choice, an invite closing the member list,
// Join opening the room twice, the emoji picker when storage is refused,
// and who types in a direct conversation. Set-up goes through the SDK.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  loginInUi, newContext, openRoomInUi, serverAndBrowser, unique,
  pageOf, twoInRoom,
} from './harness.mjs';
import { Natter } from '../../sdk/natter.js';

// Dozens of messages in a second, for the unread line.
const env = serverAndBrowser({ rateLimits: false });
const PHONE = { width: 390, height: 844 };



/** Signs in on the sign-in screen already shown, without loading the page again. */
async function signInHere(page, username) {
  await page.fill('#username', username);
  await page.fill('#password', 'password-1');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('.topbar').waitFor();
}

/** Desktop notifications the page shows, recorded (`window.shown`), with
 *  permission given; `window.hide` makes the page hidden. */
function fakeNotifications() {
  window.shown = [];
  window.Notification = class {
    static permission = 'granted';
    static requestPermission() { return Promise.resolve('granted'); }
    constructor(title, options) {
      Object.assign(this, { title, body: options?.body, closed: false });
      window.shown.push(this);
    }
    close() { this.closed = true; }
  };
  Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => Boolean(window.hide) });
}

const until = async (what, check, ms = 4000) => {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not so within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

test('a mention in a kept draft is still a mention after a reload', async () => {
  const { a, b, room, title } = await twoInRoom(env);
  const { context, page } = await pageOf(env, a);
  await openRoomInUi(page, title);
  await page.locator('.member', { hasText: 'Li Lei' }).waitFor();
  const input = page.locator('#composer');
  await input.pressSequentially('see @li');
  await page.getByRole('option', { name: /Li Lei/ }).waitFor();
  await input.press('Enter');
  await input.pressSequentially('tomorrow');
  // Kept as the server will read it: the people it names are in it.
  const key = `natter.draft.${a.user.id}.${room.id}`;
  assert.equal(await page.evaluate((k) => localStorage.getItem(k), key), `see <@${b.user.id}> tomorrow`);
  await page.reload();
  await page.locator('.room-header h2', { hasText: title }).waitFor();
  await page.waitForFunction(() => document.getElementById('composer')?.value === 'see @Li Lei tomorrow');
  await input.press('Enter');
  await page.locator('.message .mention', { hasText: '@Li Lei' }).waitFor({ timeout: 10000 });
  const sent = (await a.history(room.id)).messages.find((m) => m.text?.includes('tomorrow'));
  assert.equal(sent.text, `see <@${b.user.id}> tomorrow`);
  await context.close();
});

test('an edit keeps each mention its own person, and an unchanged edit sends nothing', async () => {
  const { a, room, title } = await twoInRoom(env);
  // Nobody the page knows: both show as "someone".
  const x = await env.server.user(`xu${unique()}`, 'Xu');
  const y = await env.server.user(`yan${unique()}`, 'Yan');
  const { seq } = await a.send(room.id, `<@${x.user.id}> and <@${y.user.id}>`);
  const { context, page } = await pageOf(env, a);
  await openRoomInUi(page, title);
  await page.locator('.message .text', { hasText: '@someone and @someone' }).waitFor();
  const edits = [];
  page.on('request', (r) => {
    if (r.method() === 'PATCH') edits.push(r.postDataJSON().text);
  });
  const input = page.locator('#composer');
  await input.press('ArrowUp');
  assert.equal(await input.inputValue(), '@someone and @someone');
  await input.press('Enter');
  await page.locator('.compose-mode').waitFor({ state: 'hidden' });
  await page.waitForTimeout(300);
  assert.deepEqual(edits, [], 'saved unchanged: nothing sent');
  await input.press('ArrowUp');
  await input.press('End');
  await input.pressSequentially('!');
  await input.press('Enter');
  await page.locator('.message .text', { hasText: '@someone and @someone!' }).waitFor({ timeout: 10000 });
  assert.deepEqual(edits, [`<@${x.user.id}> and <@${y.user.id}>!`]);
  const stored = (await a.history(room.id)).messages.find((m) => m.seq === seq);
  assert.deepEqual(stored.mentions, [x.user.id, y.user.id]);
  await context.close();
});

test('an edit that names me in an unread message brings the mention badge', async () => {
  const { a, b, room, title } = await twoInRoom(env);
  const other = await a.createRoom(`Elsewhere ${unique()}`);
  const { context, page } = await pageOf(env, a);
  await openRoomInUi(page, other.title);
  const { seq } = await b.send(room.id, 'plain words');
  const row = page.locator('.room', { hasText: title });
  await row.locator('.badge', { hasText: '1' }).waitFor({ timeout: 10000 });
  assert.equal(await row.locator('.mention-badge').count(), 0);
  await b.editMessage(room.id, seq, `plain words <@${a.user.id}>`);
  await row.locator('.mention-badge', { hasText: '@1' }).waitFor({ timeout: 10000 });
  await b.editMessage(room.id, seq, 'plain words again');
  await row.locator('.mention-badge').waitFor({ state: 'detached', timeout: 10000 });
  await context.close();
});

test('the first message of a new direct conversation notifies; a new group\'s only if it names me', async () => {
  const a = await env.server.user(`alice${unique()}`, 'Han Meimei');
  const b = await env.server.user(`bob${unique()}`, 'Li Lei');
  const c = await env.server.user(`cy${unique()}`, 'Chen Yu');
  const { context, page } = await pageOf(env, a, { init: fakeNotifications });
  await page.evaluate(() => { window.hide = true; });
  const shown = () => page.evaluate(() => window.shown.map((n) => n.body));

  const direct = await b.openDirect(a.user.id);
  await b.send(direct.id, 'hello, are you there?');
  await until('the direct message notifies', async () => (await shown()).includes('hello, are you there?'));

  const group = await c.createRoom(`Group ${unique()}`);
  await c.invite(group.id, a.user.id);
  await c.send(group.id, 'a plain hello');
  await c.send(group.id, `<@${a.user.id}> a word with you`);
  await until('the mention notifies', async () => (await shown()).includes('@Han Meimei a word with you'));
  assert.ok(!(await shown()).includes('a plain hello'), 'a group notifies of mentions only');
  await context.close();
});

test('a room whose older page cannot be read is still marked read', async () => {
  const { a, b, room, title } = await twoInRoom(env);
  const { seq } = await a.send(room.id, 'before the flood');
  await a.markRead(room.id, seq);
  for (let i = 1; i <= 60; i++) await b.send(room.id, `flood ${i}`);
  const { context, page } = await pageOf(env, a);
  let refused = 0;
  await page.route((url) => url.pathname.endsWith('/messages') && url.searchParams.has('before'), (route) => {
    refused += 1;
    return route.abort('connectionreset');
  });
  await page.locator('.room', { hasText: title }).locator('.badge', { hasText: '60' }).waitFor();
  await openRoomInUi(page, title);
  await page.locator('.message .text', { hasText: 'flood 60' }).waitFor();
  await until('the older page was asked for', () => refused > 0);
  await until('the room is read', async () => (await a.rooms()).find((r) => r.id === room.id).unread_count === 0);
  await page.locator('.room', { hasText: title }).locator('.badge').waitFor({ state: 'detached' });
  await context.close();
});

test('nothing of a session outlives it: dialogs, notifications, the New messages line, recent emoji', async () => {
  const { a, b, room, title } = await twoInRoom(env);
  const c = await env.server.user(`cy${unique()}`, 'Chen Yu');
  await c.joinRoom(room.id);
  const { seq } = await a.send(room.id, 'read up to here');
  await a.markRead(room.id, seq);
  await c.send(room.id, 'unread for Han Meimei');
  await c.send(room.id, 'and this one');

  const { context, page } = await pageOf(env, a, { init: fakeNotifications });
  await openRoomInUi(page, title);
  await page.locator('#unread-divider').waitFor();
  await page.locator('.emoji-toggle').click();
  await page.locator('.emoji-grid .emoji').first().click();
  await page.evaluate(() => { window.hide = true; });
  const last = await c.send(room.id, `<@${a.user.id}> are you coming?`);
  await b.markRead(room.id, last.seq);
  await until('notified', async () => (await page.evaluate(() => window.shown.length)) === 1);
  await page.evaluate(() => { window.hide = false; });
  await page.locator('.topbar .account').click();
  await page.locator('#settings').waitFor();

  // The session ends elsewhere (its token is logged out).
  const token = await page.evaluate(() => localStorage.getItem('natter.token'));
  await new Natter({ baseUrl: env.server.base, token }).logout();
  await page.locator('#username').waitFor({ timeout: 5000 });
  assert.equal(await page.locator('dialog').count(), 0, 'no dialog is left');
  assert.deepEqual(await page.evaluate(() => window.shown.map((n) => n.closed)), [true], 'its notification closed');

  // The next person, on the same page and address, has read the room.
  await signInHere(page, b.user.username);
  await page.locator('.room-header h2', { hasText: title }).waitFor();
  await page.locator('.message .text', { hasText: 'are you coming?' }).waitFor();
  assert.equal(await page.locator('#unread-divider').count(), 0, 'not the last user\'s New messages line');
  await page.locator('.emoji-toggle').click();
  await page.locator('.emoji-tabs [data-name="Recent"]').click();
  assert.equal(await page.locator('.emoji-grid .emoji').count(), 0, 'not the last user\'s recent emoji');
  await context.close();
});

test('a room list read before a notification choice does not undo it', async () => {
  const { a, b, room, title } = await twoInRoom(env);
  const other = await a.createRoom(`Elsewhere ${unique()}`);
  const { context, page } = await pageOf(env, a);
  await openRoomInUi(page, title);
  const choice = page.getByLabel('Notifications for this conversation');
  assert.equal(await choice.inputValue(), 'mentions');
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  let caught = false;
  await page.route((url) => url.pathname === '/api/v1/rooms', async (route) => {
    if (caught || route.request().method() !== 'GET') return route.fallback();
    caught = true;
    const response = await route.fetch(); // read now, before the choice
    await held;
    await route.fulfill({ response });
  });
  // The room changes: the list is read again (and held on its way).
  await a.updateRoom(room.id, { visibility: 'private' });
  await until('the list is asked for', () => caught);
  // Another session of the same user chooses "Nothing".
  const elsewhere = new Natter({ baseUrl: env.server.base });
  await elsewhere.login(a.user.username, 'password-1');
  await elsewhere.setNotifications(room.id, 'none');
  await page.waitForFunction(() => document.getElementById('room-notify')?.value === 'none');
  release();
  await page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/rooms');
  await page.waitForTimeout(200);
  await openRoomInUi(page, other.title);
  await openRoomInUi(page, title);
  assert.equal(await choice.inputValue(), 'none');
  void b;
  await context.close();
});

test('an invite while the member list\'s address is open keeps the member list open', async () => {
  const a = await env.server.user(`alice${unique()}`, 'Han Meimei');
  const b = await env.server.user(`bob${unique()}`, 'Li Lei');
  const room = await b.createRoom(`Private ${unique()}`);
  const { context, page } = await pageOf(env, a, { viewport: PHONE });
  await page.evaluate((id) => { location.hash = `#/rooms/${id}/members`; }, room.id);
  await page.locator('.not-member').waitFor({ state: 'attached' });
  await b.invite(room.id, a.user.id);
  // At phone width the member list is a pane of its own, over the room.
  await page.locator('.room-header h2', { hasText: room.title }).waitFor({ state: 'attached', timeout: 5000 });
  await page.locator('.member', { hasText: 'Li Lei' }).waitFor();
  assert.ok(await page.locator('#layout').evaluate((n) => n.classList.contains('show-members')), 'the member list shows');
  assert.ok(page.url().endsWith(`#/rooms/${room.id}/members`));
  assert.ok(await page.locator('#members').isVisible());
  await context.close();
});

test('Join on a link to a public room opens it once', async () => {
  const a = await env.server.user(`alice${unique()}`, 'Han Meimei');
  const b = await env.server.user(`bob${unique()}`, 'Li Lei');
  const room = await b.createRoom(`Open ${unique()}`, { visibility: 'public' });
  const { context, page } = await pageOf(env, a);
  const reads = [];
  page.on('request', (r) => {
    const path = new URL(r.url()).pathname;
    if (r.method() === 'GET' && path.startsWith(`/api/v1/rooms/${room.id}/`)) reads.push(path.split('/').pop());
  });
  await page.evaluate((id) => { location.hash = `#/rooms/${id}`; }, room.id);
  await page.locator('.not-member').getByRole('button', { name: 'Join' }).click();
  await page.locator('#composer').waitFor();
  await page.waitForTimeout(800);
  assert.deepEqual(reads.filter((p) => p === 'messages'), ['messages'], 'its history read once');
  // Once as it opens, and perhaps once more for the news of the join.
  assert.ok(reads.filter((p) => p === 'members').length <= 2, reads.join());
  await page.waitForFunction(() => document.activeElement?.id === 'composer');
  await context.close();
});

test('an emoji is put in even when the browser refuses to remember it', async () => {
  const { a, title } = await twoInRoom(env);
  const { context, page } = await pageOf(env, a, {
    init: () => {
      const setItem = Storage.prototype.setItem;
      Storage.prototype.setItem = function (key, value) {
        if (String(key).startsWith('natter.recentEmoji')) throw new DOMException('refused', 'QuotaExceededError');
        return setItem.call(this, key, value);
      };
    },
  });
  await openRoomInUi(page, title);
  await page.locator('.emoji-toggle').click();
  const first = page.locator('.emoji-grid .emoji').first();
  const emoji = await first.textContent();
  await first.click();
  assert.equal(await page.inputValue('#composer'), emoji);
  await context.close();
});

test('a direct conversation\'s row says who types by name before it is opened', async () => {
  const a = await env.server.user(`alice${unique()}`, 'Han Meimei');
  const b = await env.server.user(`bob${unique()}`, 'Li Lei');
  const direct = await b.openDirect(a.user.id);
  const { context, page } = await pageOf(env, a);
  const row = page.locator('.room', { hasText: 'Li Lei' });
  await row.waitFor();
  await b.typing(direct.id, true);
  await row.locator('.typing-preview', { hasText: 'Li Lei is typing…' }).waitFor({ timeout: 10000 });
  await context.close();
});
