// The web client under hostile input and failure: XSS payloads render as
// text; a server restart is survived without losing or repeating
// messages; history pages in order; three tabs share one event poll.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  failNextGets, loginAndLoadRooms, loginInUi, newContext, openRoomInUi, registerInUi, sendInUi,
  serverAndBrowser, unique,
} from './harness.mjs';

// Its set-up creates rooms and messages in bulk, faster than the rate
// limits let a person.
const env = serverAndBrowser({ rateLimits: false });

/** Each would run script or inject markup if it were ever treated as HTML. */
const XSS = [
  '<script>window.__xss=1</script>',
  '<img src=x onerror="window.__xss=1">',
  '<svg onload="window.__xss=1">',
  '<svg><script>window.__xss=1</script></svg>',
  '<iframe src="javascript:window.__xss=1"></iframe>',
  '<body onload="window.__xss=1">',
  '<a href="javascript:window.__xss=1">click</a>',
  '"><script>window.__xss=1</script>',
  "'><img src=x onerror=window.__xss=1>",
  '<div onmouseover="window.__xss=1">hover</div>',
  '<input autofocus onfocus="window.__xss=1">',
  '<details open ontoggle="window.__xss=1">',
  '<video><source onerror="window.__xss=1"></video>',
  '<audio src=x onerror="window.__xss=1">',
  '<object data="javascript:window.__xss=1">',
  '<embed src="javascript:window.__xss=1">',
  '<math><mtext><img src=x onerror=window.__xss=1></mtext></math>',
  '<style>@import "javascript:window.__xss=1"</style>',
  '<link rel=stylesheet href="javascript:window.__xss=1">',
  '<meta http-equiv="refresh" content="0;url=javascript:window.__xss=1">',
  '<form action="javascript:window.__xss=1"><button>go</button></form>',
  '<marquee onstart="window.__xss=1">',
  '<select autofocus onfocus="window.__xss=1">',
  '<textarea autofocus onfocus="window.__xss=1">',
  '<keygen autofocus onfocus="window.__xss=1">',
  '<isindex type=image src=1 onerror="window.__xss=1">',
  '<base href="javascript:window.__xss=1//">',
  '{{constructor.constructor("window.__xss=1")()}}',
  '${window.__xss=1}',
  'javascript:window.__xss=1',
  '<img src="x" onerror="&#119;indow.__xss=1">',
  '<scr<script>ipt>window.__xss=1</scr</script>ipt>',
  'https://example.com/"><img src=x onerror=window.__xss=1>',
  '<x onclick=window.__xss=1>click me</x>',
];

