// The member list of the open room: how many are in it and online, who
// they are (a page at a time: a room may have thousands), a search by
// name, and a button to message each of them directly. The pane's frame
// (the search box, "Show more") is built once per room, so the redraws
// that presence brings never take the keyboard or what is typed away.

import { el, safeImage } from './render.js';
import { avatarImage, generatedAvatar } from './people.js';
import { language, t } from './i18n.js';
import { loadMoreMembers, loadRooms, loadingMore, searchMembers } from './loads.js';
import { isComplete, nameMatches } from './member-pages.js';
import { onlineCount } from './room-header.js';
import { openRoom } from './conversation.js';
import {
  childController, client, errorText, isAbort, roomSignal, safely, state,
} from './session.js';

/** How long the search waits after the last key before it asks. */
const SEARCH_DEBOUNCE_MS = 250;

/** The pane drawn now: its room, language and parts, and its search
 *  (the text asked for, the timer and the request on the way). */
let pane = null;

export function renderMembers() {
  const node = document.getElementById('members');
  if (!node) return;
  const roomId = state.activeRoomId;
  const list = roomId === null ? undefined : state.memberLists.get(roomId);
  if (!list) {
    endSearch();
    pane = null;
    node.replaceChildren();
    return;
  }
  if (!pane || pane.roomId !== roomId || pane.lang !== language() || !node.contains(pane.list)) {
    // A new language redraws the pane; what was typed stays.
    const typed = pane?.roomId === roomId ? pane.input.value : '';
    endSearch();
    pane = buildPane(node, roomId, typed);
    if (typed.trim()) search(typed);
  }
  draw(list);
}

/** The members the pane shows: everyone loaded, or what the search
 *  found (a list all loaded is searched here, without asking; while a
 *  new search is on its way, the last one's results stay). */
function shown(list) {
  const q = pane.asked;
  if (!q) return list;
  if (isComplete(list)) return { ...list, q, members: list.members.filter((m) => nameMatches(m.display_name, q)) };
  const found = state.memberSearch;
  return found?.roomId === list.roomId ? found : list;
}

function buildPane(node, roomId, typed) {
  const heading = el('h2', { id: 'members-heading' });
  const input = el('input', {
    id: 'member-search', type: 'search', className: 'member-search', autocomplete: 'off', maxLength: 64,
    placeholder: t('memberSearchHint'), value: typed, 'aria-describedby': 'member-status',
  });
  const status = el('p', { id: 'member-status', className: 'member-status muted', role: 'status' });
  const list = el('ul', { className: 'member-list', 'aria-labelledby': 'members-heading' });
  const more = el('button', { type: 'button', className: 'show-more', hidden: true, textContent: t('showMore') });
  const parts = { roomId, lang: language(), heading, input, status, list, more, asked: '', timer: null, controller: null, error: '' };
  input.addEventListener('input', () => {
    clearTimeout(parts.timer);
    // A list all loaded is searched at once; else the server is asked
    // once the typing pauses.
    const list = state.memberLists.get(roomId);
    if (!input.value.trim() || isComplete(list)) search(input.value);
    else parts.timer = setTimeout(() => search(input.value), SEARCH_DEBOUNCE_MS);
  });
  input.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter') return;
    event.preventDefault();
    clearTimeout(parts.timer);
    search(input.value);
  });
  more.addEventListener('click', () => showMore());
  node.replaceChildren(
    heading,
    el('label', { for: 'member-search', className: 'visually-hidden' }, t('memberSearch')),
    input, status, list, more,
  );
  return parts;
}

/** Asks the server for the members whose name holds `text` (the last
 *  search on its way is dropped); blank goes back to everyone. */
