// Editable messages in real Chromium: replies with quotes, reactions,
// edits (ArrowUp, Enter, Escape) and deletions, by mouse and keyboard, as
// the other person sees them too.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  loginInUi, newContext, openRoomInUi, screenshot, sendInUi, serverAndBrowser, unique,
} from './harness.mjs';

// Its set-up sends a long history faster than a person could.
const env = serverAndBrowser({ rateLimits: false });

/** A room of a new owner's that a new member has joined, both signed in
 *  through the API; `names` are their usernames. */
async function twoPeople() {
  const ownerName = `own${unique()}`;
  const memberName = `mem${unique()}`;
  const owner = await env.server.user(ownerName, `Owner ${ownerName}`);
  const member = await env.server.user(memberName, `Member ${memberName}`);
  const title = `edits ${unique()}`;
  const room = await owner.createRoom(title, { visibility: 'public' });
  await member.joinRoom(room.id);
  return { owner, member, ownerName, memberName, title, room };
}

const message = (page, text) => page.locator('.message', { has: page.locator('.text', { hasText: text }) });

test('reply, react, edit and delete with the mouse, and what others do shows at once', async () => {
  const { owner, member, ownerName, memberName, title, room } = await twoPeople();
  await owner.send(room.id, 'who brings the cake?\nsecond line');
  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, memberName);
  await openRoomInUi(page, title);
  const question = message(page, 'who brings the cake?');
  await question.waitFor();

  // Reply from the message's actions.
  await question.hover();
  await question.getByRole('button', { name: 'Message actions' }).click();
  await page.getByRole('menuitem', { name: 'Reply' }).click();
  await page.locator('.compose-mode', { hasText: `Replying to Owner ${ownerName}: who brings the cake?` }).waitFor();
  await sendInUi(page, 'I will');
  const reply = page.locator('.message:not(.pending)', { has: page.locator('.text', { hasText: 'I will' }) });
  await reply.locator('.quote', { hasText: 'who brings the cake?' }).waitFor();
  assert.equal(await page.locator('.compose-mode').isVisible(), false, 'reply mode ends with the send');
  const { messages } = await owner.history(room.id);
  const stored = messages.find((m) => m.text === 'I will');
  assert.equal(stored.reply_to, messages.find((m) => m.text?.startsWith('who brings')).seq, 'the send carried reply_to');

  // React with the picker, then the owner reacts the same: one chip, two people.
  await question.hover();
  await question.getByRole('button', { name: 'Message actions' }).click();
  await page.getByRole('menuitem', { name: 'React' }).click();
  await page.locator('.reaction-picker').getByRole('button', { name: '🎉' }).click();
  const chip = question.locator('.reaction', { hasText: '🎉' });
  await chip.locator('.reaction-count', { hasText: '1' }).waitFor();
  assert.equal(await chip.getAttribute('aria-pressed'), 'true');
  const questionSeq = Number(await question.getAttribute('data-seq'));
  await owner.react(room.id, questionSeq, '🎉');
  await chip.locator('.reaction-count', { hasText: '2' }).waitFor();
  const who = await chip.getAttribute('title');
  assert.ok(who.includes(`Member ${memberName}`) && who.includes(`Owner ${ownerName}`), who);
  // An emoticon code shows as its emoji.
  await owner.react(room.id, questionSeq, '[微笑]');
  await question.locator('.reaction', { hasText: '🙂' }).waitFor();
  // A click on a chip takes one's own reaction back.
  await chip.click();
  await chip.locator('.reaction-count', { hasText: '1' }).waitFor();
  assert.equal(await chip.getAttribute('aria-pressed'), 'false');

  // Edit: (edited) shows here and for the owner, through the stream.
  await reply.hover();
  await reply.getByRole('button', { name: 'Message actions' }).click();
  await page.getByRole('menuitem', { name: 'Edit' }).click();
  assert.equal(await page.inputValue('#composer'), 'I will');
  await page.fill('#composer', 'I will, with candles');
  await page.press('#composer', 'Enter');
  const edited = message(page, 'I will, with candles');
  await edited.locator('.edited', { hasText: '(edited)' }).waitFor();
  assert.equal(await page.inputValue('#composer'), '', 'the composer is empty again');

  // Delete asks first; then "message deleted" in place, and in the room list.
  await edited.hover();
  await edited.getByRole('button', { name: 'Message actions' }).click();
  await page.getByRole('menuitem', { name: 'Delete' }).click();
  await page.getByRole('alertdialog', { name: 'Delete this message?' }).getByRole('button', { name: 'Delete' }).click();
  await page.locator('.message.deleted .text', { hasText: 'message deleted' }).waitFor();
  assert.equal(await message(page, 'I will, with candles').count(), 0);
  await page.locator('.room', { hasText: title }).locator('.preview', { hasText: 'message deleted' }).waitFor();
  // A member may not delete the owner's message: no Delete in its menu.
  await question.hover();
  await question.getByRole('button', { name: 'Message actions' }).click();
  await page.getByRole('menuitem', { name: 'Reply' }).waitFor();
  assert.equal(await page.getByRole('menuitem', { name: 'Delete' }).count(), 0);
  assert.equal(await page.getByRole('menuitem', { name: 'Edit' }).count(), 0);
  await page.keyboard.press('Escape');
  await page.getByRole('menuitem', { name: 'Reply' }).waitFor({ state: 'detached' });
  await screenshot(page, 'desktop-en-message-actions');
  await context.close();
});

