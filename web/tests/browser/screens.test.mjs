// Screenshots of the main screens at desktop and phone width, in English
// and Chinese, saved to test-artifacts/screenshots/ for people to look at.
// The sign-in screen's button shows the browser's language was picked.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  loginInUi, newContext, openRoomInUi, screenshot, serverAndBrowser,
} from './harness.mjs';

const env = serverAndBrowser();

const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
const LOCALES = { en: 'en-US', zh: 'zh-CN' };

test('screenshots of sign-in, conversation list and conversation', async () => {
  const host = await env.server.user('lin', '林老师');
  const guest = await env.server.user('wang', '王同学');
  const room = await host.createRoom('三年二班 Class 3 (2)', { visibility: 'public' });
  await guest.joinRoom(room.id);
  await host.send(room.id, '同学们好 [微笑] Welcome to the class room :wave:');
  await guest.send(room.id, '老师好！[强]\nSee https://example.com/homework for the homework.');
  await host.send(room.id, 'Thanks :thumbsup:');
  await guest.openDirect(host.user.id);

  for (const [lang, locale] of Object.entries(LOCALES)) {
    for (const [size, viewport] of Object.entries(SIZES)) {
      const context = await newContext(env.browser, { locale, viewport });
      const page = await context.newPage();
      await page.goto(env.server.base + '/');
      await page.locator('#username').waitFor();
      const signIn = lang === 'zh' ? '登录' : 'Log in';
      await page.getByRole('button', { name: signIn, exact: true }).waitFor();
      await screenshot(page, `${size}-${lang}-sign-in`);

      await loginInUi(page, env.server.base, 'wang');
      await page.locator('.room').first().waitFor();
      await page.locator('#connection[data-state="connected"]').waitFor();
      await screenshot(page, `${size}-${lang}-conversations`);

      await openRoomInUi(page, '三年二班');
      await page.locator('.message .text', { hasText: 'Thanks 👍' }).waitFor();
      assert.equal(await page.locator('.message .text a').getAttribute('href'), 'https://example.com/homework');
      await screenshot(page, `${size}-${lang}-conversation`);
      await context.close();
    }
  }
});

test('screenshots of the New messages line, the emoji picker, the leave question and a failed load', async () => {
  const host = await env.server.user('zhou', '周老师');
  const guest = await env.server.user('chen', '陈同学');
  const room = await host.createRoom('兴趣小组 Study group', { visibility: 'public' });
  const other = await host.createRoom('家长群 Parents', { visibility: 'public' });
  await guest.joinRoom(room.id);
  await guest.joinRoom(other.id);
  await host.send(other.id, '明天见 See you tomorrow');
  for (const text of ['大家好 Hello everyone', '今天讨论第三章 Chapter 3 today [微笑]', '有问题吗？Any questions?']) {
    await guest.send(room.id, text);
  }

  for (const [lang, locale] of Object.entries(LOCALES)) {
    for (const [size, viewport] of Object.entries(SIZES)) {
      // Three new messages since the guest last read the room.
      let last;
      for (const text of ['作业在第 12 页 Homework: page 12', '别忘了带书 :star: Bring your book', '周五交 Due Friday :thumbsup:']) {
        last = await host.send(room.id, text);
      }
      const context = await newContext(env.browser, { locale, viewport });
      const page = await context.newPage();
      await loginInUi(page, env.server.base, 'chen');
      await page.locator('#connection[data-state="connected"]').waitFor();
      await openRoomInUi(page, '兴趣小组');
      await page.locator('#unread-divider').waitFor();
      await screenshot(page, `${size}-${lang}-new-messages`);

      await page.locator('.emoji-toggle').click();
      await page.locator('.emoji-picker:not([hidden])').waitFor();
      await screenshot(page, `${size}-${lang}-emoji-picker`);
      await page.keyboard.press('Escape');

      await page.locator('.room-header .leave').click();
      await page.locator('dialog.confirm-dialog[open]').waitFor();
      await screenshot(page, `${size}-${lang}-leave-question`);
      await page.keyboard.press('Escape');
      await page.locator('dialog.confirm-dialog').waitFor({ state: 'detached' });

      await page.route(`**/api/v1/rooms/${other.id}/messages?*`, (route) => route.abort('connectionreset'));
      if (size === 'phone') await page.locator('.topbar .back').click();
      await openRoomInUi(page, '家长群');
      await page.locator('.load-error').waitFor();
      await screenshot(page, `${size}-${lang}-load-failed`);
      await context.close();
      await guest.markRead(room.id, last.seq);
    }
  }
});