function search(text) {
  if (!pane) return;
  const q = text.trim();
  if (q === pane.asked && !pane.error) return;
  clearTimeout(pane.timer);
  pane.controller?.abort();
  pane.controller = null;
  pane.asked = q;
  pane.error = '';
  const list = state.memberLists.get(pane.roomId);
  if (!q) state.memberSearch = null;
  if (!q || !list || isComplete(list)) {
    redrawPane();
    return;
  }
  const controller = childController(roomSignal());
  pane.controller = controller;
  const mine = pane;
  redrawPane();
  searchMembers(mine.roomId, q, controller.signal).catch((e) => {
    if (!isAbort(e)) mine.error = errorText(e);
  }).finally(() => {
    if (mine.controller !== controller) return;
    mine.controller = null;
    redrawPane();
  });
}

/** Stops the pane's search: its timer, its request, its results. */
function endSearch() {
  if (!pane) return;
  clearTimeout(pane.timer);
  pane.controller?.abort();
  pane.controller = null;
  pane.asked = '';
  state.memberSearch = null;
}

function redrawPane() {
  const list = pane && state.memberLists.get(pane.roomId);
  if (list && pane.roomId === state.activeRoomId) draw(list);
}

/** Reads the next page of what the pane shows. */
function showMore() {
  const list = state.memberLists.get(pane?.roomId);
  const target = list && shown(list);
  if (!target || target.next === null || loadingMore(target)) return;
  const mine = pane;
  const before = new Set(target.members.map((m) => m.id));
  const hadFocus = document.activeElement === mine.more;
  const load = loadMoreMembers(target);
  redrawPane();
  safely(load.finally(() => {
    if (pane !== mine) return;
    redrawPane();
    // The button went with the last page: the keyboard goes on to the
    // first member that page brought.
    if (!hadFocus || !mine.more.hidden) return;
    const first = target.members.find((m) => !before.has(m.id) && m.id !== state.me?.id);
    if (first) mine.list.querySelector(`.member[data-user="${CSS.escape(String(first.id))}"] .dm`)?.focus({ preventScroll: true });
  }));
}

function draw(list) {
  const { heading, input, status, list: ul, more } = pane;
  const room = state.rooms.get(list.roomId);
  const online = room ? onlineCount(room) : list.members.filter((m) => state.presence.get(m.id)).length;
  heading.replaceChildren(
    t(list.count === 1 ? 'memberCountOne' : 'memberCount', { count: list.count }), ' ',
    el('span', { className: 'online-count' }, t('online', { count: online })),
  );
  const showing = shown(list);
  const members = showing.members;
  if (pane.error) status.textContent = pane.error;
  else if (pane.controller || input.value.trim() !== pane.asked) status.textContent = t('searching');
  else if (pane.asked && members.length === 0) status.textContent = t('noMembers');
  else status.textContent = '';
  // Presence redraws the list often: the keyboard stays on the same button.
  const focused = ul.contains(document.activeElement) ? document.activeElement.closest('.member')?.dataset.user : undefined;
  ul.replaceChildren(...members.map(memberRow));
  if (focused !== undefined) ul.querySelector(`.member[data-user="${CSS.escape(focused)}"] .dm`)?.focus({ preventScroll: true });
  const busy = loadingMore(showing);
  more.hidden = showing.next === null;
  more.textContent = busy ? t('loadingMore') : t('showMore');
  more.setAttribute('aria-busy', String(busy));
}

function memberRow(member) {
  const isOnline = Boolean(state.presence.get(member.id));
  const me = member.id === state.me.id;
  return el('li', { className: 'member', 'data-user': member.id },
    avatarImage(safeImage(member.avatar_url, generatedAvatar(member.id)), member.id, 28),
    el('span', { className: 'dot' + (isOnline ? ' online' : ''), role: 'img', 'aria-label': isOnline ? t('presenceOnline') : t('presenceOffline') }),
    el('span', { className: 'name' }, member.display_name, me ? ` (${t('you')})` : ''),
    me ? null : el('button', {
      type: 'button', className: 'dm', textContent: t('message'),
      onclick: () => safely((async () => {
        const room = await client.openDirect(member.id);
        await loadRooms();
        await openRoom(room.id);
      })()),
    }),
  );
}
