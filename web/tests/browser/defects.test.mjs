// The defects of issue 12, each as the test that would have caught it:
// a stale online count, a failed first load shown as an empty room, the
// emoji picker, lost keyboard focus, failed sends and a slow reconnect
// after an outage, the phone layout, the empty states, Leave without a
// question, and people's "online" said like the connection's "Connected".

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  loginInUi, newContext, openRoomInUi, registerInUi, sendInUi, serverAndBrowser, unique,
} from './harness.mjs';

const env = serverAndBrowser();

const PHONE = { width: 390, height: 844 };

/** Whether `selector`'s text lies on a single line. */
const oneLine = (page, selector) => page.locator(selector).evaluate((node) => {
  const range = document.createRange();
  range.selectNodeContents(node);
  const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
  return lines.size === 1;
});

test("the room header's online count follows presence, as the member list does", async () => {
  const name = `hd${unique()}`;
  const me = await env.server.user(name);
  const friendName = `fr${unique()}`;
  const friend = await env.server.user(friendName);
  const room = await me.createRoom(`presence ${unique()}`, { visibility: 'public' });
  await friend.joinRoom(room.id);

  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, name);
  await openRoomInUi(page, room.title);
  await page.locator('.member', { hasText: friendName }).waitFor();
  await page.locator('#room-online', { hasText: '1 online' }).waitFor();

  // The friend's first poll makes them online; the member list redraws
  // and keeps the keyboard on the friend's Message button.
  await page.locator('.member', { hasText: friendName }).getByRole('button', { name: 'Message' }).focus();
  const stop = friend.subscribe({});
  try {
    await page.locator(`.member:has-text("${friendName}") .dot.online`).waitFor({ timeout: 10000 });
    assert.equal(await page.evaluate(() => document.activeElement?.closest('.member')?.dataset.user), String(friend.user.id));
    await page.locator('.members h2 .online-count', { hasText: '2 online' }).waitFor();
    await page.locator('#room-online', { hasText: '2 online' }).waitFor({ timeout: 2000 });
    // People are "Online", not "Connected" like the page's own connection.
    assert.equal(await page.locator(`.member:has-text("${friendName}") .dot`).getAttribute('aria-label'), 'Online');
  } finally {
    stop();
  }
  await context.close();
});

test('a room whose history cannot be read shows an error with Retry, not an empty room', async () => {
  const name = `er${unique()}`;
  const me = await env.server.user(name);
  const loaded = await me.createRoom(`loaded ${unique()}`);
  const unloaded = await me.createRoom(`unloaded ${unique()}`);
  await me.send(unloaded.id, 'here all along');

  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, name);
  await openRoomInUi(page, loaded.title);
  await page.locator('#connection[data-state="connected"]').waitFor();

  // The history read fails (the event stream is fine): Retry reads it again.
  let failing = true;
  await page.route(`**/api/v1/rooms/${unloaded.id}/messages?*`, (route) => (failing ? route.abort('connectionreset') : route.fallback()));
  await page.locator('.room', { hasText: unloaded.title }).click();
  const problem = page.locator('.load-error');
  await problem.waitFor({ timeout: 5000 });
  assert.match(await problem.innerText(), /The messages could not be loaded\./);
  assert.equal(await page.getByText('This is the beginning of the conversation.').count(), 0);
  failing = false;
  await problem.getByRole('button', { name: 'Retry' }).click();
  await page.locator('.message .text', { hasText: 'here all along' }).waitFor({ timeout: 5000 });
  await page.getByText('This is the beginning of the conversation.').waitFor();
  await page.unroute(`**/api/v1/rooms/${unloaded.id}/messages?*`);

  // The server is down: the same, and once it is back the room loads by itself.
  const third = await me.createRoom(`third ${unique()}`);
  await me.send(third.id, 'after the outage');
  await page.locator('.room', { hasText: third.title }).waitFor({ timeout: 5000 });
  await env.server.stop();
  try {
    await page.locator('.room', { hasText: third.title }).click();
    await problem.waitFor({ timeout: 10000 });
    assert.equal(await page.getByText('This is the beginning of the conversation.').count(), 0);
  } finally {
    await env.server.launch();
  }
  await page.locator('#retry-now').click({ timeout: 15000 }).catch(() => {});
  await page.locator('.message .text', { hasText: 'after the outage' }).waitFor({ timeout: 40000 });
  await context.close();
});

