// Finding one's way: a room opens at its "New messages" line; every room
// has its own address (reload, back and forward, shared links, phone
// widths' one pane at a time); a link to a room the user is not in says
// so; drafts survive reloads and never reach another user.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  loginInUi, newContext, openRoomInUi, serverAndBrowser, unique,
} from './harness.mjs';

// The set-up sends dozens of messages at once, faster than a person could.
const env = serverAndBrowser({ rateLimits: false });

const PHONE = { width: 390, height: 844 };

/** The room id in the page's address, or null for the list. */
const routeOf = (page) => page.evaluate(() => location.hash);

/** How far the "New messages" line is from the top of the message list. */
const lineOffset = (page) => page.evaluate(() => {
  const list = document.getElementById('messages');
  const line = document.getElementById('unread-divider');
  return line.getBoundingClientRect().top - list.getBoundingClientRect().top;
});

test('a room with unread messages opens at a "New messages" line that stays while it is open', async () => {
  const writer = await env.server.user(`wri${unique()}`, 'Writer');
  const readerName = `rea${unique()}`;
  const reader = await env.server.user(readerName);
  const title = `unread ${unique()}`;
  const room = await writer.createRoom(title, { visibility: 'public' });
  await reader.joinRoom(room.id);
  let last;
  for (let n = 1; n <= 30; n++) last = await writer.send(room.id, `old ${n}`);
  await reader.markRead(room.id, last.seq);
  // More unread than the first page holds: the line is found further back.
  for (let n = 1; n <= 60; n++) await writer.send(room.id, `new ${n}`);

  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, readerName);
  await page.locator('.room', { hasText: title }).locator('.badge', { hasText: '60' }).waitFor();
  await openRoomInUi(page, title);
  const line = page.locator('#unread-divider');
  await line.waitFor({ timeout: 10000 });
  assert.equal(await line.textContent(), 'New messages');
  // Just before the first unread message, and scrolled to the top of the list.
  const next = await page.evaluate(() => document.getElementById('unread-divider').nextElementSibling?.querySelector('.text')?.textContent);
  const before = await page.evaluate(() => {
    let item = document.getElementById('unread-divider').previousElementSibling;
    while (item && !item.querySelector('.text')) item = item.previousElementSibling;
    return item?.querySelector('.text')?.textContent;
  });
  assert.equal(next, 'new 1');
  assert.equal(before, 'old 30');
  await page.waitForFunction(() => {
    const list = document.getElementById('messages');
    const top = document.getElementById('unread-divider').getBoundingClientRect().top - list.getBoundingClientRect().top;
    return top >= 0 && top < 40;
  }, null, { timeout: 5000 });
  assert.equal(await page.locator('.message .text', { hasText: /^new 60$/ }).isVisible(), true, 'in the page');
  assert.ok(!(await page.locator('.message .text', { hasText: /^new 60$/ }).evaluate((n) => {
    const list = document.getElementById('messages').getBoundingClientRect();
    const box = n.getBoundingClientRect();
    return box.top < list.bottom && box.bottom > list.top;
  })), 'the newest message is below, out of view');
  // Not read yet: the user has not seen the bottom.
  assert.equal(await page.locator('.room', { hasText: title }).locator('.badge').count(), 1);

  // Reading to the bottom marks the room read, as before; the line stays.
  await page.locator('#messages').evaluate((list) => { list.scrollTop = list.scrollHeight; });
  await page.locator('.room', { hasText: title }).locator('.badge').waitFor({ state: 'detached', timeout: 5000 });
  await writer.send(room.id, 'while you read');
  await page.locator('.message .text', { hasText: 'while you read' }).waitFor();
  assert.equal(await page.locator('#unread-divider').count(), 1);
  assert.equal(await page.evaluate(() => document.getElementById('unread-divider').nextElementSibling?.querySelector('.text')?.textContent), 'new 1');
  const deadline = Date.now() + 5000;
  let readSeq = 0;
  while (Date.now() < deadline) {
    readSeq = (await reader.rooms()).find((r) => r.id === room.id).read_seq;
    if (readSeq >= last.seq + 60) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(readSeq >= last.seq + 60, 'the read marker reached the server');

  // Opened again with nothing unread: no line, at the bottom.
  await page.reload();
  await page.locator('.message .text', { hasText: 'while you read' }).waitFor();
  assert.equal(await page.locator('#unread-divider').count(), 0);
  await context.close();
});

