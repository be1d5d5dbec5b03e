// The PHP example site (examples/php-site/) under `php -S`, next to
// natter: a user signs in on the PHP site and chats through the widget
// and the room panel it embeds.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { ROOT, Server, freePort, launchBrowser, newContext, screenshot, signHs256, siteConfig } from './harness.mjs';

const SECRET = 'php-example-secret-0123456789-abcdefgh';
let natter;
let php;
let phpOrigin;
let browser;
let teacher;
let roomId;

before(async () => {
  const port = await freePort();
  phpOrigin = `http://127.0.0.1:${port}`;
  natter = await Server.start({
    config: siteConfig({ issuer: phpOrigin, secret: SECRET, origin: phpOrigin }),
  });
  // The teacher is one of the site's users, as its pupils are: a local
  // account could not reach them.
  const now = Math.floor(Date.now() / 1000);
  teacher = await natter.siteUser(
    signHs256({ sub: 'teacher-1', name: 'Ms. Wang', iss: phpOrigin, aud: 'natter', iat: now, exp: now + 120 }, SECRET),
    'school',
  );
  roomId = (await teacher.createRoom('Class 3 (2)', { visibility: 'public' })).id;
  php = spawn('php', ['-S', `127.0.0.1:${port}`, '-t', join(ROOT, 'examples', 'php-site')], {
    stdio: 'ignore',
    env: {
      ...process.env,
      NATTER_URL: natter.base,
      NATTER_SITE: 'school',
      NATTER_SECRET: SECRET,
      NATTER_ISSUER: phpOrigin,
      NATTER_ROOM: String(roomId),
    },
  });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(phpOrigin + '/')).ok) break;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  php?.kill();
  await natter?.stop();
});

test('a user signs in on the PHP site and chats through the widget and the panel', async () => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto(phpOrigin + '/');
  await page.fill('input[name=username]', 'lilei');
  await page.fill('input[name=password]', 'wrong');
  await page.click('button[type=submit]');
  await page.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor();
  await page.fill('input[name=username]', 'lilei');
  await page.fill('input[name=password]', 'lilei-password');
  await page.click('button[type=submit]');
  await page.getByText('Welcome, Li Lei.').waitFor();

  // The panel: the class room, signed in as the PHP site's user.
  const panel = page.frameLocator('#class-room');
  await panel.locator('.room-header h2', { hasText: 'Class 3 (2)' }).waitFor({ timeout: 10000 });
  await teacher.send(roomId, 'Welcome to class, everyone');
  await panel.locator('.message .text', { hasText: 'Welcome to class, everyone' }).waitFor({ timeout: 3000 });
  await panel.locator('#composer').fill('Hello Ms. Wang!');
  await panel.locator('#composer').press('Enter');
  let answer = null;
  for (let i = 0; i < 50 && !answer; i++) {
    answer = (await teacher.history(roomId)).messages.find((m) => m.text === 'Hello Ms. Wang!');
    if (!answer) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(answer, 'the message from the PHP site user arrived');
  assert.equal(answer.sender_name, 'Li Lei');

  // The widget works on the same page with its own token.
  await page.locator('[data-natter-widget] button.launcher').click();
  const widget = page.frameLocator('[data-natter-widget] iframe');
  await widget.locator('.room', { hasText: 'Class 3 (2)' }).waitFor({ timeout: 10000 });
  await screenshot(page, 'php-example');
  await context.close();
});
