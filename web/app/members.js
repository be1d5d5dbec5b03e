// The member list of the open room: who is in it, who is online, and a
// button to message each of them directly.

import { el, safeImage } from './render.js';
import { avatarImage, generatedAvatar } from './people.js';
import { t } from './i18n.js';
import { loadRooms } from './loads.js';
import { openRoom } from './conversation.js';
import { client, safely, state } from './session.js';

export function renderMembers() {
  const node = document.getElementById('members');
  if (!node) return;
  const roomId = state.activeRoomId;
  const members = roomId === null ? null : state.members.get(roomId);
  if (!members) {
    node.replaceChildren();
    return;
  }
  const online = members.filter((m) => state.presence.get(m.id)).length;
  // Presence redraws the list often: the keyboard stays on the same button.
  const focused = node.contains(document.activeElement) ? document.activeElement.closest('.member')?.dataset.user : undefined;
  node.replaceChildren(
    el('h2', {}, t('members'), ' ', el('span', { className: 'online-count' }, t('online', { count: online }))),
    el('ul', { className: 'member-list' },
      members.map((member) => {
        const isOnline = Boolean(state.presence.get(member.id));
        const me = member.id === state.me.id;
        return el('li', { className: 'member', 'data-user': member.id },
          avatarImage(safeImage(member.avatar_url, generatedAvatar(member.id)), member.id, 28),
          el('span', { className: 'dot' + (isOnline ? ' online' : ''), role: 'img', 'aria-label': isOnline ? t('presenceOnline') : t('presenceOffline') }),
          el('span', { className: 'name' }, member.display_name, me ? ` (${t('you')})` : ''),
          me ? null : el('button', {
            type: 'button', className: 'dm', textContent: t('message'),
            onclick: () => safely((async () => {
              const room = await client.openDirect(member.id);
              await loadRooms();
              await openRoom(room.id);
            })()),
          }),
        );
      }),
    ),
  );
  if (focused !== undefined) node.querySelector(`.member[data-user="${CSS.escape(focused)}"] .dm`)?.focus({ preventScroll: true });
}