test('XSS payloads in messages, names and room titles render as inert text', async () => {
  assert.ok(XSS.length >= 30);
  const owner = await env.server.user(`own${unique()}`);
  const viewerName = `see${unique()}`;
  const viewer = await env.server.user(viewerName);
  const rooms = [];
  for (const [i, payload] of XSS.entries()) {
    // Display names are at most 64 characters, titles 100.
    await owner.updateProfile({ displayName: payload.slice(0, 64) });
    const room = await owner.createRoom(payload.slice(0, 100), { visibility: 'public' });
    await viewer.joinRoom(room.id);
    await owner.send(room.id, payload);
    rooms.push(room);
    if (i === 0) await owner.send(room.id, XSS.join('\n'));
  }

  const context = await newContext(env.browser);
  const page = await context.newPage();
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  await loginInUi(page, env.server.base, viewerName);
  await page.locator('.room').first().waitFor();
  for (const room of rooms.slice(0, 8)) {
    await page.locator(`.room[data-room="${room.id}"]`).click();
    await page.locator('.message .text').first().waitFor();
  }
  await page.locator(`.room[data-room="${rooms[0].id}"]`).click();
  await page.locator('.message .text').nth(1).waitFor();

  const report = await page.evaluate(() => ({
    xss: window.__xss,
    scripts: document.querySelectorAll('script').length,
    injected: document.querySelectorAll('#app iframe, #app object, #app embed, #app svg:not(.bell), #app video, #app audio, #app math, #app style, #app link, #app meta, #app base, #app form:not(.composer):not(.new-room), #app marquee, #app x, #app input:not(#new-room-title):not(#new-room-public):not(#new-direct-search):not(#member-search)').length,
    handlers: [...document.querySelectorAll('#app *')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
    javascriptLinks: [...document.querySelectorAll('#app a')].filter((a) => !/^https?:/.test(a.href)).length,
    text: document.getElementById('messages').textContent,
  }));
  assert.equal(report.xss, undefined, 'no payload ran');
  assert.equal(dialogs.length, 0, 'no dialog opened');
  assert.equal(report.scripts, 1, 'only the app module script');
  assert.equal(report.injected, 0, 'no injected element');
  assert.equal(report.handlers, 0, 'no inline event handler attribute');
  assert.equal(report.javascriptLinks, 0, 'only http(s) links');
  assert.ok(report.text.includes('<img src=x onerror="window.__xss=1">'), 'payloads show as text');
  await context.close();
});

test('the page survives a server restart and shows messages sent meanwhile exactly once', async () => {
  const sender = await env.server.user(`snd${unique()}`);
  const readerName = `rdr${unique()}`;
  const reader = await env.server.user(readerName);
  const title = `restart ${unique()}`;
  const room = await sender.createRoom(title, { visibility: 'public' });
  await reader.joinRoom(room.id);

  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, readerName);
  await openRoomInUi(page, title);
  await page.locator('#connection[data-state="connected"]').waitFor();
  // A form the user is filling in survives the reconnect and the reload.
  await page.getByText('New room').click();
  await page.fill('#new-room-title', 'half-typed title');

  await env.server.stop();
  await page.locator('#connection[data-state="reconnecting"]').waitFor({ timeout: 15000 });
  await env.server.launch();
  await sender.send(room.id, 'sent while you were away');
  await page.locator('#connection[data-state="connected"]').waitFor({ timeout: 40000 });
  await page.locator('.message .text', { hasText: 'sent while you were away' }).waitFor({ timeout: 5000 });
  await sender.send(room.id, 'and after');
  await page.locator('.message .text', { hasText: 'and after' }).waitFor({ timeout: 3000 });
  assert.equal(await page.locator('.message .text', { hasText: 'sent while you were away' }).count(), 1);
  assert.equal(await page.inputValue('#new-room-title'), 'half-typed title');
  assert.ok(await page.locator('#new-room-title').isVisible(), 'the new-room form is still open');
  await context.close();
});

test('history pages back in order, and emoticon codes show as emoji', async () => {
  const writer = await env.server.user(`wr${unique()}`);
  const readerName = `rd${unique()}`;
  const reader = await env.server.user(readerName);
  const title = `history ${unique()}`;
  const room = await writer.createRoom(title, { visibility: 'public' });
  await reader.joinRoom(room.id);
  for (let n = 1; n <= 120; n++) await writer.send(room.id, `line ${n} [微笑] :thumbsup:`);

  const context = await newContext(env.browser, { viewport: { width: 1280, height: 700 } });
  const page = await context.newPage();
  await loginInUi(page, env.server.base, readerName);
  await openRoomInUi(page, title);
  await page.locator('.message .text', { hasText: 'line 120 🙂 👍' }).waitFor();
  for (let i = 0; i < 10; i++) {
    if ((await page.locator('.message .text', { hasText: /^line 1 / }).count()) > 0) break;
    await page.locator('#messages').evaluate((list) => { list.scrollTop = 0; });
    await page.waitForTimeout(400);
  }
  const lines = await page.locator('.message .text').allTextContents();
  const numbers = lines.map((l) => Number(/^line (\d+)/.exec(l)?.[1])).filter(Number.isFinite);
  assert.deepEqual(numbers, Array.from({ length: 120 }, (_, i) => i + 1), 'every line once, in order');
  await page.locator('.system', { hasText: 'This is the beginning of the conversation.' }).waitFor();
  await context.close();
});