test('each room has its own address: reload, back and forward, and a shared link open it', async () => {
  const name = `nav${unique()}`;
  const me = await env.server.user(name);
  const peerName = `peer${unique()}`;
  const peer = await env.server.user(peerName);
  const first = await me.createRoom(`first ${unique()}`);
  const second = await me.createRoom(`second ${unique()}`);
  const direct = await peer.openDirect(me.user.id);
  await peer.send(direct.id, 'a direct hello');

  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, name);
  await page.locator('.room').first().waitFor();
  assert.ok(['', '#/'].includes(await routeOf(page)), 'the list has no room in its address');

  await openRoomInUi(page, first.title);
  assert.equal(await routeOf(page), `#/rooms/${first.id}`);
  await openRoomInUi(page, second.title);
  assert.equal(await routeOf(page), `#/rooms/${second.id}`);
  await page.locator('.room', { hasText: peerName }).click();
  await page.locator('.room-header h2', { hasText: peerName }).waitFor();
  assert.equal(await routeOf(page), `#/rooms/${direct.id}`, 'direct conversations too');

  await page.goBack();
  await page.locator('.room-header h2', { hasText: second.title }).waitFor();
  await page.goBack();
  await page.locator('.room-header h2', { hasText: first.title }).waitFor();
  await page.goForward();
  await page.locator('.room-header h2', { hasText: second.title }).waitFor();
  assert.equal(await page.locator('.room.active').getAttribute('data-room'), String(second.id));

  await page.reload();
  await page.locator('.room-header h2', { hasText: second.title }).waitFor();
  await page.locator('#composer').waitFor();

  // A link shared into another tab opens that room, a direct one included.
  const tab = await context.newPage();
  await tab.goto(`${env.server.base}/#/rooms/${direct.id}`);
  await tab.locator('.message .text', { hasText: 'a direct hello' }).waitFor();
  // An address edited by hand (or a link in a message) is followed too.
  await tab.evaluate((id) => { location.hash = `#/rooms/${id}`; }, first.id);
  await tab.locator('.room-header h2', { hasText: first.title }).waitFor();
  await tab.evaluate(() => { location.hash = '#/'; });
  await tab.locator('.room-header').waitFor({ state: 'detached' });
  await context.close();
});

test('at phone width back goes from the member list to its room, and from the room to the list', async () => {
  const name = `ph${unique()}`;
  const me = await env.server.user(name);
  const room = await me.createRoom(`phone ${unique()}`);
  const context = await newContext(env.browser, { viewport: PHONE });
  const page = await context.newPage();
  await loginInUi(page, env.server.base, name);
  await page.locator('.room').first().waitFor();
  const back = page.locator('.topbar .back');
  assert.equal(await back.isVisible(), false, 'no back arrow on the list');

  await openRoomInUi(page, room.title);
  await back.waitFor();
  await page.getByRole('button', { name: 'Members' }).click();
  await page.locator('.member-list .member', { hasText: name }).waitFor();
  assert.equal(await routeOf(page), `#/rooms/${room.id}/members`);
  assert.equal(await page.locator('#composer').isVisible(), false);

  await back.click();
  await page.locator('#composer').waitFor();
  assert.equal(await page.locator('.member-list').isVisible(), false);
  assert.equal(await routeOf(page), `#/rooms/${room.id}`);
  await back.click();
  await page.locator('.room', { hasText: room.title }).waitFor();
  assert.equal(await page.locator('#composer').isVisible(), false);
  assert.equal(await back.isVisible(), false);
  assert.ok(['', '#/'].includes(await routeOf(page)));
  // The keyboard is on the room it came back from.
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.room), String(room.id));

  // The browser's own back and forward walk the same steps.
  await page.goForward();
  await page.locator('#composer').waitFor();
  await page.goForward();
  await page.locator('.member-list .member', { hasText: name }).waitFor();
  await page.goBack();
  await page.locator('#composer').waitFor();
  await page.goBack();
  await page.locator('.room', { hasText: room.title }).waitFor();
  assert.equal(await back.isVisible(), false);

  // A reload on the member list's address shows the member list.
  await page.goForward();
  await page.goForward();
  await page.locator('.member-list').waitFor();
  await page.reload();
  await page.locator('.member-list .member', { hasText: name }).waitFor();
  await context.close();
});

