// The "New messages" line of the open room: where its unread messages
// began when it was opened (after the room list's read marker), kept in
// place while the room stays open, and scrolled to once (older pages read
// first when it is further back). Marking read waits until then.

import { el } from './render.js';
import { t } from './i18n.js';
import { timelineOf } from './state.js';
import { loadOlder } from './loads.js';
import { roomSignal, state } from './session.js';

/** Where the line goes: after seq `after`, the read marker when the room
 *  opened (null: nothing was unread; undefined: not known until the room
 *  list is), and whether it was scrolled to. */
let unread = null;

/** Another room opens, or none: its line is worked out afresh. */
export function forgetUnreadLine() {
  unread = null;
}

/** The line's list item (not role="separator", which hides its words
 *  from screen readers). */
export function unreadDivider() {
  return el('li', { id: 'unread-divider', className: 'unread-divider' },
    el('span', {}, t('newMessages')));
}

/** Whether the open room is yet to be scrolled to its line: reading it
 *  (the read marker) waits for that. */
export function unreadLineAhead() {
  const line = unreadLine();
  return Boolean(line && line.after !== null && !line.scrolled);
}

/** The open room's unread line, worked out once its listing is known. */
export function unreadLine() {
  const room = state.rooms.get(state.activeRoomId);
  if (!room) return null;
  if (unread?.roomId !== room.id) unread = { roomId: room.id, after: undefined, scrolled: false };
  if (unread.after === undefined) unread.after = room.unread_count > 0 ? (room.read_seq ?? 0) : null;
  return unread;
}

/**
 * Scrolls the open room to its "New messages" line, once: at the top of
 * the list, with older pages read first if the line is further back.
 * `reached()` runs once it is there: reading the room waited for it. An
 * older page that cannot be read counts as there, the list left where it
 * is (the line is reached no other way: the room would never be read).
 */
export function placeUnread(reached = () => {}) {
  const line = unreadLine();
  if (!line || line.after === null || line.scrolled) return;
  const roomId = line.roomId;
  const timeline = timelineOf(state, roomId);
  // Its first page is still on the way.
  if (!timeline || timeline.hasMore === null) return;
  // Read far enough back for the first unread message (ten pages at most).
  if (timeline.hasMore && (timeline.items[0]?.seq ?? 0) > line.after && (line.pages ?? 0) < 10) {
    line.pages = (line.pages ?? 0) + 1;
    const signal = roomSignal();
    const again = () => {
      if (!signal.aborted && unread === line) placeUnread(reached);
    };
    loadOlder(roomId, signal).then(again, () => {
      if (signal.aborted || unread !== line) return;
      line.scrolled = true;
      reached();
    });
    return;
  }
  line.scrolled = true;
  const list = document.getElementById('messages');
  const divider = document.getElementById('unread-divider');
  if (list && divider) list.scrollTop += divider.getBoundingClientRect().top - list.getBoundingClientRect().top - 8;
  reached();
}
