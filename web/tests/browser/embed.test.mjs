// natter embedded in a host site of another origin: the widget and a room
// panel sign in with the site's token, chat works, the badge counts
// unread, the host page cannot read the chat, and other origins get
// nothing.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  Server, freePort, hostSite, launchBrowser, newContext, screenshot, signHs256, siteConfig,
} from './harness.mjs';

const SECRET = 'school-secret-of-at-least-32-bytes!!';
let natter;
let site;
let evil;
let browser;
let teacher;
let roomId;
let panelRoomId;
let staffRoomId;
let sitePort;

function token(sub, name, rooms = []) {
  const now = Math.floor(Date.now() / 1000);
  return signHs256({ sub, name, rooms, iss: 'https://school.test', aud: 'natter', iat: now, exp: now + 120 }, SECRET);
}

before(async () => {
  sitePort = await freePort();
  const siteOrigin = `http://127.0.0.1:${sitePort}`;
  natter = await Server.start({
    config: siteConfig({ issuer: 'https://school.test', secret: SECRET, origin: siteOrigin }),
  });
  // The teacher is one of the school's users, as its pupils are: a local
  // account could not reach them.
  teacher = await natter.siteUser(token('t1', 'Ms. Lin', []), 'school');
  roomId = (await teacher.createRoom('Class 3 (2)', { visibility: 'public' })).id;
  panelRoomId = (await teacher.createRoom('Parents', { visibility: 'public' })).id;
  staffRoomId = (await teacher.createRoom('Staff room')).id;
  const widgetPage = (sub, name) => () => `<!doctype html><html><head><title>School site</title>
    <style>body { font-family: serif; background: #fdf6e3; } button, iframe { display: none !important; }</style></head>
    <body><h1>School site</h1><p>Welcome, ${name}.</p>
    <script src="${natter.base}/widget.js" data-site="school" data-token="${token(sub, name, [roomId, panelRoomId])}" async></script>
    </body></html>`;
  site = await hostSite({
    '/': widgetPage('s1', 'Li Lei'),
    '/panel': () => `<!doctype html><html><body><h1>Parents' corner</h1>
      <iframe id="panel" title="Chat" style="width:600px;height:500px"
        src="${natter.base}/embed/rooms/${panelRoomId}?site=school#token=${token('p1', 'Parent One', [panelRoomId])}"></iframe></body></html>`,
    '/staff': () => `<!doctype html><html><body><h1>Staff corner</h1>
      <iframe id="panel" title="Chat" style="width:600px;height:500px"
        src="${natter.base}/embed/rooms/${staffRoomId}?site=school#token=${token('p2', 'Parent Two', [])}"></iframe></body></html>`,
  }, sitePort);
  evil = await hostSite({ '/': widgetPage('s2', 'Mallory') });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await site?.close();
  await evil?.close();
  await natter?.stop();
});