test('a link to a room the user is not in says so, and a public one can be joined from there', async () => {
  const owner = await env.server.user(`own${unique()}`);
  const name = `out${unique()}`;
  await env.server.user(name);
  const secret = await owner.createRoom(`private ${unique()}`);
  const open = await owner.createRoom(`public ${unique()}`, { visibility: 'public' });
  await owner.send(open.id, 'welcome, newcomer');

  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, name);
  await page.goto(`${env.server.base}/#/rooms/${secret.id}`);
  await page.getByRole('heading', { name: 'You are not in this conversation' }).waitFor();
  assert.equal(await page.locator('#composer').count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Join', exact: true }).count(), 0);
  assert.ok(!(await page.locator('#conversation').innerText()).includes(secret.title), 'nothing of the room shows');

  await page.goto(`${env.server.base}/#/rooms/999999999`);
  await page.getByRole('heading', { name: 'You are not in this conversation' }).waitFor();
  await page.getByRole('button', { name: 'Back to conversations' }).click();
  await page.getByRole('heading', { name: 'You are not in this conversation' }).waitFor({ state: 'detached' });
  assert.ok(['', '#/'].includes(await routeOf(page)));

  await page.goto(`${env.server.base}/#/rooms/${open.id}`);
  await page.getByText(`“${open.title}” is a public room`).waitFor();
  await page.getByRole('button', { name: 'Join', exact: true }).click();
  await page.locator('.message .text', { hasText: 'welcome, newcomer' }).waitFor();
  await page.locator('.room.active', { hasText: open.title }).waitFor();
  await context.close();
});

test('an unsent draft is kept per room across reloads, and never shown to the next user', async () => {
  const name = `dr${unique()}`;
  const me = await env.server.user(name);
  const otherName = `dr2${unique()}`;
  const other = await env.server.user(otherName);
  const one = await me.createRoom(`drafts one ${unique()}`, { visibility: 'public' });
  const two = await me.createRoom(`drafts two ${unique()}`);
  await other.joinRoom(one.id);

  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, name);
  await openRoomInUi(page, one.title);
  await page.fill('#composer', 'half a thought');
  await openRoomInUi(page, two.title);
  await page.fill('#composer', 'another, for two');
  await page.reload();
  await page.locator('.room-header h2', { hasText: two.title }).waitFor();
  assert.equal(await page.inputValue('#composer'), 'another, for two');
  await openRoomInUi(page, one.title);
  assert.equal(await page.inputValue('#composer'), 'half a thought');

  // Sent: gone, here and after a reload.
  await page.press('#composer', 'Enter');
  await page.locator('.message:not(.pending) .text', { hasText: 'half a thought' }).waitFor();
  assert.equal(await page.inputValue('#composer'), '');
  await page.reload();
  await page.locator('.message .text', { hasText: 'half a thought' }).waitFor();
  assert.equal(await page.inputValue('#composer'), '');

  // Logging out forgets the user's drafts; the next user sees none.
  await page.fill('#composer', 'not for anyone else');
  const stored = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('natter.draft.')));
  assert.deepEqual(stored.sort(), [`natter.draft.${me.user.id}.${one.id}`, `natter.draft.${me.user.id}.${two.id}`].sort());
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.locator('#username').waitFor();
  assert.deepEqual(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('natter.draft.'))), []);
  await loginInUi(page, env.server.base, otherName);
  await openRoomInUi(page, one.title);
  assert.equal(await page.inputValue('#composer'), '');
  await context.close();
});
