// What the user typed and has not sent, per room, kept across reloads in
// the browser's storage (the tab's only, when embedded). Keys name the
// user as well as the room, so another person signing in on the same
// browser never sees it, and logging out forgets every draft of the user.
// A draft is kept with its mentions as `<@id>` tokens, so the people it
// names are still named after a reload; the composer shows them as
// `@Name` (attention.js's fromTokens and toTokens).

import { fromTokens, toTokens } from './attention.js';
import { nameOf } from './people.js';
import { state, storage } from './session.js';

const PREFIX = 'natter.draft.';
const keyOf = (userId, roomId) => `${PREFIX}${userId}.${roomId}`;

/**
 * The draft of `roomId`: `{ text, mentions }`, the composer's text and
 * the mentions picked into it (the same object while the page lasts, so
 * the mention list adds to it). One read from storage keeps `tokens`
 * until it is typed in: its names are worked out again each time, as
 * the page learns them (a member list loads after the composer shows).
 */
export function draftOf(roomId) {
  let draft = state.drafts.get(roomId);
  if (!draft) {
    let tokens = '';
    try {
      tokens = state.me ? storage.getItem(keyOf(state.me.id, roomId)) || '' : '';
    } catch {
      // Storage refused: no draft was kept.
    }
    draft = { text: '', mentions: [], tokens };
    state.drafts.set(roomId, draft);
  }
  if (draft.tokens !== undefined) Object.assign(draft, fromTokens(draft.tokens, (id) => nameOf(roomId, id)));
  return draft;
}

/** Keeps (or, when empty, forgets) what the composer of `roomId` holds. */
export function setDraft(roomId, text) {
  const draft = draftOf(roomId);
  delete draft.tokens;
  draft.text = text;
  if (!text) state.drafts.delete(roomId);
  if (!state.me) return;
  try {
    if (text) storage.setItem(keyOf(state.me.id, roomId), toTokens(text, draft.mentions));
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
