// "Seen" in a direct conversation: under the user's own last message once
// the other person has read up to it (their read receipts: the room
// list's `peer_read_seq`, then the stream's `read_receipt`), as
// Messenger and iMessage show it. Never in group rooms, and not at all
// when the server keeps receipts private (`peer_read_seq: null`).

import { el } from './render.js';
import { t } from './i18n.js';
import { seenSeq } from './attention.js';
import { timelineOf } from './state.js';
import { state } from './session.js';

/** Puts "Seen" under the right message of the open room's list (and
 *  takes it from any other): after a redraw, a receipt, an edit. */
export function showSeen() {
  const list = document.getElementById('messages');
  const roomId = state.activeRoomId;
  if (!list || roomId === null) return;
  const room = state.rooms.get(roomId);
  const seq = seenSeq(room, timelineOf(state, roomId)?.items || [], state.me?.id);
  for (const mark of list.querySelectorAll('.seen')) {
    if (mark.closest('li')?.dataset.seq !== String(seq)) mark.remove();
  }
  if (seq === null) return;
  const bubble = list.querySelector(`li.message[data-seq="${seq}"] .bubble`);
  if (bubble && !bubble.querySelector('.seen')) bubble.append(el('div', { className: 'seen' }, t('seen')));
}
