// Every main screen, at desktop and phone width, in English and Chinese
// (and in the dark theme, in English at desktop width), checked by
// axe-core against WCAG 2.1 A and AA: sign-in (with an error),
// registration, the conversation list and its people search, a group room
// with replies, reactions, a mention, an edited and a deleted message, its
// menus, pickers, @ suggestions and Leave dialog, the member list, a
// refused message, a direct conversation, a room that failed to load, a
// room the user is not in, the settings, a new user's empty list, and the
// embedded widget and room panel. One test per theme, language and width,
// reporting every screen's violations at once.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  expectAccessible, freePort, hostSite, loginInUi, newContext, serverAndBrowser, signHs256, siteConfig, unique,
} from './harness.mjs';

const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
// The dark theme's colours are the same at every width: one width will do.
const RUNS = [
  { locale: 'en-US', colorScheme: 'light', sizes: ['desktop', 'phone'] },
  { locale: 'zh-CN', colorScheme: 'light', sizes: ['desktop', 'phone'] },
  { locale: 'en-US', colorScheme: 'dark', sizes: ['desktop'] },
];
const SECRET = 'school-secret-of-at-least-32-bytes!!';
const sitePort = await freePort();
const siteOrigin = `http://127.0.0.1:${sitePort}`;

// Its set-up writes a room's worth of history faster than a person could.
const env = serverAndBrowser({
  config: siteConfig({ issuer: 'https://school.test', secret: SECRET, origin: siteOrigin }),
  rateLimits: false,
});

function token(sub, name, rooms) {
  const now = Math.floor(Date.now() / 1000);
  return signHs256({ sub, name, rooms, iss: 'https://school.test', aud: 'natter', iat: now, exp: now + 120 }, SECRET);
}

/** A history with everything a message can show: a link, emoticons, a
 *  reply, reactions (one of them the viewer's), an edit and a deletion,
 *  the viewer's own messages among the others'. */
async function richHistory(roomId, other, viewer) {
  const hello = await other.send(roomId, '同学们好 [微笑] Welcome to the class room :wave:');
  const mine = await viewer.send(roomId, '老师好！[强]\nSee https://example.com/homework for the homework.');
  await other.send(roomId, 'Yes, pages 12 and 13', { replyTo: mine.seq });
  await other.send(roomId, `<@${viewer.user.id}> can you bring the cake? https://example.com/cake`);
  await other.react(roomId, hello.seq, '👍');
  await viewer.react(roomId, hello.seq, '👍');
  await viewer.react(roomId, hello.seq, '[微笑]');
  const typo = await viewer.send(roomId, 'I will bring teh cake');
  await viewer.editMessage(roomId, typo.seq, 'I will bring the cake');
  const gone = await other.send(roomId, 'a message sent by mistake');
  await other.deleteMessage(roomId, gone.seq);
  const ownGone = await viewer.send(roomId, 'mine, sent by mistake');
  await viewer.deleteMessage(roomId, ownGone.seq);
  await other.send(roomId, 'Thanks :thumbsup: The answers: https://example.com/answers');
}

let ready = null;
after(async () => (await ready)?.site.close());

/** The users and rooms every walk shows, made once through the API. */
const setUp = () => (ready ??= makeData());

async function makeData() {
  const { server } = env;
  const host = await server.user('lin', '林老师');
  const guest = await server.user('wang', '王同学');
  const third = await server.user('zhao', 'Zhao Min');
  const room = await host.createRoom('三年二班 Class 3 (2)', { visibility: 'public' });
  await guest.joinRoom(room.id);
  await third.joinRoom(room.id);
  await richHistory(room.id, host, guest);
  // Unread in the list: a badge.
  const parents = await host.createRoom('Parents 家长群', { visibility: 'public' });
  await guest.joinRoom(parents.id);
  await host.send(parents.id, 'Meeting at 6pm');
  await host.send(parents.id, '请准时参加');
  // One to join from the public rooms.
  const chess = await third.createRoom('Chess club 象棋', { visibility: 'public' });
  // Someone in no conversation yet.
  await server.user('newbie', 'New Person');
  const direct = await guest.openDirect(host.user.id);
  await host.send(direct.id, 'Can you stay after class?');

  // The embedded rooms are the school's, as are the people in them.
  const teacher = await server.siteUser(token('t1', 'Ms. Lin', []), 'school');
  const widgetRoom = await teacher.createRoom('Class 3 (2)', { visibility: 'public' });
  const panelRoom = await teacher.createRoom('Parents', { visibility: 'public' });
  const pupil = await server.siteUser(token('s1', 'Li Lei', [widgetRoom.id]), 'school');
  await richHistory(widgetRoom.id, teacher, pupil);
  await teacher.send(panelRoom.id, 'Meeting at 6pm');
  const site = await hostSite({
    '/': () => `<!doctype html><html lang="en"><head><title>School site</title></head>
      <body><main><h1>School site</h1><p>Welcome, Li Lei.</p></main>
      <script src="${server.base}/widget.js" data-site="school" data-token="${token('s1', 'Li Lei', [widgetRoom.id])}" async></script>
      </body></html>`,
    '/panel': () => `<!doctype html><html lang="en"><head><title>Parents' corner</title></head>
      <body><main><h1>Parents' corner</h1>
      <iframe id="panel" title="Chat" style="width:600px;height:500px"
        src="${server.base}/embed/rooms/${panelRoom.id}?site=school#token=${token('p1', 'Parent One', [panelRoom.id])}"></iframe>
      </main></body></html>`,
  }, sitePort);
  return { site, parentsId: parents.id, chessId: chess.id };
}

