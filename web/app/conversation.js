// The open conversation: its header (room-header.js), the message list
// (history paged in as the user scrolls up, changes redrawn in place, the
// read marker sent for what is on screen, a "New messages" line where the
// unread ones began when the room opened, an error with Retry if its
// history could not be read), jumping to a quoted message, and the
// composer. Without a room of the user's, no-room.js fills the pane.

import { dayKey, el } from './render.js';
import { t } from './i18n.js';
import { itemAt, timelineOf } from './state.js';
import { isOnScreen } from './embed.js';
import { loadLatest, loadMembers, loadOlder, reloadMembersUntilDone } from './loads.js';
import { isHighlighted, jumpToMessage } from './jump.js';
import {
  forgetUnreadLine, placeUnread, unreadDivider, unreadLine, unreadLineAhead,
} from './unread-line.js';
import {
  dayItem, messageItem, pendingItem, systemItem,
} from './message-item.js';
import { roomTitle } from './people.js';
import { composer, refreshComposer } from './composer.js';
import { typingIndicator } from './typing.js';
import { showSeen } from './seen.js';
import { refreshOnlineCount, roomHeader, showMembersPane } from './room-header.js';
import { noRoomView } from './no-room.js';
import { navigate } from './router.js';
import {
  beginRoom, client, errorText, redraw, roomSignal, state,
} from './session.js';

const GROUP_GAP_MS = 5 * 60 * 1000;

/** The open room's history could not be read: `{ roomId, error }`. */
let problem = null;

/**
 * Opens a conversation; whatever the last one was loading stops. `route`:
 * 'push' a history entry for it, 'replace' the current one, or null (the
 * address already names it). `focus`: give it the keyboard (the composer).
 * `members`: show its member list (the address ends in /members).
 */
export async function openRoom(roomId, { route = 'push', focus = true, members = false } = {}) {
  if (route) navigate({ roomId }, { replace: route === 'replace' });
  const signal = beginRoom();
  if (roomId !== state.activeRoomId) forgetUnreadLine();
  state.activeRoomId = roomId;
  state.newBelow = false;
  problem = null;
  // A newly opened room starts on its messages, unless told otherwise.
  showMembersPane(members);
  redraw.main();
  if (focus) focusConversation();
  // Not (yet) in the room list: no-room.js says why; a reload opens it.
  if (!state.rooms.has(roomId)) return;
  await loadRoom(roomId, signal);
}

/** Reads what a room shows; a failed history read shows with a Retry. */
async function loadRoom(roomId, signal) {
  // The first page unless it is in (an earlier open's read of it stops).
  const loaded = (timelineOf(state, roomId)?.hasMore ?? null) !== null;
  const [history, members] = await Promise.allSettled([
    loaded ? null : loadLatest(roomId, signal),
    loadMembers(roomId, signal),
  ]);
  if (signal.aborted) return;
  if (members.status === 'rejected') reloadMembersUntilDone(roomId);
  else redraw.members();
  if (history.status === 'rejected') {
    problem = { roomId, error: history.reason };
    renderMessages();
    return;
  }
  // Not the whole pane: the composer keeps the keyboard and what is typed.
  renderMessages({ stickToBottom: true });
  placeUnread(markActiveRead);
  refreshOnlineCount();
  markActiveRead();
}

/** Tries the open room's history again if it failed (Retry, or the
 *  connection is back). */
export function retryRoom() {
  const roomId = state.activeRoomId;
  if (problem?.roomId !== roomId || !state.rooms.has(roomId)) return;
  problem = null;
  renderMessages();
  loadRoom(roomId, roomSignal());
}

/** Back to the conversation list (phone widths) or to no room at all. */
export function closeRoom() {
  beginRoom();
  state.activeRoomId = null;
  forgetUnreadLine();
  problem = null;
}

/** Shows the list (the back arrow, a link to `#/`); the keyboard goes to
 *  the room that was open, or the list. */
export function showRoomList() {
  const was = state.activeRoomId;
  closeRoom();
  showMembersPane(false);
  redraw.main();
  const button = document.querySelector(`#sidebar .room[data-room="${was}"]`) || document.querySelector('#sidebar .room');
  button?.focus();
}