test('the emoji picker closes on a pick, Escape and a click elsewhere, and arrows move within it', async () => {
  const name = `em${unique()}`;
  const me = await env.server.user(name);
  const room = await me.createRoom(`emoji ${unique()}`);
  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, name);
  await openRoomInUi(page, room.title);
  const picker = page.locator('.emoji-picker');
  const toggle = page.getByRole('button', { name: 'Emoji', exact: true });
  const focused = () => page.evaluate(() => {
    const a = document.activeElement;
    return { id: a?.id, emoji: a?.classList.contains('emoji') ? a.textContent : null, tab: a?.getAttribute('role') === 'tab' };
  });

  // Opened: the keyboard is on the first emoji; arrows move, Enter picks.
  await toggle.click();
  await picker.waitFor();
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  const emoji = await page.locator('.emoji-grid .emoji').allTextContents();
  assert.equal((await focused()).emoji, emoji[0]);
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  assert.equal((await focused()).emoji, emoji[2]);
  await page.keyboard.press('ArrowDown');
  assert.equal((await focused()).emoji, emoji[10], 'down one row of eight');
  await page.keyboard.press('ArrowLeft');
  assert.equal((await focused()).emoji, emoji[9]);
  await page.keyboard.press('Enter');
  await picker.waitFor({ state: 'hidden' });
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  assert.equal((await focused()).id, 'composer');
  assert.equal(await page.inputValue('#composer'), emoji[9]);

  // One Tab stop for the grid: Tab leaves it at once (and closes the picker).
  await toggle.click();
  await picker.waitFor();
  assert.equal(await page.locator('.emoji-grid [tabindex="0"]').count(), 1);
  assert.equal(await page.locator('.emoji-tabs [tabindex="0"]').count(), 1);
  await page.keyboard.press('Shift+Tab');
  assert.equal((await focused()).tab, true, 'Shift+Tab: from the grid to the tabs in one step');
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.locator('.emoji-tabs [aria-selected="true"]').getAttribute('data-name'), 'Gestures');
  await page.keyboard.press('Tab');
  assert.ok((await focused()).emoji, 'Tab: back in the grid');
  await page.keyboard.press('Tab');
  assert.equal((await focused()).emoji, null, 'Tab: out of the grid in one step');
  await picker.waitFor({ state: 'hidden' });

  // Escape closes it, and the keyboard is back in the composer.
  await toggle.click();
  await picker.waitFor();
  await page.keyboard.press('Escape');
  await picker.waitFor({ state: 'hidden' });
  assert.equal((await focused()).id, 'composer');

  // So does a click on something that is not a control.
  await toggle.click();
  await picker.waitFor();
  await page.locator('.room-header h2').click();
  await picker.waitFor({ state: 'hidden' });
  await page.waitForFunction(() => document.activeElement?.id === 'composer');

  // After a pick, sending leaves it closed.
  await toggle.click();
  const choice = page.locator('.emoji-grid .emoji').first();
  const picked = await choice.textContent();
  await choice.click();
  await picker.waitFor({ state: 'hidden' });
  assert.equal(await page.inputValue('#composer'), `${emoji[9]}${picked}`, 'inserted where the caret was');
  await page.press('#composer', 'Enter');
  await page.locator('.message:not(.pending) .text', { hasText: picked }).first().waitFor();
  assert.equal(await picker.isVisible(), false);

  // Sending while it is open closes it.
  await page.locator('#composer').fill('sent with the picker open');
  await toggle.click();
  await picker.waitFor();
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  await page.locator('.message:not(.pending) .text', { hasText: 'sent with the picker open' }).waitFor();
  await picker.waitFor({ state: 'hidden' });
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  await context.close();
});

test('the keyboard stays put: Enter on a room goes to its composer, and redraws keep a focused room', async () => {
  const name = `kb${unique()}`;
  const me = await env.server.user(name);
  const other = await env.server.user(`ot${unique()}`);
  const first = await me.createRoom(`keys one ${unique()}`, { visibility: 'public' });
  const second = await me.createRoom(`keys two ${unique()}`, { visibility: 'public' });
  await other.joinRoom(first.id);
  await other.joinRoom(second.id);

  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, name);
  await page.locator(`.room[data-room="${first.id}"]`).focus();
  await page.keyboard.press('Enter');
  await page.locator('.room-header h2', { hasText: first.title }).waitFor();
  await page.waitForFunction(() => document.activeElement?.id === 'composer', null, { timeout: 5000 });

  // The keyboard rests on the second room while messages redraw the list.
  await page.locator(`.room[data-room="${second.id}"]`).focus();
  await other.send(second.id, 'one for two');
  await other.send(first.id, 'one for one');
  await page.locator(`.room[data-room="${second.id}"] .badge`, { hasText: '1' }).waitFor({ timeout: 5000 });
  await page.locator('.message .text', { hasText: 'one for one' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.room), String(second.id));
  await page.keyboard.press('Enter');
  await page.locator('.message .text', { hasText: 'one for two' }).waitFor();
  await page.waitForFunction(() => document.activeElement?.id === 'composer');
  await context.close();
});