test('the widget signs the site user in, chats, and counts unread on its badge', async () => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto(site.origin + '/');
  const launcher = page.locator('[data-natter-widget] button.launcher');
  await launcher.waitFor();
  const chat = page.frameLocator('[data-natter-widget] iframe');
  await chat.locator('.room', { hasText: 'Class 3 (2)' }).waitFor({ state: 'attached', timeout: 10000 });

  // Closed widget: messages count on the badge.
  await teacher.send(roomId, 'Homework: page 12');
  await teacher.send(roomId, 'and page 13');
  const badge = page.locator('[data-natter-widget] .badge');
  await page.waitForFunction(() => {
    const b = document.querySelector('[data-natter-widget]').shadowRoot.querySelector('.badge');
    return b && !b.hidden && b.textContent === '2';
  }, null, { timeout: 5000 });
  assert.equal(await badge.textContent(), '2');

  // Opened: the user reads and answers.
  await launcher.click();
  await chat.locator('.room', { hasText: 'Class 3 (2)' }).click();
  await chat.locator('.message .text', { hasText: 'and page 13' }).waitFor();
  await page.waitForFunction(() => document.querySelector('[data-natter-widget]').shadowRoot.querySelector('.badge').hidden);
  await chat.locator('#composer').fill('Got it, thanks!');
  await chat.locator('#composer').press('Enter');
  const history = await teacher.history(roomId);
  await assert.doesNotReject(async () => {
    for (let i = 0; i < 50; i++) {
      const page1 = await teacher.history(roomId);
      const found = page1.messages.find((m) => m.text === 'Got it, thanks!');
      if (found) {
        assert.equal(found.sender_name, 'Li Lei');
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the answer never arrived');
  });
  assert.ok(history.messages.length > 0);
  await teacher.send(roomId, 'See you tomorrow');
  await chat.locator('.message .text', { hasText: 'See you tomorrow' }).waitFor({ timeout: 2000 });
  await screenshot(page, 'embed-widget');

  // The host page's own scripts cannot reach into the chat.
  const reach = await page.evaluate(() => {
    const frame = document.querySelector('[data-natter-widget]').shadowRoot.querySelector('iframe');
    let doc = 'readable';
    try {
      doc = frame.contentDocument === null ? 'null' : 'readable';
    } catch {
      doc = 'blocked';
    }
    return { doc, hostText: document.body.innerText.includes('See you tomorrow') };
  });
  assert.notEqual(reach.doc, 'readable');
  assert.equal(reach.hostText, false);
  await context.close();
});

test('a room panel shows just that room', async () => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto(site.origin + '/panel');
  const panel = page.frameLocator('#panel');
  await panel.locator('.room-header h2', { hasText: 'Parents' }).waitFor({ timeout: 10000 });
  await teacher.send(panelRoomId, 'Meeting at 6pm');
  await panel.locator('.message .text', { hasText: 'Meeting at 6pm' }).waitFor({ timeout: 3000 });
  assert.equal(await panel.locator('.sidebar').isVisible(), false);
  await screenshot(page, 'embed-room-panel');
  await context.close();
});

test("the widget's rooms and back arrow leave the host page's history alone", async () => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto(site.origin + '/');
  const entries = await page.evaluate(() => history.length);
  await page.locator('[data-natter-widget] button.launcher').click();
  const chat = page.frameLocator('[data-natter-widget] iframe');
  await chat.locator('.room', { hasText: 'Class 3 (2)' }).click();
  await chat.locator('#composer').waitFor();
  await chat.locator('.topbar .back').click();
  await chat.locator('.room', { hasText: 'Parents' }).click();
  await chat.locator('.room-header h2', { hasText: 'Parents' }).waitFor();
  await chat.locator('.topbar .back').click();
  await chat.locator('.room', { hasText: 'Class 3 (2)' }).waitFor();
  // No back arrow on the widget's list, and the host's Back still leaves the host page.
  assert.equal(await chat.locator('.topbar .back').isVisible(), false);
  assert.equal(await page.evaluate(() => history.length), entries);
  await context.close();
});

test('a room panel of a room the user is not in says so, without pointing "left"', async () => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto(site.origin + '/staff');
  const panel = page.frameLocator('#panel');
  await panel.getByRole('heading', { name: 'You are not in this conversation' }).waitFor({ timeout: 10000 });
  const text = await panel.locator('#conversation').innerText();
  assert.ok(!/left/i.test(text), text);
  assert.equal(await panel.getByRole('button', { name: 'Back to conversations' }).count(), 0, 'a panel has no list to go back to');
  assert.equal(await panel.locator('#composer').count(), 0);
  await context.close();
});

test('a page of an origin the site did not allow gets nothing', async () => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto(evil.origin + '/');
  await page.locator('[data-natter-widget] button.launcher').waitFor();
  await page.waitForTimeout(2500);
  // frame-ancestors: the browser refuses to show natter inside this page.
  const frame = page.frames().find((f) => f.url().includes('/embed/widget'));
  const shown = frame ? await frame.locator('.topbar, .room').count().catch(() => 0) : 0;
  assert.equal(shown, 0, 'the chat must not render for this origin');
  // And its scripts get no CORS permission to call the API.
  const call = await page.evaluate(async (base) => {
    try {
      await fetch(`${base}/api/v1/rooms/public`, { headers: { Authorization: 'Bearer x' } });
      return 'allowed';
    } catch {
      return 'refused';
    }
  }, natter.base);
  assert.equal(call, 'refused');
  await context.close();
});