/** Runs `walk(check)`, where `check(target, label)` runs axe there and
 *  keeps what failed; then fails with every screen's violations (and
 *  where the walk stopped, if it did). */
async function checkScreens(where, atLeast, walk) {
  const problems = [];
  let checked = 0;
  const check = async (target, label, options) => {
    checked += 1;
    try {
      await expectAccessible(target, `${label} (${where})`, options);
    } catch (e) {
      problems.push(e.message);
    }
  };
  try {
    await walk(check);
  } catch (e) {
    problems.push(`the walk stopped after ${checked} screens: ${e.stack}`);
  }
  assert.equal(problems.length, 0, `\n${problems.join('\n\n')}\n`);
  assert.ok(checked >= atLeast, `only ${checked} screens were checked`);
}

/** A message's actions menu, opened as a mouse user would. */
async function openMenu(page, item) {
  await item.hover();
  await item.locator('.actions-toggle').click();
  await page.locator('.action-menu [role="menuitem"]').first().waitFor();
}

const messageWith = (page, text) => page.locator('.message', { has: page.locator('.text', { hasText: text }) });
const roomTitled = (page, title) => page.locator('.room', { has: page.locator('.room-title', { hasText: title }) });

async function walkApp(page, size, check) {
  const { parentsId, chessId } = await setUp();
  const phone = size === 'phone';
  const base = env.server.base;
  await page.goto(base + '/');
  await page.locator('#username').waitFor();
  await check(page, 'sign-in');

  // A wrong password (of a name nobody has, so no real account slows down).
  await page.fill('#username', `nobody${unique()}`);
  await page.fill('#password', 'not-the-password');
  await page.locator('.auth-form button[type="submit"]').click();
  await page.locator('.auth-error:not(:empty)').waitFor();
  await check(page, 'sign-in with an error');

  await page.locator('.auth .link').click();
  await page.locator('#display-name').waitFor();
  await check(page, 'registration');

  await loginInUi(page, base, 'wang');
  await page.locator('#connection[data-state="connected"]').waitFor();
  await roomTitled(page, 'Parents').locator('.badge').waitFor();
  for (const summary of await page.locator('.sidebar .panel summary').all()) await summary.click();
  await page.locator('.public-list li', { hasText: 'Chess club' }).locator('button').waitFor();
  await check(page, 'conversation list, with the new-room and public-room panels open');
  await page.fill('#new-direct-search', 'Zhao');
  await page.locator('.people-results .person').first().waitFor();
  await check(page, 'the New message search, with a result');

  await roomTitled(page, '三年二班').click();
  await messageWith(page, 'Thanks 👍').waitFor();
  await page.locator('.message .quote .quote-sender').waitFor();
  await page.locator('.message.deleted').first().waitFor();
  if (!phone) await page.locator('.member-list .member', { hasText: 'Zhao Min' }).waitFor();
  await check(page, phone ? 'a group room' : 'a group room with its member list');

  const own = messageWith(page, 'I will bring the cake');
  await openMenu(page, own);
  await check(page, 'the message actions menu');
  await page.locator('[data-action="menu:react"]').click();
  await page.locator('.reaction-picker').waitFor();
  await check(page, 'the reaction picker');
  await page.keyboard.press('Escape');
  await openMenu(page, own);
  await page.locator('[data-action="menu:delete"]').click();
  await page.locator('.confirm-delete').waitFor();
  await check(page, 'the delete confirmation');
  await page.keyboard.press('Escape');
  await openMenu(page, messageWith(page, 'Thanks'));
  await page.locator('[data-action="menu:reply"]').click();
  await page.locator('.compose-mode:not([hidden])').waitFor();
  await check(page, 'the composer replying to a message');
  await page.keyboard.press('Escape');
  await page.locator('.compose-mode[hidden]').waitFor({ state: 'attached' });

  await page.fill('#composer', '');
  await page.locator('#composer').pressSequentially('@Zh');
  await page.locator('#mention-list:not([hidden]) .mention-option').first().waitFor();
  await check(page, 'the composer suggesting someone to mention');
  await page.keyboard.press('Escape');
  await page.fill('#composer', '');

  await page.locator('.emoji-toggle').click();
  await page.locator('.emoji-picker:not([hidden])').waitFor();
  await check(page, 'the emoji picker');
  await page.locator('.emoji-toggle').click();

  await page.locator('.room-header .leave').click();
  await page.locator('dialog.confirm-dialog[open]').waitFor();
  await check(page, 'the Leave dialog');
  await page.keyboard.press('Escape');
  await page.locator('dialog.confirm-dialog').waitFor({ state: 'detached' });

  // A message the server refuses stays with its reason and a Dismiss.
  await page.route('**/api/v1/rooms/*/messages', (route) => (route.request().method() === 'POST'
    ? route.fulfill({ status: 403, contentType: 'application/json', body: '{"error":{"code":"forbidden","message":"no"}}' })
    : route.fallback()));
  await page.fill('#composer', 'this one is refused');
  await page.press('#composer', 'Enter');
  await page.locator('.message.pending .retry').waitFor();
  await check(page, 'a message the server refused');
  await page.unroute('**/api/v1/rooms/*/messages');
  await page.locator('.message.pending .retry').click();

  if (phone) {
    await page.locator('.members-toggle').click();
    await page.locator('.member-list .member', { hasText: 'Zhao Min' }).waitFor();
    await check(page, 'the member list');
  }
  await toTheList(page);
  await roomTitled(page, /^林老师$/).click();
  await messageWith(page, 'Can you stay after class?').waitFor();
  await check(page, 'a direct conversation');

  // A room whose history cannot be read: the reason and a Retry.
  const history = `**/api/v1/rooms/${parentsId}/messages?*`;
  await page.route(history, (route) => route.fulfill({
    status: 503, contentType: 'application/json', body: '{"error":{"code":"unavailable","message":"try later"}}',
  }));
  await toTheList(page);
  await roomTitled(page, 'Parents').click();
  await page.locator('.load-error .retry-load').waitFor();
  await check(page, 'a room whose messages could not be loaded');
  await page.unroute(history);

  // A link to a public room the user is not in: what it is, and Join.
  await page.evaluate((id) => { location.hash = `#/rooms/${id}`; }, chessId);
  await page.locator('.not-member .primary').waitFor();
  await check(page, 'a link to a room the user is not in');

  await page.locator('.topbar .account').click();
  await page.locator('dialog#settings[open]').waitFor();
  await check(page, 'the settings dialog');
  await page.keyboard.press('Escape');
  await page.locator('dialog#settings').waitFor({ state: 'detached' });

  // Someone with no conversations yet is told how to start one.
  await page.locator('.topbar .logout').click();
  await page.locator('#username').waitFor();
  await loginInUi(page, base, 'newbie');
  await page.locator('#sidebar .empty').waitFor();
  await check(page, 'a new user with no conversations');
}