/** The keyboard goes to the composer, or (on a touch screen, where that
 *  would open the keyboard, or with no composer) the conversation. */
export function focusConversation() {
  const touch = matchMedia('(pointer: coarse)').matches;
  const target = (!touch && document.getElementById('composer'))
    || document.getElementById('messages') || document.getElementById('conversation');
  target?.focus({ preventScroll: true });
}

export function renderConversation() {
  const node = document.getElementById('conversation');
  if (!node) return;
  const room = state.rooms.get(state.activeRoomId);
  if (!room) {
    node.replaceChildren(...noRoomView());
    return;
  }
  // A redraw (a reconnect, a new language) keeps the keyboard where it was.
  const active = document.activeElement;
  const kept = node.contains(active) && active.id ? { id: active.id, start: active.selectionStart, end: active.selectionEnd } : null;
  // A list (its items are list items; role="log" would take that away
  // and is not allowed on <ol>) that announces what is added to it.
  const messages = el('ol', {
    id: 'messages', className: 'messages', 'aria-live': 'polite', 'aria-label': roomTitle(room), tabIndex: 0,
  });
  messages.onscroll = () => {
    if (messages.scrollTop < 40) loadOlder(room.id).catch(() => {});
    if (nearBottom()) {
      showNewBelow(false);
      markActiveRead();
    }
  };
  const newBelow = el('button', {
    id: 'new-below', type: 'button', className: 'new-below', hidden: !state.newBelow, textContent: t('newBelow'),
    onclick: () => {
      messages.scrollTop = messages.scrollHeight;
      showNewBelow(false);
      markActiveRead();
    },
  });
  node.replaceChildren(
    roomHeader(room),
    messages,
    newBelow,
    typingIndicator(room.id),
    composer(room),
  );
  renderMessages({ stickToBottom: true });
  placeUnread(markActiveRead);
  const again = kept && document.getElementById(kept.id);
  if (again && node.contains(again)) {
    again.focus({ preventScroll: true });
    if (kept.start !== null && kept.start !== undefined && 'selectionStart' in again) {
      again.setSelectionRange(kept.start, kept.end);
    }
  }
}

export function nearBottom() {
  const list = document.getElementById('messages');
  if (!list) return true;
  return list.scrollHeight - list.scrollTop - list.clientHeight < 60;
}

export function showNewBelow(show) {
  state.newBelow = show;
  const button = document.getElementById('new-below');
  if (button) button.hidden = !show;
}

// Redraws keep the keyboard where it was: the same control of the same
// message (or pending message) gets the focus back.
function focusKey(list) {
  const active = document.activeElement;
  if (!active || !list.contains(active)) return null;
  const item = active.closest('li');
  return {
    seq: item?.dataset.seq,
    clientId: item?.dataset.clientId,
    action: active.dataset.action,
    onItem: active === item,
  };
}

function restoreFocus(list, key) {
  if (!key) return;
  const item = key.seq !== undefined
    ? list.querySelector(`li[data-seq="${CSS.escape(key.seq)}"]`)
    : key.clientId !== undefined ? list.querySelector(`li[data-client-id="${CSS.escape(key.clientId)}"]`) : null;
  let target = null;
  if (item && key.onItem) target = item;
  else if (item && key.action) target = item.querySelector(`[data-action="${CSS.escape(key.action)}"]`);
  (target || (item ? null : list))?.focus({ preventScroll: true });
}

const itemOptions = { jump: jumpToMessage };

function itemFor(roomId, event, grouped) {
  const node = messageItem(roomId, event, grouped, itemOptions);
  if (isHighlighted(roomId, event.seq)) node.classList.add('highlight');
  return node;
}

