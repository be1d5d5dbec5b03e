// Issue 12 in real Chromium: typing notices between two browsers, mentions
// (the composer's autocomplete, the highlight, the room list's badge),
// each room's notification choice, "Seen" in a direct conversation, the
// settings dialog, and "New message" by name. Set-up goes through the SDK;
// what is checked is what a person would see.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  Server, expectAccessible, loginInUi, newContext, openRoomInUi, screenshot, sendInUi, serverAndBrowser, unique,
  pageOf, twoInRoom,
} from './harness.mjs';

const env = serverAndBrowser();



test('typing shows in the other browser, and ends on send and when it expires', async () => {
  const { a, b, title } = await twoInRoom(env);
  const alice = await pageOf(env, a);
  const bob = await pageOf(env, b);
  await openRoomInUi(alice.page, title);
  await openRoomInUi(bob.page, title);
  // A notice is news for streams open when it is sent: one whose first
  // poll has not answered yet starts after it (docs/protocol.md), so Bob's
  // page must be connected first, as a person's page is long before.
  await bob.page.locator('#connection[data-state="connected"]').waitFor();

  const started = Date.now();
  await alice.page.locator('#composer').pressSequentially('hel');
  await bob.page.locator('#typing', { hasText: 'is typing…' }).waitFor({ timeout: 2000 });
  assert.ok(Date.now() - started < 2000, 'the notice shows within about a second');
  // By name once Bob's page has the member list (a busy machine may
  // answer that read after the notice: the next test holds it back).
  await bob.page.locator('#typing', { hasText: 'Han Meimei is typing…' }).waitFor();
  // The room list's row says it too, in place of the last message.
  await bob.page.locator('.room', { hasText: title }).locator('.typing-preview', { hasText: 'is typing' }).waitFor();
  // Nobody sees their own notice.
  assert.equal(await alice.page.locator('#typing').textContent(), '');
  await screenshot(bob.page, 'desktop-en-typing');

  // The message ends the notice at once.
  await alice.page.press('#composer', 'Enter');
  await bob.page.locator('.message .text', { hasText: 'hel' }).waitFor({ timeout: 2000 });
  await bob.page.locator('#typing', { hasText: /./ }).waitFor({ state: 'detached', timeout: 1000 }).catch(() => {});
  assert.equal(await bob.page.locator('#typing').textContent(), '');

  // Typing again announces again; with no renewal it ends by itself (6 s).
  await alice.page.locator('#composer').pressSequentially('x');
  await bob.page.locator('#typing', { hasText: 'is typing' }).waitFor({ timeout: 4000 });
  const shown = Date.now();
  await bob.page.waitForFunction(() => document.getElementById('typing').textContent === '', null, { timeout: 9000 });
  assert.ok(Date.now() - shown > 3000, 'it stood until it expired');

  // Emptying the composer without sending ends it at once.
  await alice.page.locator('#composer').pressSequentially('y');
  await bob.page.locator('#typing', { hasText: 'is typing' }).waitFor({ timeout: 4000 });
  const cleared = Date.now();
  await alice.page.press('#composer', 'Backspace');
  await alice.page.press('#composer', 'Backspace');
  await bob.page.waitForFunction(() => document.getElementById('typing').textContent === '', null, { timeout: 10000 });
  assert.ok(Date.now() - cleared < 3000);
  await alice.context.close();
  await bob.context.close();
});

test('a notice that arrives before the member list says who types once the list is in', async () => {
  const { a, b, room, title } = await twoInRoom(env);
  const alice = await pageOf(env, a);
  const bob = await pageOf(env, b);
  // Bob's reads of the room's members and history wait until let go, so
  // Alice's notice reaches his page before it knows her name.
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  const reads = new RegExp(`/api/v1/rooms/${room.id}/(members|messages)(\\?|$)`);
  await bob.page.route(reads, async (route) => {
    await held;
    await route.continue();
  });
  await openRoomInUi(alice.page, title);
  await openRoomInUi(bob.page, title);
  await alice.page.locator('#composer').pressSequentially('hel');
  await bob.page.locator('#typing', { hasText: 'someone is typing…' }).waitFor({ timeout: 4000 });
  release();
  await bob.page.locator('#typing', { hasText: 'Han Meimei is typing…' }).waitFor({ timeout: 4000 });
  await bob.page.locator('.room', { hasText: title }).locator('.typing-preview', { hasText: 'Han Meimei is typing…' }).waitFor();
  await alice.context.close();
  await bob.context.close();
});