/** Back to the conversation list: at phone width a room (or its member
 *  list) covers it, and the back arrow goes up a level at a time. */
async function toTheList(page) {
  for (let up = 0; up < 3 && !(await page.locator('#sidebar').isVisible()); up++) {
    await page.locator('.topbar .back').click();
  }
  await page.locator('#sidebar').waitFor();
}

async function walkEmbed(page, check) {
  const { site } = await setUp();
  await page.goto(site.origin + '/');
  await page.locator('[data-natter-widget] button.launcher').click();
  const widget = page.frameLocator('[data-natter-widget] iframe');
  await widget.locator('.room', { hasText: 'Class 3 (2)' }).waitFor({ timeout: 10000 });
  await widget.locator('#connection[data-state="connected"]').waitFor();
  const frame = page.frames().find((f) => f.url().includes('/embed/widget'));
  await check(page, 'the widget launcher on the host page', { include: '[data-natter-widget]' });
  await check(frame, 'the embedded widget, conversation list');
  await widget.locator('.room', { hasText: 'Class 3 (2)' }).click();
  await widget.locator('.message .text', { hasText: 'Thanks 👍' }).waitFor();
  await check(frame, 'the embedded widget, a room');

  await page.goto(site.origin + '/panel');
  const panel = page.frameLocator('#panel');
  await panel.locator('.message .text', { hasText: 'Meeting at 6pm' }).waitFor({ timeout: 10000 });
  await check(page.frames().find((f) => f.url().includes('/embed/rooms/')), 'the embedded room panel');

  // Opened without the site's token (in a tab of its own: this one's
  // session storage has the widget's session): it says where to sign in.
  const bare = await page.context().newPage();
  await bare.goto(`${env.server.base}/embed/widget?site=school`);
  await bare.locator('main.auth [role="alert"]').waitFor();
  await check(bare, 'the embed without a sign-in');
}

for (const { locale, colorScheme, sizes } of RUNS) {
  for (const size of sizes) {
    const viewport = SIZES[size];
    const where = `${locale}, ${viewport.width}x${viewport.height}${colorScheme === 'dark' ? ', dark' : ''}`;
    const browse = async (walk) => {
      const context = await newContext(env.browser, { locale, viewport, colorScheme });
      try {
        await walk(await context.newPage());
      } finally {
        await context.close();
      }
    };
    test(`the app's screens meet WCAG 2.1 AA (${where})`, () => browse((page) => checkScreens(where,
      size === 'phone' ? 20 : 19, (check) => walkApp(page, size, check))));

    test(`the embedded widget and room panel meet WCAG 2.1 AA (${where})`, () => browse((page) => checkScreens(where,
      5, (check) => walkEmbed(page, check))));
  }
}
