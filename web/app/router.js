// Where the user is, in the address, so reload, back/forward and a shared
// link open the same place: `#/` (or no fragment) the conversation list,
// `#/rooms/<id>` a conversation, `#/rooms/<id>/members` its member list
// (a pane of its own at phone width). Opening a room pushes a history
// entry; the back arrow goes up one level, back in history when that is
// where the user came from. Embedded, the host page's history is not
// ours: the widget only replaces its own entry, a room panel stays put.

import { openRoom, showRoomList } from './conversation.js';
import { showMembersPane } from './room-header.js';
import { embed, state } from './session.js';

/** The route of a fragment: `{ roomId, members }`. */
export function parseRoute(hash = location.hash) {
  const match = /^#\/rooms\/(\d{1,15})(\/members)?\/?$/.exec(hash);
  if (!match) return { roomId: null, members: false };
  return { roomId: Number(match[1]), members: Boolean(match[2]) };
}

/** The fragment of a route. */
export function routeHash({ roomId = null, members = false } = {}) {
  return roomId === null ? '#/' : `#/rooms/${roomId}${members ? '/members' : ''}`;
}

const currentHash = () => routeHash(parseRoute());

/**
 * Puts `route` in the address: a new history entry, or in place of the
 * current one with `replace` (a redirect, a room just left). Each entry
 * remembers the one before it, for the back arrow.
 */
export function navigate(route, { replace = false } = {}) {
  if (embed?.mode === 'room') return;
  const hash = routeHash(route);
  const url = location.pathname + location.search + hash;
  if (hash === currentHash()) return;
  if (replace || embed) {
    history.replaceState({ natter: { prev: history.state?.natter?.prev ?? null } }, '', url);
  } else {
    history.pushState({ natter: { prev: currentHash() } }, '', url);
  }
}

/**
 * The back arrow: from the member list to its room, from a room to the
 * list. Returns the route to show now, or null when going back in
 * history (the `hashchange` that follows shows it).
 */
export function goUp() {
  const { roomId, members } = parseRoute();
  const target = members ? { roomId, members: false } : { roomId: null, members: false };
  if (!embed && history.state?.natter?.prev === routeHash(target)) {
    history.back();
    return null;
  }
  navigate(target);
  return target;
}

/** Calls `show(route)` whenever the address changes by the user's hand:
 *  back, forward, a link, an edited fragment (pushState fires nothing). */
export function onRouteChange(show) {
  if (embed?.mode === 'room') return;
  addEventListener('hashchange', () => show(parseRoute()));
}

/** Shows what `route` names: the list, a room, or a room's member list. */
export function showRoute(route) {
  if (route.roomId === null) {
    if (state.activeRoomId !== null) showRoomList();
    return;
  }
  if (route.roomId !== state.activeRoomId) openRoom(route.roomId, { route: null });
  showMembersPane(route.members);
}
