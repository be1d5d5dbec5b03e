// What the conversation pane shows when no conversation of the user's is
// open: how to start one when there is none yet, a hint to pick one, a
// wait while the list loads, or — a link or reload naming a room the user
// is not in — a clear word about it (with Join, for a public room). Only
// the full-width layout has a list "on the left" to point to.

import { el } from './render.js';
import { t } from './i18n.js';
import { loadRooms, roomListLoaded } from './loads.js';
import { focusConversation, openRoom, showRoomList } from './conversation.js';
import { navigate } from './router.js';
import { client, embed, roomSignal, safely, state } from './session.js';

/** The pane's content, for `state.activeRoomId` (null, or a room not in the list). */
export function noRoomView() {
  const roomId = state.activeRoomId;
  if (!roomListLoaded()) return [el('p', { className: 'empty center', role: 'status' }, t('loading'))];
  if (roomId !== null) return notMemberView(roomId);
  if (state.rooms.size === 0) return [startHint()];
  return [el('p', { className: 'empty center' },
    el('span', { className: 'wide-only' }, t('selectRoom')),
    el('span', { className: 'narrow-only' }, t('selectRoomNarrow')),
  )];
}

/** No conversations yet: where to start one (the sidebar's forms). */
function startHint() {
  const open = (selector) => () => {
    const details = document.querySelector(selector);
    if (!details) return;
    details.open = true;
    (details.querySelector('input') || details.querySelector('summary'))?.focus();
  };
  return el('div', { className: 'empty center start-hint' },
    el('h2', {}, t('noRoomsTitle')),
    el('p', {}, t('noRoomsHow')),
    el('div', { className: 'start-actions' },
      el('button', { type: 'button', className: 'primary', textContent: t('startCreate'), onclick: open('.panel.new-room-panel') }),
      el('button', { type: 'button', textContent: t('startJoin'), onclick: open('.panel.public-rooms-panel') }),
    ),
  );
}

/** A room the user is not in (or that does not exist). */
function notMemberView(roomId) {
  const join = el('div', { className: 'start-actions' });
  const view = el('div', { className: 'empty center not-member', role: 'alert' },
    el('h2', {}, t('notMemberTitle')),
    el('p', {}, t(embed ? 'notMemberEmbed' : 'notMemberText')),
    join,
  );
  if (embed?.mode === 'room') return [view];
  join.append(el('button', {
    type: 'button', textContent: t('backToList'),
    onclick: () => {
      navigate({ roomId: null });
      showRoomList();
    },
  }));
  // A public room can be joined from here, as from the public list.
  const signal = roomSignal();
  client.publicRooms().then((rooms) => {
    const room = rooms.find((r) => r.id === roomId);
    if (!room || signal.aborted || !view.isConnected) return;
    view.querySelector('p').textContent = t('notMemberPublic', { title: room.title });
    join.prepend(el('button', {
      type: 'button', className: 'primary', textContent: t('join'),
      onclick: () => safely(joinAndOpen(roomId)),
    }));
  }).catch(() => {});
  return [view];
}

/** Joins a public room and opens it, once (the Join of this pane and of
 *  the public list): the room list opens it itself when it is the room
 *  on screen (a link to it), else it opens here. */
export async function joinAndOpen(roomId) {
  await client.joinRoom(roomId);
  if ((await loadRooms()) === roomId) focusConversation();
  else await openRoom(roomId, { route: state.activeRoomId === roomId ? null : 'push' });
}
