// Big rooms (issue 13): in a room of more members than the server's
// `--big-room-members` (3 here), presence and typing reach only the pages
// looking at it, which also hear its online count (`room_online`). The
// page says which room it has open on every poll (`watch=`); with the
// shared worker, the rooms of all its tabs.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { loginInUi, newContext, openRoomInUi, serverAndBrowser, unique } from './harness.mjs';

const env = serverAndBrowser({ args: ['--big-room-members', '3'] });

const pause = (ms) => new Promise((r) => setTimeout(r, ms));
/** How long the server still counts someone as watching a room after
 *  their last poll that named it ended (5 s), and a margin. */
const WATCH_LINGERS_MS = 6500;
const count = (n) => new RegExp(`^${n} online$`);

/** A big room of `owner` and `others` (SDK clients, none polling yet). */
async function bigRoom(owner, others) {
  const room = await owner.createRoom(`big ${unique()}`, { visibility: 'public' });
  for (const other of others) await other.joinRoom(room.id);
  return room;
}

/**
 * A page without the shared worker, so its polls are its own and can be
 * read: the rooms each poll watched, and the items their answers carried.
 * `drop(item)`, if given, takes items out of the answers before the page
 * sees them.
 */
async function pageWithOwnStream(name, { drop } = {}) {
  const context = await newContext(env.browser);
  await context.addInitScript(() => Object.defineProperty(window, 'SharedWorker', { value: undefined }));
  const page = await context.newPage();
  if (drop) {
    await page.route('**/api/v1/events?*', async (route) => {
      let response;
      try {
        response = await route.fetch();
      } catch {
        return route.abort().catch(() => {}); // renewed: the page gave up on it
      }
      const answer = await response.json();
      answer.ephemeral = (answer.ephemeral || []).filter((item) => !drop(item));
      await route.fulfill({ response, json: answer }).catch(() => {});
    });
  }
  const polls = [];
  const heard = [];
  const isPoll = (url) => url.includes('/api/v1/events?');
  page.on('request', (request) => {
    if (isPoll(request.url())) polls.push(new URL(request.url()).searchParams.get('watch'));
  });
  page.on('response', async (response) => {
    if (!isPoll(response.url())) return;
    try {
      heard.push(...((await response.json()).ephemeral || []));
    } catch { /* renewed while it waited: answered nothing */ }
  });
  await loginInUi(page, env.server.base, name);
  return { context, page, polls, heard };
}

test('a big room: its watchers see people come online; a page with another room open hears nothing of them', async () => {
  const tag = unique();
  const owner = await env.server.user(`ow${tag}`);
  const other = await env.server.user(`ot${tag}`);
  const members = [];
  for (const n of [1, 2, 3]) members.push(await env.server.user(`m${n}${tag}`));
  const [first, second] = members;
  const room = await bigRoom(owner, [other, ...members]);
  const elsewhere = await other.createRoom(`elsewhere ${tag}`);

  // The owner's page (shared worker) looks at the big room.
  const ownerContext = await newContext(env.browser);
  const watching = await ownerContext.newPage();
  await loginInUi(watching, env.server.base, owner.user.username);
  await openRoomInUi(watching, room.title);
  await watching.locator('#room-online', { hasText: count(1) }).waitFor();

  // Another member's page (its own stream) has another room open.
  const away = await pageWithOwnStream(other.user.username);
  await openRoomInUi(away.page, elsewhere.title);
  await away.page.locator('#connection[data-state="connected"]').waitFor();
  await watching.locator('#room-online', { hasText: count(2) }).waitFor({ timeout: 10000 });

  // A member's client starts to poll: the watcher's header and member
  // list show them online at once.
  const stops = [first.subscribe({})];
  try {
    await watching.locator('#room-online', { hasText: count(3) }).waitFor({ timeout: 5000 });
    await watching.locator(`.member[data-user="${first.user.id}"] .dot.online`).waitFor({ timeout: 5000 });
    await watching.locator('.members h2 .online-count', { hasText: count(3) }).waitFor({ timeout: 5000 });

    // The page looking elsewhere watches only its own room, and is told
    // nothing of the big room's people (news is gathered for 250 ms).
    await pause(1000);
    assert.ok(away.polls.some((w) => w === String(elsewhere.id)), `it watches its room: ${away.polls}`);
    assert.ok(!away.polls.includes(String(room.id)), 'not the big room');
    assert.deepEqual(away.heard.filter((i) => i.type === 'presence' || i.type === 'room_online'), [],
      'no presence of the big room reached it');

    // Opening the big room: its count is read with the member list, and
    // from then on the page hears its people.
    await openRoomInUi(away.page, room.title);
    await away.page.locator('#room-online', { hasText: count(3) }).waitFor({ timeout: 5000 });
    await away.page.locator(`.member[data-user="${first.user.id}"] .dot.online`).waitFor();
    stops.push(second.subscribe({}));
    for (const page of [watching, away.page]) {
      await page.locator('#room-online', { hasText: count(4) }).waitFor({ timeout: 5000 });
      await page.locator(`.member[data-user="${second.user.id}"] .dot.online`).waitFor({ timeout: 5000 });
    }
    assert.ok(away.heard.some((i) => i.type === 'presence' && i.user_id === second.user.id));
    assert.ok(away.polls.includes(String(room.id)), 'it watches the big room now');
  } finally {
    for (const stop of stops) stop();
  }
  await ownerContext.close();
  await away.context.close();
});

