// Two people chatting in real Chromium: a group room and a direct
// conversation, unread counts and the title badge, online dots, emoticons.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  newContext, registerInUi, screenshot, sendInUi, serverAndBrowser, unique,
} from './harness.mjs';

const env = serverAndBrowser();

test('two users chat in a group room and a direct conversation', async () => {
  const alice = await newContext(env.browser);
  const bob = await newContext(env.browser);
  const pa = await alice.newPage();
  const pb = await bob.newPage();
  const a = `alice${unique()}`;
  const b = `bob${unique()}`;
  await registerInUi(pa, env.server.base, a);
  await registerInUi(pb, env.server.base, b);

  // Alice creates a public room; Bob finds it and joins.
  const title = `Class 3 ${unique()}`;
  await pa.getByText('New room').click();
  await pa.fill('#new-room-title', title);
  await pa.getByRole('button', { name: 'Create' }).click();
  await pa.locator('.room-header h2', { hasText: title }).waitFor();
  // The form is ready for the next room: empty, and public by default again.
  assert.equal(await pa.inputValue('#new-room-title'), '');
  assert.ok(await pa.locator('#new-room-public').isChecked());
  await pb.getByText('Public rooms').click();
  await pb.locator('.public-list li', { hasText: title }).getByRole('button', { name: 'Join' }).click();
  await pb.locator('.room-header h2', { hasText: title }).waitFor();
  await pb.locator('.public-list li', { hasText: title }).getByText('Joined').waitFor();

  // Each message appears in the other window within 2 s.
  const started = Date.now();
  await sendInUi(pa, 'hello bob :smile:');
  await pb.locator('.message .text', { hasText: 'hello bob 😄' }).waitFor({ timeout: 2000 });
  assert.ok(Date.now() - started < 2000);
  await sendInUi(pb, 'hi alice [微笑]');
  await pa.locator('.message .text', { hasText: 'hi alice 🙂' }).waitFor({ timeout: 2000 });

  // Online dots: both see the other online.
  await pa.locator(`.member:has-text("${b}") .dot.online`).waitFor({ timeout: 5000 });
  await pb.locator(`.member:has-text("${a}") .dot.online`).waitFor({ timeout: 5000 });

  // A direct conversation from the member list; Bob sees it with an unread badge.
  await pa.locator('.member', { hasText: b }).getByRole('button', { name: 'Message' }).click();
  await pa.locator('.room-header h2', { hasText: b }).waitFor();
  await sendInUi(pa, 'just us');
  const direct = pb.locator('.room', { hasText: a });
  await direct.locator('.badge', { hasText: '1' }).waitFor({ timeout: 3000 });
  assert.match(await pb.title(), /^\(1\) natter$/);
  await direct.click();
  await pb.locator('.message .text', { hasText: 'just us' }).waitFor({ timeout: 2000 });
  await pb.locator('.room', { hasText: a }).locator('.badge').waitFor({ state: 'detached' });
  await pb.waitForFunction(() => document.title === 'natter');
  await sendInUi(pb, 'yes, just us');
  await pa.locator('.message .text', { hasText: 'yes, just us' }).waitFor({ timeout: 2000 });

  await screenshot(pa, 'desktop-en-conversation');
  await alice.close();
  await bob.close();
});
