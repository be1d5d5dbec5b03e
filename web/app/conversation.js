// The open conversation: its header, the message list (history paged in
// as the user scrolls up, changes redrawn in place, the read marker sent
// for what is on screen), jumping to a quoted message, and the composer.

import { dayKey, el } from './render.js';
import { language, t } from './i18n.js';
import { dropTimeline, itemAt, timelineOf } from './state.js';
import { isOnScreen } from './embed.js';
import { loadLatest, loadMembers, loadOlder, loadRooms } from './loads.js';
import { messageItem, pendingItem } from './message-item.js';
import { roomTitle } from './people.js';
import { composer, refreshComposer } from './composer.js';
import {
  beginRoom, client, errorText, isAbort, redraw, roomSignal, safely, showNotice, state,
} from './session.js';

const GROUP_GAP_MS = 5 * 60 * 1000;
const HIGHLIGHT_MS = 2000;

/** The message shown as the target of a jump, while it is highlighted. */
let highlighted = null;

/** Opens a conversation; whatever the last one was loading stops. */
export async function openRoom(roomId) {
  const signal = beginRoom();
  state.activeRoomId = roomId;
  state.newBelow = false;
  // A newly opened room starts on its messages, not its member list.
  document.getElementById('layout')?.classList.remove('show-members');
  redraw.main();
  try {
    await Promise.all([
      timelineOf(state, roomId) ? null : loadLatest(roomId, signal),
      loadMembers(roomId, signal),
    ]);
  } catch (e) {
    if (signal.aborted) return;
    throw e;
  }
  if (signal.aborted) return;
  renderConversation();
  redraw.members();
  markActiveRead();
}

/** Back to the conversation list (phone widths) or to no room at all. */
export function closeRoom() {
  beginRoom();
  state.activeRoomId = null;
}

export function renderConversation() {
  const node = document.getElementById('conversation');
  if (!node) return;
  const room = state.rooms.get(state.activeRoomId);
  if (!room) {
    node.replaceChildren(el('p', { className: 'empty center' }, t('selectRoom')));
    return;
  }
  const messages = el('ol', {
    id: 'messages', className: 'messages', role: 'log', 'aria-live': 'polite', 'aria-label': roomTitle(room), tabIndex: 0,
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
    el('header', { className: 'room-header' },
      el('h2', {}, roomTitle(room)),
      room.kind === 'group' ? el('span', { className: 'online-count' }, t('online', { count: onlineCount(room.id, room) })) : null,
      el('button', {
        type: 'button', className: 'members-toggle', textContent: t('members'),
        onclick: () => document.getElementById('layout')?.classList.toggle('show-members'),
      }),
      room.kind === 'group'
        ? el('button', {
          type: 'button', className: 'leave', textContent: t('leave'),
          onclick: () => safely((async () => {
            await client.leaveRoom(room.id);
            dropTimeline(state, room.id);
            closeRoom();
            await loadRooms();
            redraw.main();
          })()),
        })
        : null,
    ),
    messages,
    newBelow,
    composer(room),
  );
  renderMessages({ stickToBottom: true });
}

function onlineCount(roomId, room) {
  const members = state.members.get(roomId);
  if (!members) return room.online_count;
  return members.filter((m) => state.presence.get(m.id)).length;
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

function systemText(event) {
  switch (event.type) {
    case 'member_joined': return t('joinedEvent', { name: event.display_name });
    case 'member_left': return t('leftEvent', { name: event.sender_name });
    case 'room_created':
      return event.kind === 'direct'
        ? t('directCreated', { name: event.sender_name })
        : t('createdEvent', { name: event.sender_name, title: event.title });
    case 'room_updated': return t('renamedEvent', { name: event.sender_name, title: event.title });
    default: return '';
  }
}

function dayLabel(ms) {
  const today = new Date();
  const yesterday = new Date(today.getTime() - 86400000);
  if (dayKey(ms) === dayKey(today.getTime())) return t('today');
  if (dayKey(ms) === dayKey(yesterday.getTime())) return t('yesterday');
  return new Date(ms).toLocaleDateString(language());
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
  if (highlighted && highlighted.roomId === roomId && highlighted.seq === event.seq) node.classList.add('highlight');
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
  let previous = null;
  let day = null;
  for (const event of timeline?.items || []) {
    if (dayKey(event.ts) !== day) {
      day = dayKey(event.ts);
      items.push(el('li', { className: 'day', role: 'separator' }, dayLabel(event.ts)));
      previous = null;
    }
    if (event.type !== 'message') {
      items.push(el('li', { className: 'system' }, systemText(event)));
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
  if (stick) list.scrollTop = list.scrollHeight;
  else if (keepPosition) list.scrollTop = topBefore + (list.scrollHeight - heightBefore);
  restoreFocus(list, focus);
  refreshComposer();
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
  refreshComposer();
}

/** Sends the read marker for the last message when the user can see it. */
export function markActiveRead() {
  const roomId = state.activeRoomId;
  const room = state.rooms.get(roomId);
  if (!room || !isOnScreen() || document.hidden || !nearBottom()) return;
  const items = timelineOf(state, roomId)?.items || [];
  const last = items[items.length - 1];
  if (!last || (room.unread_count === 0 && room.read_seq >= last.seq)) return;
  room.unread_count = 0;
  room.read_seq = last.seq;
  redraw.sidebar();
  redraw.title();
  if ((state.readSent.get(roomId) ?? 0) < last.seq) {
    state.readSent.set(roomId, last.seq);
    client.markRead(roomId, last.seq).catch(() => state.readSent.delete(roomId));
  }
}

/**
 * Scrolls to message `seq` and highlights it a moment, reading older
 * pages of history until it is loaded.
 */
export async function jumpToMessage(roomId, seq) {
  const signal = roomSignal();
  while (!signal.aborted && roomId === state.activeRoomId) {
    const node = document.querySelector(`#messages li.message[data-seq="${seq}"]`);
    if (node) {
      highlight(roomId, seq, node);
      return;
    }
    const timeline = timelineOf(state, roomId);
    const oldest = timeline?.items[0]?.seq;
    // Loaded as far back as the original, or as far as history goes.
    if (!timeline || !timeline.hasMore || oldest === undefined || oldest <= seq) return;
    try {
      await loadOlder(roomId, signal);
    } catch (e) {
      if (!isAbort(e)) showNotice(errorText(e));
      return;
    }
    if (timelineOf(state, roomId)?.items[0]?.seq === oldest) return;
  }
}

function highlight(roomId, seq, node) {
  highlighted = { roomId, seq };
  node.classList.add('highlight');
  node.scrollIntoView({ block: 'center' });
  node.focus({ preventScroll: true });
  setTimeout(() => {
    if (highlighted?.roomId !== roomId || highlighted.seq !== seq) return;
    highlighted = null;
    document.querySelector(`#messages li.message[data-seq="${seq}"]`)?.classList.remove('highlight');
  }, HIGHLIGHT_MS);
}
