// A room of more members than a page of the member pane but not big (the
// server's default `big_room_members`, 200): the page reads its member
// list whole, so the header's online count follows everyone's presence,
// not only that of the first fifty by name.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { loginInUi, newContext, openRoomInUi, serverAndBrowser, unique } from './harness.mjs';

const env = serverAndBrowser({ rateLimits: false });

test("a 60-member room's header counts a member far down the list coming online", async () => {
  const tag = unique();
  const owner = await env.server.user(`own${tag}`, 'Ann Owner');
  const room = await owner.createRoom(`Class ${tag}`, { visibility: 'public' });
  const names = [...Array.from({ length: 58 }, (_, i) => `Pupil ${String(i).padStart(2, '0')}`), 'Zoe Last'];
  const people = [];
  // Two at a time: each registration is a password hash.
  for (let i = 0; i < names.length; i += 2) {
    people.push(...await Promise.all(names.slice(i, i + 2).map(async (name, j) => {
      const client = await env.server.user(`p${i + j}${tag}`, name);
      await client.joinRoom(room.id);
      return client;
    })));
  }
  const zoe = people.find((p) => p.user.display_name === 'Zoe Last');

  const context = await newContext(env.browser);
  const page = await context.newPage();
  const reads = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (request.method() === 'GET' && url.pathname === `/api/v1/rooms/${room.id}/members`) reads.push(url.searchParams.get('limit'));
  });
  await loginInUi(page, env.server.base, `own${tag}`);
  await openRoomInUi(page, room.title);
  // The whole list is there at once: the last by name shows, nothing more to load.
  await page.locator('.member', { hasText: 'Zoe Last' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Show more' }).count(), 0);
  await page.locator('#room-online', { hasText: '1 online' }).waitFor();

  const stop = zoe.subscribe({});
  try {
    await page.locator('.member:has-text("Zoe Last") .dot.online').waitFor({ timeout: 10000 });
    await page.locator('#room-online', { hasText: '2 online' }).waitFor({ timeout: 2000 });
  } finally {
    stop();
  }
  assert.deepEqual(reads, ['500'], 'one read of the whole list');
  await context.close();
});