test('a mention picked from the list is highlighted for the person named, with a badge until read', async () => {
  const { a, b, room, title } = await twoInRoom(env);
  // Bob looks at another room meanwhile, so the mention is unread for him.
  const other = await b.createRoom(`Elsewhere ${unique()}`);
  const alice = await pageOf(env, a);
  const bob = await pageOf(env, b);
  await openRoomInUi(alice.page, title);
  await openRoomInUi(bob.page, other.title);

  const input = alice.page.locator('#composer');
  await input.pressSequentially('hi @li');
  const list = alice.page.getByRole('listbox', { name: 'People to mention' });
  await list.getByRole('option', { name: /Li Lei/ }).waitFor();
  assert.equal(await list.getByRole('option').count(), 1, 'only Li Lei matches, and never oneself');
  assert.equal(await input.getAttribute('aria-activedescendant'), `mention-option-${b.user.id}`);
  // Escape closes the list and keeps the text; typing opens it again.
  await input.press('Escape');
  await list.waitFor({ state: 'hidden' });
  assert.equal(await input.inputValue(), 'hi @li');
  await input.press('Backspace');
  await input.pressSequentially('I');
  await list.waitFor();
  await input.press('Enter');
  assert.equal(await input.inputValue(), 'hi @Li Lei ');
  await input.pressSequentially('look');
  await input.press('Enter');

  // Stored as a token: the API returns `<@id>` and lists the mention.
  await alice.page.locator('.message .mention', { hasText: '@Li Lei' }).waitFor({ timeout: 10000 });
  const history = await a.history(room.id);
  const sent = history.messages.find((m) => m.type === 'message' && m.text.includes('look'));
  assert.equal(sent.text, `hi <@${b.user.id}> look`);
  assert.deepEqual(sent.mentions, [b.user.id]);

  // Bob's room list: a mention badge beside the unread one, live.
  const row = bob.page.locator('.room', { hasText: title });
  await row.locator('.mention-badge', { hasText: '@1' }).waitFor({ timeout: 10000 });
  await row.locator('.badge', { hasText: '1' }).waitFor();
  assert.match(await row.locator('.preview').textContent(), /hi @Li Lei look/);
  await row.click();
  const message = bob.page.locator('.message.mentions-me', { hasText: 'look' });
  await message.waitFor({ timeout: 10000 });
  await message.locator('.mention.mention-me', { hasText: '@Li Lei' }).waitFor();
  await screenshot(bob.page, 'desktop-en-mention-highlight');
  await row.locator('.mention-badge').waitFor({ state: 'detached', timeout: 10000 });
  // And the server agrees: read, so no mentions are left.
  await bob.page.waitForTimeout(300);
  const listed = (await b.rooms()).find((r) => r.id === room.id);
  assert.equal(listed.mention_count, 0);

  // Editing shows the name again and keeps the mention a token.
  await input.press('ArrowUp');
  assert.equal(await input.inputValue(), 'hi @Li Lei look');
  await input.press('End');
  await input.pressSequentially('!');
  await input.press('Enter');
  await bob.page.locator('.message.mentions-me .text', { hasText: 'look!' }).waitFor({ timeout: 10000 });
  const edited = (await a.history(room.id)).messages.find((m) => m.seq === sent.seq);
  assert.equal(edited.text, `hi <@${b.user.id}> look!`);
  await alice.context.close();
  await bob.context.close();
});

test('the notification choice is saved and shown after a reload', async () => {
  const { a, b, title } = await twoInRoom(env);
  await a.openDirect(b.user.id);
  const alice = await pageOf(env, a);
  await openRoomInUi(alice.page, title);
  const choice = alice.page.getByLabel('Notifications for this conversation');
  // The defaults: mentions in a group, everything in a direct conversation.
  assert.equal(await choice.inputValue(), 'mentions');
  await choice.selectOption({ label: 'Nothing' });
  await alice.page.waitForResponse((r) => r.url().includes('/notifications') && r.request().method() === 'PUT');
  await alice.page.reload();
  await openRoomInUi(alice.page, title);
  assert.equal(await alice.page.getByLabel('Notifications for this conversation').inputValue(), 'none');
  await openRoomInUi(alice.page, 'Li Lei');
  assert.equal(await alice.page.getByLabel('Notifications for this conversation').inputValue(), 'all');
  await alice.context.close();
});