test('the shared worker watches the rooms of all tabs of a browser', async () => {
  const tag = unique();
  const owner = await env.server.user(`ow${tag}`);
  const members = [];
  for (const n of [1, 2, 3]) members.push(await env.server.user(`m${n}${tag}`));
  const room = await bigRoom(owner, members);
  const notes = await owner.createRoom(`notes ${tag}`);

  // One tab has the big room open, a second (the last to open a room)
  // another: the one poll they share still watches the big room.
  const context = await newContext(env.browser);
  const big = await context.newPage();
  await loginInUi(big, env.server.base, owner.user.username);
  await openRoomInUi(big, room.title);
  await big.locator('#room-online', { hasText: count(1) }).waitFor();
  const small = await context.newPage();
  await small.goto(`${env.server.base}/#/rooms/${notes.id}`);
  await small.locator('.room-header h2', { hasText: notes.title }).waitFor();
  await small.locator('#connection[data-state="connected"]').waitFor();
  // Long enough for the server to forget a watch of only the last tab's room.
  await pause(WATCH_LINGERS_MS);

  const stop = members[0].subscribe({});
  try {
    await big.locator('#room-online', { hasText: count(2) }).waitFor({ timeout: 5000 });
    await big.locator(`.member[data-user="${members[0].user.id}"] .dot.online`).waitFor();
    // The big room's tab closes: the other's poll no longer watches it,
    // and when it opens the room, it reads the count and watches anew.
    await big.close();
    await small.locator('.room', { hasText: room.title }).click();
    await small.locator('#room-online', { hasText: count(2) }).waitFor({ timeout: 5000 });
    const later = members[1].subscribe({});
    try {
      await small.locator('#room-online', { hasText: count(3) }).waitFor({ timeout: 5000 });
      await small.locator(`.member[data-user="${members[1].user.id}"] .dot.online`).waitFor();
    } finally {
      later();
    }
  } finally {
    stop();
  }
  await context.close();
});

test("a big room's header count follows room_online, and is read again when the room opens", async () => {
  const tag = unique();
  const owner = await env.server.user(`ow${tag}`);
  const members = [];
  for (const n of [1, 2, 3]) members.push(await env.server.user(`m${n}${tag}`));
  const room = await bigRoom(owner, members);
  const notes = await owner.createRoom(`notes ${tag}`);

  // No presence reaches the page: what it knows of who is online in the
  // big room comes from room_online (and, while `deaf`, from nothing: as
  // for a page no longer watching it, whatever the server lingers).
  let deaf = false;
  const drop = (item) => item.type === 'presence' || (deaf && item.type === 'room_online');
  const { context, page, heard } = await pageWithOwnStream(owner.user.username, { drop });
  const listed = page.locator('#sidebar .room', { hasText: room.title });
  await openRoomInUi(page, room.title);
  await page.locator('#room-online', { hasText: count(1) }).waitFor();
  await page.locator('#connection[data-state="connected"]').waitFor();
  // The member list is read before anyone comes online: read later, it
  // would know them from the server, not from presence.
  await page.locator(`.member[data-user="${members[0].user.id}"]`).waitFor();
  const stops = [members[0].subscribe({})];
  try {
    await page.locator('#room-online', { hasText: count(2) }).waitFor({ timeout: 5000 });
    await listed.getByText(count(2)).waitFor();
    assert.ok(heard.some((i) => i.type === 'room_online' && i.room_id === room.id && i.online_count === 2));
    assert.equal(await page.locator(`.member[data-user="${members[0].user.id}"] .dot.online`).count(), 0,
      'no presence came through: the member list alone does not know');

    // Another room open, someone comes online unheard; the big room,
    // opened again, shows the count of now, not the one last heard.
    await openRoomInUi(page, notes.title);
    deaf = true;
    stops.push(members[1].subscribe({}));
    await pause(1500);
    assert.equal(await listed.getByText(count(2)).count(), 1, 'the page heard nothing of it');
    deaf = false;
    await openRoomInUi(page, room.title);
    await page.locator('#room-online', { hasText: count(3) }).waitFor({ timeout: 5000 });
    await page.locator(`.member[data-user="${members[1].user.id}"] .dot.online`).waitFor();
    await listed.getByText(count(3)).waitFor();
  } finally {
    for (const stop of stops) stop();
  }
  await context.close();
});
