// A widget session renews itself: sessions made from a site token last
// what the site configures, and before one ends the chat asks the host
// page for a fresh token (widget.js fetches its data-token-url), signs in
// with it and carries on, with no sign-in screen and no lost message.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { Server, freePort, hostSite, launchBrowser, newContext, signHs256, siteConfig } from './harness.mjs';

const SECRET = 'school-secret-of-at-least-32-bytes!!';
let natter;
let site;
let browser;
let teacher;
let roomId;
let tokenRequests = 0;

function token(sub, name, rooms = []) {
  const now = Math.floor(Date.now() / 1000);
  return signHs256({ sub, name, rooms, iss: 'https://school.test', aud: 'natter', iat: now, exp: now + 120 }, SECRET);
}

before(async () => {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  // The shortest session a site may set: the chat asks for a new token
  // after 10 s.
  natter = await Server.start({
    config: siteConfig({ issuer: 'https://school.test', secret: SECRET, origin, sessionTtlSecs: 60 }),
  });
  teacher = await natter.siteUser(token('t1', 'Ms. Lin'), 'school');
  roomId = (await teacher.createRoom('Class 3 (2)', { visibility: 'public' })).id;
  site = await hostSite({
    '/': () => `<!doctype html><html><head><title>School site</title></head><body><h1>School</h1>
      <script src="${natter.base}/widget.js" data-site="school" data-token="${token('s1', 'Li Lei', [roomId])}"
        data-token-url="/natter-token" async></script></body></html>`,
    '/natter-token': () => {
      tokenRequests += 1;
      return JSON.stringify({ token: token('s1', 'Li Lei') });
    },
  }, port);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await site?.close();
  await natter?.stop();
});

test('the widget renews its site session before it ends, and the chat goes on', async () => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto(site.origin + '/');
  await page.locator('[data-natter-widget] button.launcher').click();
  const chat = page.frameLocator('[data-natter-widget] iframe');
  await chat.locator('.room', { hasText: 'Class 3 (2)' }).click();
  await teacher.send(roomId, 'before the renewal');
  await chat.locator('.message .text', { hasText: 'before the renewal' }).waitFor({ timeout: 5000 });

  for (let i = 0; i < 200 && tokenRequests === 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(tokenRequests >= 1, 'the chat asked the host page for a new token');
  // The new session carries the stream: a message sent now still arrives,
  // and the user can still send.
  await new Promise((r) => setTimeout(r, 1500));
  await teacher.send(roomId, 'after the renewal');
  await chat.locator('.message .text', { hasText: 'after the renewal' }).waitFor({ timeout: 5000 });
  await chat.locator('#composer').fill('still here');
  await chat.locator('#composer').press('Enter');
  let answered = false;
  for (let i = 0; i < 50 && !answered; i++) {
    answered = (await teacher.history(roomId)).messages.some((m) => m.text === 'still here');
    if (!answered) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(answered, "the pupil's message arrived after the renewal");
  // The old session ended with the renewal: the pupil holds the renewed
  // one, and the one this check signs in with.
  const probe = await natter.siteUser(token('s1', 'Li Lei'), 'school');
  const { sessions } = await probe.request('GET', '/api/v1/me/sessions');
  assert.equal(sessions.length, 2, JSON.stringify(sessions));
  assert.equal(await chat.locator('main.auth').count(), 0, 'no sign-in problem shown');
  assert.equal((await chat.locator('#notice').textContent()).trim(), '', 'no notice shown');
  await context.close();
});