test('a message that failed in an outage is sent by itself once the connection is back, and Retry now reconnects at once', async () => {
  const name = `out${unique()}`;
  const me = await env.server.user(name);
  const room = await me.createRoom(`outage ${unique()}`);
  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, name);
  await openRoomInUi(page, room.title);
  await page.locator('#connection[data-state="connected"]').waitFor();
  const retryNow = page.getByRole('button', { name: 'Retry now' });
  assert.equal(await retryNow.isVisible(), false, 'nothing to retry while connected');
  const ids = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url().endsWith(`/rooms/${room.id}/messages`)) ids.push(request.postDataJSON().client_msg_id);
  });

  // With full jitter the stream's own next try may come just as the
  // server is back, before the click; then that outage shows nothing of
  // Retry now and another is made (the message is written in the first).
  let clickedWhileWaiting = false;
  for (let outage = 1; outage <= 3 && !clickedWhileWaiting; outage += 1) {
    await env.server.stop();
    try {
      await page.locator('#connection[data-state="reconnecting"]').waitFor({ timeout: 15000 });
      await retryNow.waitFor();
      if (outage === 1) {
        await sendInUi(page, 'written in the outage');
        await page.locator('.pending', { hasText: 'Not sent.' }).waitFor({ timeout: 15000 });
      }
      // Long enough for the stream's backoff to have grown to many seconds.
      await new Promise((r) => setTimeout(r, 8000));
    } finally {
      await env.server.launch();
    }
    const clicked = Date.now();
    clickedWhileWaiting = await retryNow.click({ timeout: 1000 }).then(() => true, () => false);
    await page.locator('#connection[data-state="connected"]').waitFor({ timeout: clickedWhileWaiting ? 5000 : 40000 });
    if (clickedWhileWaiting) assert.ok(Date.now() - clicked < 5000, 'connected within moments of the click');
  }
  assert.ok(clickedWhileWaiting, 'in one of three outages Retry now was clicked while the stream waited');
  await retryNow.waitFor({ state: 'hidden' });
  // Nobody clicked the message's own Retry.
  await page.locator('.message:not(.pending) .text', { hasText: 'written in the outage' }).waitFor({ timeout: 10000 });
  await page.locator('.pending').waitFor({ state: 'detached' });
  const stored = (await me.history(room.id)).messages.filter((m) => m.text === 'written in the outage');
  assert.equal(stored.length, 1, 'stored once');
  assert.ok(ids.length >= 2, 'sent again');
  assert.deepEqual([...new Set(ids)], [stored[0].client_msg_id], 'always with the same client message id');
  await context.close();
});

