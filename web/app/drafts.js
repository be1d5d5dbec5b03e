// What the user typed and has not sent, per room, kept across reloads in
// the browser's storage (the tab's only, when embedded). Keys name the
// user as well as the room, so another person signing in on the same
// browser never sees it, and logging out forgets every draft of the user.

import { state, storage } from './session.js';

const PREFIX = 'natter.draft.';
const keyOf = (userId, roomId) => `${PREFIX}${userId}.${roomId}`;

/** The unsent text of `roomId`: typed in this page, else kept from before. */
export function draftOf(roomId) {
  if (state.drafts.has(roomId)) return state.drafts.get(roomId);
  if (!state.me) return '';
  return storage.getItem(keyOf(state.me.id, roomId)) || '';
}

/** Keeps (or, when empty, forgets) the unsent text of `roomId`. */
export function setDraft(roomId, text) {
  if (text) state.drafts.set(roomId, text);
  else state.drafts.delete(roomId);
  if (!state.me) return;
  try {
    if (text) storage.setItem(keyOf(state.me.id, roomId), text);
    else storage.removeItem(keyOf(state.me.id, roomId));
  } catch {
    // Storage full or refused: the draft lives as long as the page.
  }
}

/** Forgets every draft of `userId`: they logged out. */
export function forgetDrafts(userId) {
  const mine = `${PREFIX}${userId}.`;
  for (let i = storage.length - 1; i >= 0; i--) {
    const key = storage.key(i);
    if (key?.startsWith(mine)) storage.removeItem(key);
  }
}
