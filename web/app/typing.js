// Typing notices: telling the open room that the user types (throttled by
// attention.js's TypingThrottle: at once, then at most every 3 s; `false`
// when the composer is emptied without sending), and showing who else
// types: a line above the composer of the open conversation, and in place
// of the preview in the room list. A notice ends when it expires, at once
// on `typing: false`, and when its author's message arrives (state.js).

import { el } from './render.js';
import { t } from './i18n.js';
import { TypingThrottle, nextExpiry, pruneTyping, typersOf, typingWords } from './attention.js';
import { nameOf } from './people.js';
import { client, redraw, state } from './session.js';

let throttle = new TypingThrottle();
let expiryTimer = null;

/** The composer of `roomId` changed: say so to the room if it is time
 *  (a failed notice matters too little to report). */
export function typingInput(roomId, text) {
  const say = throttle.input(roomId, text, Date.now());
  if (say) client.typing(roomId, say === 'start').catch(() => {});
}

/** A message was sent: the server ends the notice itself, and the next
 *  keystroke announces again at once. */
export function typingSent(roomId) {
  throttle.sent(roomId);
}

/** The session ended: its throttle and timer go (the next user's first
 *  keystroke announces at once). */
export function forgetTyping() {
  throttle = new TypingThrottle();
  clearTimeout(expiryTimer);
  expiryTimer = null;
}

/** Who types in `roomId` now, in words ("Li Lei is typing…"), or ''. */
export function typingText(roomId) {
  const words = typingWords(typersOf(state.typing, roomId, Date.now()).map((id) => nameOf(roomId, id)));
  return words ? t(...words) : '';
}

/** The line above the composer that says who types (empty when nobody
 *  does; its height is kept, so the messages do not jump). */
export function typingIndicator(roomId) {
  return el('div', {
    id: 'typing', className: 'typing', 'aria-live': 'polite', 'data-room': roomId,
  }, typingText(roomId));
}

/** The room list's row says who types instead of the last message. */
export function typingPreview(roomId) {
  const text = typingText(roomId);
  return text ? el('span', { className: 'preview typing-preview' }, text) : null;
}

/** Member names just arrived (a room's list, a page of it): a notice
 *  that came first and said "someone" can now say who. */
export function namesArrived(roomId) {
  if (state.typing.has(roomId)) showTyping();
}

/**
 * Redraws the notices in place (the open room's line, the room list) and
 * looks again when the next one expires. Called after a batch that
 * changed them, and by its own timer.
 */
export function showTyping() {
  clearTimeout(expiryTimer);
  expiryTimer = null;
  const now = Date.now();
  pruneTyping(state.typing, now);
  const line = document.getElementById('typing');
  if (line) {
    const text = typingText(Number(line.dataset.room));
    if (line.textContent !== text) line.textContent = text;
  }
  redraw.sidebar();
  const next = nextExpiry(state.typing);
  if (next !== null) expiryTimer = setTimeout(showTyping, Math.max(50, next - now + 20));
}