test('three tabs of one browser share one event poll, and all show new messages', async () => {
  const name = `tabs${unique()}`;
  const context = await newContext(env.browser);
  const first = await context.newPage();
  await registerInUi(first, env.server.base, name);
  const token = await first.evaluate(() => localStorage.getItem('natter.token'));
  const title = `tabs ${unique()}`;
  await first.getByText('New room').click();
  await first.fill('#new-room-title', title);
  await first.getByRole('button', { name: 'Create' }).click();
  await first.locator('.room-header h2', { hasText: title }).waitFor();
  const roomId = Number(await first.locator('.room.active').getAttribute('data-room'));

  const tabs = [first, await context.newPage(), await context.newPage()];
  for (const tab of tabs.slice(1)) {
    await tab.goto(env.server.base + '/');
    await tab.locator('.topbar').waitFor();
    await openRoomInUi(tab, title);
  }
  for (const tab of tabs) await tab.locator('#connection[data-state="connected"]').waitFor();

  const friend = await env.server.user(`fr${unique()}`);
  const owner = new (friend.constructor)({ baseUrl: env.server.base, token });
  await owner.invite(roomId, friend.user.id);
  await friend.send(roomId, 'hello all tabs');
  for (const tab of tabs) await tab.locator('.message .text', { hasText: 'hello all tabs' }).waitFor({ timeout: 3000 });

  // The server counts this user's open polls: one, shared by the three
  // tabs, every time we look once the tabs have settled.
  await new Promise((r) => setTimeout(r, 500));
  const samples = [];
  for (let i = 0; i < 5; i++) {
    samples.push((await owner.request('GET', '/api/v1/me')).open_event_polls);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(samples, [1, 1, 1, 1, 1], 'three tabs hold one event poll');
  await context.close();
});

test('a send whose answer is lost is retried with the same id and stored once', async () => {
  const name = `lost${unique()}`;
  const me = await env.server.user(name);
  const title = `lost ${unique()}`;
  const room = await me.createRoom(title);
  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, name);
  await openRoomInUi(page, title);
  // The first send reaches the server and is stored; its answer is lost.
  let dropped = 0;
  await page.route('**/api/v1/rooms/*/messages', async (route) => {
    if (route.request().method() !== 'POST' || dropped > 0) return route.fallback();
    dropped += 1;
    await route.fetch();
    await route.abort('connectionreset');
  });
  await sendInUi(page, 'answer lost once');
  await page.locator('.message:not(.pending) .text', { hasText: 'answer lost once' }).waitFor({ timeout: 10000 });
  assert.equal(dropped, 1);
  const history = await me.history(room.id);
  assert.equal(history.messages.filter((m) => m.text === 'answer lost once').length, 1, 'stored once');
  assert.equal(await page.locator('.message .text', { hasText: 'answer lost once' }).count(), 1, 'shown once');
  await context.close();
});

test('a message that could not be sent shows as failed and can be retried', async () => {
  const name = `retry${unique()}`;
  const me = await env.server.user(name);
  const title = `retry ${unique()}`;
  const room = await me.createRoom(title);
  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, name);
  await openRoomInUi(page, title);

  // Sends fail while the event stream stays connected, so nothing retries
  // by itself (defects.test.mjs has the outage, where it does).
  let failing = true;
  await page.route('**/api/v1/rooms/*/messages', (route) => (failing && route.request().method() === 'POST'
    ? route.abort('connectionreset')
    : route.fallback()));
  await sendInUi(page, 'written while offline');
  await page.locator('.pending .text', { hasText: 'written while offline' }).waitFor();
  await page.locator('.pending', { hasText: 'Not sent.' }).waitFor({ timeout: 15000 });
  failing = false;
  await page.getByRole('button', { name: 'Retry', exact: true }).click();
  await page.locator('.message:not(.pending) .text', { hasText: 'written while offline' }).waitFor({ timeout: 5000 });
  await page.locator('.pending').waitFor({ state: 'detached' });
  const page1 = await me.history(room.id);
  assert.equal(page1.messages.filter((m) => m.text === 'written while offline').length, 1);
  await context.close();
});