test('the keyboard: ArrowUp edits the last own message, Escape cancels, menus work with arrows', async () => {
  const { owner, memberName, title, room } = await twoPeople();
  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, memberName);
  await openRoomInUi(page, title);
  await sendInUi(page, 'first try');
  await page.locator('.message:not(.pending) .text', { hasText: 'first try' }).waitFor();
  await sendInUi(page, 'second try');
  await page.locator('.message:not(.pending) .text', { hasText: 'second try' }).waitFor();

  // ArrowUp in the empty composer edits the last own message; Escape cancels.
  await page.focus('#composer');
  await page.keyboard.press('ArrowUp');
  assert.equal(await page.inputValue('#composer'), 'second try');
  await page.locator('.compose-mode', { hasText: 'Editing' }).waitFor();
  await page.keyboard.type(' (typo)');
  await page.keyboard.press('Escape');
  assert.equal(await page.inputValue('#composer'), '');
  assert.equal(await page.locator('.compose-mode').isVisible(), false);
  await page.keyboard.press('ArrowUp');
  await page.fill('#composer', 'second try, fixed');
  await page.keyboard.press('Enter');
  await message(page, 'second try, fixed').locator('.edited').waitFor();
  const { messages } = await owner.history(room.id);
  assert.ok(messages.some((m) => m.text === 'second try, fixed' && m.edited_at), 'stored as an edit');

  // The actions button by keyboard: Tab to it, Enter, arrows, Enter.
  const first = message(page, 'first try');
  await first.getByRole('button', { name: 'Message actions' }).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('menuitem', { name: 'Reply' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Reply');
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'React');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Delete');
  await page.keyboard.press('Enter');
  // The confirmation has the focus on its Delete.
  await page.getByRole('alertdialog').waitFor();
  await page.keyboard.press('Escape');
  await page.getByRole('alertdialog').waitFor({ state: 'detached' });
  assert.equal(await first.locator('.text').textContent(), 'first try', 'Escape deleted nothing');
  await context.close();
});

test('a quote of a message far back in history jumps to it, loading older pages', async () => {
  const { owner, memberName, title, room } = await twoPeople();
  const original = await owner.send(room.id, 'the very first question');
  for (let n = 1; n <= 110; n++) await owner.send(room.id, `filler ${n}`);
  await owner.editMessage(room.id, original.seq, 'the very first question, edited');
  await owner.send(room.id, 'about that', { replyTo: original.seq });
  const context = await newContext(env.browser, { viewport: { width: 1280, height: 700 } });
  const page = await context.newPage();
  await loginInUi(page, env.server.base, memberName);
  await openRoomInUi(page, title);
  const reply = message(page, 'about that');
  // The original is not loaded: the quote comes from the history's preview.
  await reply.locator('.quote', { hasText: 'the very first question, edited' }).click();
  const target = page.locator(`.message[data-seq="${original.seq}"]`);
  await target.waitFor({ timeout: 10000 });
  await page.locator(`.message.highlight[data-seq="${original.seq}"]`).waitFor();
  assert.ok(await target.isVisible());
  // Deleted meanwhile: the quote says so.
  await owner.deleteMessage(room.id, original.seq);
  await reply.locator('.quote', { hasText: 'message deleted' }).waitFor();
  await context.close();
});

test('in Chinese, edited and deleted messages say so', async () => {
  const { owner, memberName, title, room } = await twoPeople();
  const one = await owner.send(room.id, '明天见');
  const two = await owner.send(room.id, '收到请回复');
  await owner.editMessage(room.id, one.seq, '明天上午见');
  await owner.deleteMessage(room.id, two.seq);
  const context = await newContext(env.browser, { locale: 'zh-CN' });
  const page = await context.newPage();
  await loginInUi(page, env.server.base, memberName);
  await openRoomInUi(page, title);
  await message(page, '明天上午见').locator('.edited', { hasText: '（已编辑）' }).waitFor();
  await page.locator('.message.deleted .text', { hasText: '消息已删除' }).waitFor();
  await context.close();
});

test('hostile text in edits, quotes, previews and reaction tooltips shows as text', async () => {
  const { owner, member, memberName, title, room } = await twoPeople();
  const hostile = '<img src=x onerror="window.__pwned=1"><b>bold</b>';
  const sent = await owner.send(room.id, 'harmless at first');
  await member.send(room.id, 'a reply', { replyTo: sent.seq });
  await owner.editMessage(room.id, sent.seq, hostile);
  await owner.updateProfile({ displayName: '<i onmouseover="window.__pwned=2">Mallory</i>' });
  await owner.react(room.id, sent.seq, '👍');
  const context = await newContext(env.browser);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, memberName);
  await openRoomInUi(page, title);
  const edited = message(page, hostile);
  await edited.locator('.edited').waitFor();
  // The quote of the reply shows the original's current text, as text.
  const reply = message(page, 'a reply');
  await reply.locator('.quote', { hasText: '<img src=x' }).waitFor();
  // Edited on screen too, through the stream.
  await owner.editMessage(room.id, sent.seq, `${hostile} again`);
  await message(page, `${hostile} again`).waitFor();
  await reply.locator('.quote', { hasText: 'again' }).waitFor();
  // The chip's tooltip names the reactor by a display name full of markup.
  const chip = message(page, `${hostile} again`).locator('.reaction');
  await chip.waitFor();
  await page.waitForFunction(
    (el) => (el.getAttribute('title') || '').includes('<i onmouseover'),
    await chip.elementHandle(),
  );
  // The room list previews the newest message, markup and all, as text.
  await owner.send(room.id, `${hostile} last`);
  await page.locator('.room', { hasText: title }).locator('.preview', { hasText: '<img' }).waitFor();
  await chip.hover();
  assert.equal(await page.evaluate(() => window.__pwned), undefined, 'no markup ran');
  assert.equal(await page.locator('[onerror], [onmouseover], img[src="x"]').count(), 0, 'no markup became elements');
  await context.close();
});
