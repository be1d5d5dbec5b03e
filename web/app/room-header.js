// The open room's header: its title (which gets the space), how many of
// its members are online (kept current as presence changes, like the
// member list, or in a big room as the stream counts them: room_online),
// the member list's button (at phone width a pane of its
// own, `#/rooms/<id>/members`) and Leave, which asks first. At phone
// width the two buttons show as icons, with their words for screen readers.

import { el } from './render.js';
import { t } from './i18n.js';
import { dropTimeline } from './state.js';
import { isComplete } from './member-pages.js';
import { confirmDialog } from './dialog.js';
import { loadRooms } from './loads.js';
import { roomTitle } from './people.js';
import { goUp, navigate } from './router.js';
import { closeRoom } from './conversation.js';
import { notifyChoice } from './room-notify.js';
import { client, redraw, safely, state } from './session.js';

/** A button with an icon and a word; at phone width only the icon shows. */
function iconButton(className, icon, label, onclick, attributes = {}) {
  return el('button', { type: 'button', className: `${className} icon-button`, onclick, ...attributes },
    el('span', { className: 'icon', 'aria-hidden': 'true' }, icon),
    el('span', { className: 'label' }, label),
  );
}

/** The header of `room`, the open conversation. */
export function roomHeader(room) {
  return el('header', { className: 'room-header' },
    el('div', { className: 'room-heading' },
      el('h2', {}, roomTitle(room)),
      room.kind === 'group' ? el('span', { className: 'online-count', id: 'room-online' }, onlineText(room)) : null,
    ),
    notifyChoice(room),
    iconButton('members-toggle', '👥', t('members'), () => {
      if (membersShown()) {
        const route = goUp();
        if (route) showMembersPane(false);
        return;
      }
      navigate({ roomId: room.id, members: true });
      showMembersPane(true);
      document.getElementById('members')?.focus({ preventScroll: true });
    }, { 'aria-expanded': String(membersShown()) }),
    room.kind === 'group' ? iconButton('leave', '🚪', t('leave'), () => safely(leave(room))) : null,
  );
}

function onlineText(room) {
  return t('online', { count: onlineCount(room) });
}

/** Online members: a big room's count as the stream tells it
 *  (room_online), else from the member list if it is all loaded (it
 *  follows presence as it changes), else the count the server last said
 *  (the room list, a page of members). */
export function onlineCount(room) {
  const list = state.memberLists.get(room.id);
  if (room.onlineChange || !isComplete(list)) return room.online_count;
  return list.members.filter((m) => state.presence.get(m.id)).length;
}

/** Redraws the header's online count in place: someone came or went. */
export function refreshOnlineCount() {
  const node = document.getElementById('room-online');
  const room = state.rooms.get(state.activeRoomId);
  if (node && room) node.textContent = onlineText(room);
}

export function membersShown() {
  return Boolean(document.getElementById('layout')?.classList.contains('show-members'));
}

/** Shows (or hides) the member list as its own pane (phone widths). */
export function showMembersPane(on) {
  document.getElementById('layout')?.classList.toggle('show-members', on);
  document.querySelector('.members-toggle')?.setAttribute('aria-expanded', String(on));
}

/** The open room was left (here, or in another session, heard on the
 *  stream): it closes, and Back must not lead into a room the user is no
 *  longer in. */
export function closeLeftRoom() {
  closeRoom();
  navigate({ roomId: null }, { replace: true });
  redraw.main();
}

/** Leaves the room once the user says so in a dialog. */
async function leave(room) {
  const sure = await confirmDialog({
    title: t('leaveTitle', { title: roomTitle(room) }),
    text: t('leaveText'),
    confirm: t('leave'),
  });
  if (!sure) return;
  await client.leaveRoom(room.id);
  dropTimeline(state, room.id);
  if (state.activeRoomId === room.id) closeLeftRoom();
  await loadRooms();
  redraw.main();
  document.querySelector('#sidebar .room, .sidebar summary')?.focus();
}