test('a new direct conversation shows up even when loading the room list fails at first', async () => {
  const name = `dm${unique()}`;
  const { user: me } = await env.server.user(name);
  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginAndLoadRooms(page, env.server.base, name);
  // The next two loads of the room list fail as a flaky network would.
  const drops = await failNextGets(page, '**/api/v1/rooms', 2);
  const peerName = `peer${unique()}`;
  const peer = await env.server.user(peerName);
  const room = await peer.openDirect(me.id);
  await peer.send(room.id, 'are you there?');
  const direct = page.locator('.room', { hasText: peerName });
  await direct.locator('.badge', { hasText: '1' }).waitFor({ timeout: 15000 });
  assert.equal(drops.failed, 2, 'both failed loads were tried again');
  await context.close();
});

test('a refused room-list load is not tried again', async () => {
  const name = `refused${unique()}`;
  const { user: me } = await env.server.user(name);
  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginAndLoadRooms(page, env.server.base, name);
  // From now on the server refuses the list, as it would a session that
  // has ended: trying again cannot help.
  let asked = 0;
  await page.route('**/api/v1/rooms', (route) => {
    if (route.request().method() !== 'GET') return route.fallback();
    asked += 1;
    return route.fulfill({
      status: 403, contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'forbidden', message: 'no' } }),
    });
  });
  const peer = await env.server.user(`ask${unique()}`);
  await peer.openDirect(me.id);
  const deadline = Date.now() + 10000;
  while (asked === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(asked, 1, 'the new conversation asked for the list once');
  // Retries would come within a second or two (jittered backoff).
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(asked, 1, 'and never again');
  await context.close();
});

test('the page loads its conversations even when the first load after sign-in fails', async () => {
  const name = `first${unique()}`;
  const me = await env.server.user(name);
  const title = `first ${unique()}`;
  await me.createRoom(title);
  const context = await newContext(env.browser);
  const page = await context.newPage();
  const drops = await failNextGets(page, '**/api/v1/rooms', 1);
  await loginInUi(page, env.server.base, name);
  await page.locator('.room', { hasText: title }).waitFor({ timeout: 15000 });
  assert.equal(drops.failed, 1);
  // The failure was shown while it lasted, and is gone once loaded.
  await page.waitForFunction(() => document.getElementById('notice')?.textContent === '');
  await context.close();
});

test('a member list whose first read fails is read again; a join then shows without another read', async () => {
  const name = `host${unique()}`;
  const me = await env.server.user(name);
  const title = `members ${unique()}`;
  const room = await me.createRoom(title, { visibility: 'public' });
  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, name);
  const drops = await failNextGets(page, '**/api/v1/rooms/*/members?*', 1);
  const reads = [];
  page.on('request', (request) => {
    if (request.url().includes(`/api/v1/rooms/${room.id}/members`)) reads.push(request.url());
  });
  await openRoomInUi(page, title);
  await page.locator('.member', { hasText: name }).waitFor({ timeout: 15000 });
  assert.equal(drops.failed, 1);
  assert.equal(reads.length, 2, 'tried again after the failure');
  // Joins change the list as it is (state.js): no read of it again.
  const guestName = `guest${unique()}`;
  const guest = await env.server.user(guestName);
  await guest.joinRoom(room.id);
  await page.locator('.member', { hasText: guestName }).waitFor({ timeout: 5000 });
  assert.equal(reads.length, 2);
  await context.close();
});

test('sign-in problems are explained', async () => {
  const name = `who${unique()}`;
  await env.server.user(name);
  const context = await newContext(env.browser);
  const page = await context.newPage();
  await page.goto(env.server.base + '/');
  await page.fill('#username', name);
  await page.fill('#password', 'not-the-password');
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await page.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor();

  await page.getByRole('button', { name: /create an account/i }).click();
  await page.fill('#username', name);
  await page.fill('#password', 'password-1');
  await page.getByRole('button', { name: 'Create account', exact: true }).click();
  await page.getByRole('alert').filter({ hasText: 'That username is taken.' }).waitFor();

  await env.server.stop();
  await page.getByRole('button', { name: 'Create account', exact: true }).click();
  await page.getByRole('alert').filter({ hasText: 'The server cannot be reached.' }).waitFor();
  await env.server.launch();
  await context.close();
});