test('at phone width the connection pill stays on one line, the list has no back arrow, and the title gets the header', async () => {
  const owner = await env.server.user(`po${unique()}`);
  const name = `pz${unique()}`;
  await env.server.user(name);
  const room = await owner.createRoom('三年二班家长 Class 3 parents', { visibility: 'public' });
  const context = await newContext(env.browser, { locale: 'zh-CN', viewport: PHONE });
  const page = await context.newPage();
  await loginInUi(page, env.server.base, name);
  await page.locator('#connection[data-state="connected"]').waitFor();
  assert.equal(await page.locator('#connection').textContent(), '已连接');
  assert.ok(await oneLine(page, '#connection'), 'the pill does not wrap');
  assert.equal(await page.locator('.topbar .back').isVisible(), false, 'no back arrow on the list');

  await page.getByText('公开群聊', { exact: true }).click();
  await page.locator('.public-list li', { hasText: 'Class 3 parents' }).getByRole('button', { name: '加入' }).click();
  await page.locator('#composer').waitFor();
  const title = page.locator('.room-header h2');
  assert.equal(await title.textContent(), '三年二班家长 Class 3 parents');
  assert.ok(await title.evaluate((h) => h.scrollWidth <= h.clientWidth), 'the whole title shows');
  // Leave and Members are icons there, with their words for screen readers.
  const leave = page.getByRole('button', { name: '退出群聊' });
  await leave.waitFor();
  assert.ok((await leave.boundingBox()).width < 60);
  await page.getByRole('button', { name: '成员' }).waitFor();

  // Back from the member list is the room, not the list.
  await page.getByRole('button', { name: '成员' }).click();
  await page.locator('.member-list').waitFor();
  await page.locator('.topbar .back').click();
  await page.locator('#composer').waitFor();
  assert.equal(await page.locator('.room-header h2').isVisible(), true);

  // Reconnecting, with its Retry now, still fits on one line.
  await env.server.stop();
  try {
    await page.locator('#connection[data-state="reconnecting"]').waitFor({ timeout: 15000 });
    assert.ok(await oneLine(page, '#connection'), 'reconnecting does not wrap');
    await page.getByRole('button', { name: '立即重试' }).waitFor();
    const bar = await page.locator('.topbar').evaluate((b) => ({ scroll: b.scrollWidth, client: b.clientWidth }));
    assert.ok(bar.scroll <= bar.client, `the top bar does not overflow (${bar.scroll} > ${bar.client})`);
  } finally {
    await env.server.launch();
  }
  await page.getByRole('button', { name: '立即重试' }).click({ timeout: 5000 }).catch(() => {});
  await page.locator('#connection[data-state="connected"]').waitFor({ timeout: 40000 });
  await context.close();
});

test('with no conversations the page says how to start one, and at phone width no pane points "left"', async () => {
  const context = await newContext(env.browser);
  const page = await context.newPage();
  await registerInUi(page, env.server.base, `new${unique()}`);
  await page.getByRole('heading', { name: 'No conversations yet' }).waitFor();
  assert.equal(await page.getByText('Pick a conversation on the left.').count(), 0);
  await page.getByRole('button', { name: 'Start a room' }).click();
  await page.waitForFunction(() => document.activeElement?.id === 'new-room-title');
  await page.getByRole('button', { name: 'Find a public room' }).click();
  await page.locator('.public-rooms-panel[open]').waitFor();

  // With conversations, and wide: pick one on the left. At phone width the
  // list is the whole screen and no pane mentions a left side.
  await page.fill('#new-room-title', `mine ${unique()}`);
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await page.locator('#composer').waitFor();
  await page.evaluate(() => { location.hash = '#/'; });
  await page.getByText('Pick a conversation on the left.').waitFor();
  await page.setViewportSize(PHONE);
  await page.locator('.room').first().waitFor();
  const visible = await page.evaluate(() => document.body.innerText);
  assert.ok(!/left/i.test(visible), `no "left" at phone width: ${visible}`);
  await context.close();
});

test('Leave asks first in a dialog: Escape and Cancel keep the room, Leave leaves', async () => {
  const owner = await env.server.user(`lo${unique()}`);
  const name = `lv${unique()}`;
  await env.server.user(name);
  const room = await owner.createRoom(`leaving ${unique()}`, { visibility: 'public' });
  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, name);
  await page.getByText('Public rooms').click();
  await page.locator('.public-list li', { hasText: room.title }).getByRole('button', { name: 'Join' }).click();
  await page.locator('#composer').waitFor();
  const leave = page.locator('.room-header .leave');
  const dialog = page.getByRole('dialog', { name: `Leave “${room.title}”?` });

  await leave.click();
  await dialog.waitFor();
  assert.ok(await dialog.evaluate((d) => d.open && d.matches(':modal')), 'a modal <dialog>');
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.answer), 'cancel', 'Cancel has the focus first');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await page.evaluate(() => document.activeElement?.classList.contains('leave')), true, 'focus back on Leave');

  await leave.click();
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'detached' });
  assert.ok((await owner.members(room.id)).members.some((m) => m.username === name || m.display_name === name));

  // From the keyboard: Tab to Leave, Enter.
  await leave.focus();
  await page.keyboard.press('Enter');
  await dialog.waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.answer), 'confirm');
  await page.keyboard.press('Enter');
  await page.locator('.room', { hasText: room.title }).waitFor({ state: 'detached', timeout: 5000 });
  assert.ok(['', '#/'].includes(await page.evaluate(() => location.hash)));
  assert.ok(!(await owner.members(room.id)).members.some((m) => m.display_name === name));
  await context.close();
});