test('"Seen" shows for the sender once the other person opens the direct conversation', async () => {
  const { a, b } = await twoInRoom(env);
  await a.openDirect(b.user.id);
  const alice = await pageOf(env, a);
  const bob = await pageOf(env, b);
  await openRoomInUi(alice.page, 'Li Lei');
  await sendInUi(alice.page, 'are you there?');
  await sendInUi(alice.page, 'hello?');
  await alice.page.locator('.message .text', { hasText: 'hello?' }).waitFor();
  await bob.page.locator('.room', { hasText: 'Han Meimei' }).locator('.badge', { hasText: '2' }).waitFor({ timeout: 10000 });
  assert.equal(await alice.page.locator('.seen').count(), 0);
  await openRoomInUi(bob.page, 'Han Meimei');
  const seen = alice.page.locator('.message', { hasText: 'hello?' }).locator('.seen', { hasText: 'Seen' });
  await seen.waitFor({ timeout: 10000 });
  // Only under the last one.
  assert.equal(await alice.page.locator('.seen').count(), 1);
  // Never in a group room, nor for the reader.
  assert.equal(await bob.page.locator('.seen').count(), 0);
  await alice.context.close();
  await bob.context.close();
});

test('settings: a new name and avatar show, a wrong password is refused and a right one changes it, the language switches', async () => {
  const a = await env.server.user(`alice${unique()}`, 'Han Meimei');
  const alice = await pageOf(env, a);
  const { page } = alice;
  await page.getByRole('button', { name: 'Han Meimei: settings' }).click();
  const dialog = page.getByRole('dialog', { name: 'Settings' });
  await dialog.waitFor();
  await dialog.getByLabel('Display name').fill('Meimei H.');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.getByText('Saved.').waitFor();
  await page.locator('.topbar .account', { hasText: 'Meimei H.' }).waitFor();
  assert.equal((await a.me()).display_name, 'Meimei H.');

  const avatar = `${env.server.base}/api/v1/avatar.svg?initial=M&hue=40`;
  await dialog.getByLabel('Avatar URL').fill(avatar);
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.getByText('Saved.').waitFor();
  assert.equal((await a.me()).avatar_url, avatar);

  await dialog.getByLabel('Current password').fill('not-my-password');
  await dialog.getByLabel('New password').fill('password-2');
  await dialog.getByRole('button', { name: 'Change password' }).click();
  await dialog.getByRole('alert').filter({ hasText: 'That is not your current password.' }).waitFor();
  await dialog.getByLabel('Current password').fill('password-1');
  await dialog.getByLabel('New password').fill('short');
  await dialog.getByRole('button', { name: 'Change password' }).click();
  await dialog.getByRole('alert').filter({ hasText: /cannot be used: .*8 characters/ }).waitFor();
  await dialog.getByLabel('Current password').fill('password-1');
  await dialog.getByLabel('New password').fill('password-2');
  await dialog.getByRole('button', { name: 'Change password' }).click();
  await dialog.getByText('Password changed. Your other sessions were logged out.').waitFor();
  // The other session (the test's own client) is over; the new password signs in.
  await assert.rejects(a.me(), (e) => e.status === 401);
  const signIn = await fetch(`${env.server.base}/api/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: a.user.username, password: 'password-2' }),
  });
  assert.equal(signIn.status, 201);

  await dialog.getByLabel('Language of the app').selectOption('zh-CN');
  await page.getByRole('dialog', { name: '设置' }).waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');
  await page.getByRole('button', { name: '退出' }).waitFor();
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'detached' });
  // Kept for the next visit.
  await page.reload();
  await page.getByRole('button', { name: '退出' }).waitFor();
  await alice.context.close();
});

test('new message: a search by name opens the direct conversation', async () => {
  const a = await env.server.user(`alice${unique()}`, 'Han Meimei');
  const name = `Wei ${unique()}`;
  await env.server.user(`wei${unique()}`, name);
  const alice = await pageOf(env, a);
  const { page } = alice;
  await page.getByText('New message').click();
  const search = page.getByLabel('Search people by name');
  await search.pressSequentially(name.slice(0, 7));
  const result = page.getByRole('button', { name });
  await result.waitFor({ timeout: 10000 });
  // The keyboard gets there: Down from the box, Enter on the person.
  await search.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), name);
  await page.keyboard.press('Enter');
  await page.locator('.room-header h2', { hasText: name }).waitFor({ timeout: 10000 });
  await page.locator('.room', { hasText: name }).waitFor();
  await alice.context.close();
});

test('new message: a server with search turned off says so', async () => {
  const server = await Server.start({ config: 'people_search = false\n' });
  try {
    const a = await server.user(`alice${unique()}`, 'Han Meimei');
    const context = await newContext(env.browser);
    const page = await context.newPage();
    await loginInUi(page, server.base, a.user.username);
    await page.getByText('New message').click();
    await page.getByLabel('Search people by name').pressSequentially('li');
    await page.getByRole('status').filter({ hasText: 'Searching by name is turned off on this server.' }).waitFor({ timeout: 10000 });
    await context.close();
  } finally {
    await server.stop();
  }
});

for (const [tag, locale, viewport] of [
  ['desktop-en', 'en-US', { width: 1280, height: 800 }],
  ['desktop-zh', 'zh-CN', { width: 1280, height: 800 }],
  ['phone-en', 'en-US', { width: 390, height: 844 }],
  ['phone-zh', 'zh-CN', { width: 390, height: 844 }],
]) {
  test(`screens of issue 12 (${tag}): typing, mention list and badge, new message, settings`, async () => {
    const zh = locale === 'zh-CN';
    const phone = viewport.width < 500;
    const { a, b, room, title } = await twoInRoom(env, zh ? ['韩梅梅', '李雷'] : ['Han Meimei', 'Li Lei']);
    const other = await b.createRoom(zh ? `三班 ${unique()}` : `Class 3 ${unique()}`);
    await b.invite(other.id, a.user.id);
    await b.send(room.id, zh ? '大家好' : 'Hello everyone');
    const { context, page } = await pageOf(env, a, { locale, viewport });
    await openRoomInUi(page, title);
    await page.locator('#connection[data-state="connected"]').waitFor();

    // Typing as a person types: a renewal every 3 s until it shows. (The
    // typing test above checks the first notice itself.)
    const typingShown = page.locator('#typing', { hasText: zh ? '李雷 正在输入…' : 'Li Lei is typing…' });
    for (let attempt = 0; ; attempt++) {
      await b.typing(room.id, true);
      try {
        await typingShown.waitFor({ timeout: 3100 });
        break;
      } catch (e) {
        if (attempt === 3) throw e;
      }
    }
    await expectAccessible(page, `${tag} typing`, { include: '#conversation' });
    await screenshot(page, `${tag}-typing`);

    await page.locator('#composer').pressSequentially('@');
    await page.locator('#mention-list').waitFor();
    await expectAccessible(page, `${tag} mention list`, { include: '.composer' });
    await screenshot(page, `${tag}-mention-autocomplete`);
    await page.locator('#composer').press('Escape');
    await page.locator('#composer').press('Backspace');

    await b.send(other.id, zh ? `<@${a.user.id}> 明天见` : `<@${a.user.id}> see you tomorrow`);
    if (phone) await page.locator('.topbar .back').click();
    const row = page.locator('.room', { hasText: other.title });
    await row.locator('.mention-badge', { hasText: '@1' }).waitFor({ timeout: 10000 });
    await expectAccessible(page, `${tag} mention badge`, { include: '#sidebar' });
    await screenshot(page, `${tag}-mention-badge`);

    // The mention as the person named sees it, and the room's notification choice.
    await row.click();
    await page.locator('.message .mention-me').waitFor();
    await screenshot(page, `${tag}-mention-highlight`);
    await page.getByLabel(zh ? '这个会话的通知' : 'Notifications for this conversation').focus();
    await screenshot(page, `${tag}-notification-choice`);

    // "Seen" under one's own last message in a direct conversation.
    const direct = await a.openDirect(b.user.id);
    const sent = await a.send(direct.id, zh ? '收到了吗？' : 'Did you get it?');
    await b.markRead(direct.id, sent.seq);
    if (phone) await page.locator('.topbar .back').click();
    await page.locator(`.room[data-room="${direct.id}"]`).click();
    await page.locator('.message .seen').waitFor({ timeout: 10000 });
    await screenshot(page, `${tag}-seen`);
    if (phone) await page.locator('.topbar .back').click();

    await page.locator('.new-direct-panel summary').click();
    await page.locator('#new-direct-search').pressSequentially(zh ? '李' : 'Li L');
    await page.locator('.person', { hasText: zh ? '李雷' : 'Li Lei' }).first().waitFor({ timeout: 10000 });
    await expectAccessible(page, `${tag} new message`, { include: '.new-direct-panel' });
    await screenshot(page, `${tag}-new-message`);
    await page.locator('#new-direct-search').press('Escape');

    await page.locator('.topbar .account').click();
    await page.locator('#settings').waitFor();
    await expectAccessible(page, `${tag} settings`, { include: '#settings' });
    await screenshot(page, `${tag}-settings`);
    await page.keyboard.press('Escape');
    await context.close();
  });
}