/** Redraws the message list. `keepBottom`: stay at the bottom if there. */
export function renderMessages({ stickToBottom = false, keepPosition = false, keepBottom = false } = {}) {
  const list = document.getElementById('messages');
  const roomId = state.activeRoomId;
  if (!list || roomId === null) return;
  const stick = stickToBottom || (keepBottom && nearBottom());
  const heightBefore = list.scrollHeight;
  const topBefore = list.scrollTop;
  const focus = focusKey(list);
  const timeline = timelineOf(state, roomId);
  const items = [];
  if (timeline?.loadingOlder) items.push(el('li', { className: 'system' }, t('loadingOlder')));
  else if (timeline?.hasMore === false) items.push(el('li', { className: 'system' }, t('beginning')));
  // Before the first page: it is being read, or could not be.
  else if (!timeline || timeline.hasMore === null) items.push(firstPageItem(roomId));
  const line = unreadLine();
  let lineDrawn = !line || line.after === null;
  let previous = null;
  let day = null;
  for (const event of timeline?.items || []) {
    if (!lineDrawn && event.seq > line.after && !(event.type === 'message' && event.sender_id === state.me.id)) {
      lineDrawn = true;
      items.push(unreadDivider());
      previous = null;
    }
    if (dayKey(event.ts) !== day) {
      day = dayKey(event.ts);
      items.push(dayItem(event.ts));
      previous = null;
    }
    if (event.type !== 'message') {
      items.push(systemItem(event));
      previous = null;
      continue;
    }
    const grouped = previous && previous.sender_id === event.sender_id && event.ts - previous.ts < GROUP_GAP_MS;
    items.push(itemFor(roomId, event, grouped));
    previous = event;
  }
  for (const [clientMsgId, pending] of state.pending) {
    if (pending.roomId === roomId) items.push(pendingItem(clientMsgId, pending, itemOptions));
  }
  list.replaceChildren(...items);
  showSeen();
  if (stick) list.scrollTop = list.scrollHeight;
  else if (keepPosition) list.scrollTop = topBefore + (list.scrollHeight - heightBefore);
  restoreFocus(list, focus);
  refreshComposer();
}

/** The first page of a room's history: loading, or why it is not there. */
function firstPageItem(roomId) {
  // The roles sit inside the items: a list item must stay one.
  if (problem?.roomId !== roomId) return el('li', { className: 'system' }, el('span', { role: 'status' }, t('loadingMessages')));
  return el('li', { className: 'load-error' },
    el('div', { role: 'alert' },
      el('p', {}, t('loadFailed'), ' ', errorText(problem.error)),
      el('button', { type: 'button', className: 'retry-load', textContent: t('retry'), onclick: retryRoom }),
    ),
  );
}

/** Redraws in place the messages `changes` says changed (edits,
 *  deletions, reactions, quotes), keeping the scroll position. */
export function showChanges(changes) {
  const roomId = state.activeRoomId;
  const seqs = changes?.changed.get(roomId);
  const list = document.getElementById('messages');
  if (!seqs || !list) return;
  const atBottom = nearBottom();
  const focus = focusKey(list);
  for (const seq of seqs) {
    const node = list.querySelector(`li.message[data-seq="${seq}"]`);
    const message = itemAt(state, roomId, seq);
    if (node && message?.type === 'message') node.replaceWith(itemFor(roomId, message, node.classList.contains('grouped')));
  }
  if (atBottom) list.scrollTop = list.scrollHeight;
  restoreFocus(list, focus);
  showSeen();
  refreshComposer();
}

/** Sends the read marker for the last message when the user can see it. */
export function markActiveRead() {
  const roomId = state.activeRoomId;
  const room = state.rooms.get(roomId);
  if (!room || !isOnScreen() || document.hidden || !nearBottom()) return;
  // Not before the room is scrolled to its unread line.
  if (unreadLineAhead()) return;
  const items = timelineOf(state, roomId)?.items || [];
  const last = items[items.length - 1];
  if (!last || (room.unread_count === 0 && room.read_seq >= last.seq)) return;
  room.unread_count = 0;
  room.mention_count = 0;
  room.read_seq = last.seq;
  redraw.sidebar();
  redraw.title();
  if ((state.readSent.get(roomId) ?? 0) < last.seq) {
    state.readSent.set(roomId, last.seq);
    client.markRead(roomId, last.seq).catch(() => state.readSent.delete(roomId));
  }
}
