// The conversation list (with unread badges and a preview of each room's
// last message as it stands now), the new-room form, the public rooms,
// and the page title's unread count.

import { replaceCodes } from './emoticons.js';
import { el } from './render.js';
import { t } from './i18n.js';
import { tellParent } from './embed.js';
import { loadRooms } from './loads.js';
import { openRoom } from './conversation.js';
import { joinAndOpen } from './no-room.js';
import { roomTitle } from './people.js';
import { plainMentions } from './mentions.js';
import { typingPreview } from './typing.js';
import { client, errorText, safely, state } from './session.js';

export function renderTitle() {
  let unread = 0;
  for (const room of state.rooms.values()) unread += room.unread_count;
  document.title = unread > 0 ? `(${unread}) ${t('appName')}` : t('appName');
  tellParent({ type: 'natter:unread', count: unread });
}

/** The last message's preview: edited text as it is now, or that it was deleted. */
function preview(last) {
  if (!last) return el('span', { className: 'preview' });
  if (last.deleted) {
    return el('span', { className: 'preview' }, `${last.sender_name}: `, el('em', { className: 'deleted' }, t('messageDeleted')));
  }
  // Text only, links too: a link inside the room's button would be a
  // control inside a control.
  return el('span', { className: 'preview' }, replaceCodes(`${last.sender_name}: ${plainMentions(last.room_id, last.text)}`));
}

export function renderSidebar() {
  const node = document.getElementById('sidebar');
  if (!node) return;
  const rooms = [...state.rooms.values()];
  const list = el('ul', { className: 'room-list' },
    rooms.map((room) => el('li', {},
      el('button', {
        type: 'button',
        className: 'room' + (room.id === state.activeRoomId ? ' active' : ''),
        'aria-current': room.id === state.activeRoomId ? 'true' : undefined,
        'data-room': room.id,
        onclick: () => safely(openRoom(room.id)),
      },
        el('span', { className: 'room-title' }, roomTitle(room)),
        room.mention_count > 0
          ? el('span', { className: 'mention-badge' },
            el('span', { 'aria-hidden': 'true' }, `@${room.mention_count}`),
            el('span', { className: 'visually-hidden' }, t('mentionCount', { count: room.mention_count })))
          : null,
        room.unread_count > 0
          ? el('span', { className: 'badge' },
            el('span', { 'aria-hidden': 'true' }, String(room.unread_count)),
            el('span', { className: 'visually-hidden' }, t('unread', { count: room.unread_count })))
          : null,
        typingPreview(room.id) ?? preview(room.last_message),
        room.kind === 'group' ? el('span', { className: 'online-count' }, t('online', { count: room.online_count })) : null,
      ),
    )),
  );
  // A redraw (any event may cause one) keeps the keyboard on the same room.
  const focused = node.contains(document.activeElement) ? document.activeElement.dataset.room : undefined;
  // Only the list is redrawn: the forms below keep what is typed in them.
  node.replaceChildren(rooms.length ? list : el('p', { className: 'empty' }, t('noRooms')));
  if (focused !== undefined) node.querySelector(`.room[data-room="${CSS.escape(focused)}"]`)?.focus({ preventScroll: true });
}

export function newRoomForm() {
  const title = el('input', { id: 'new-room-title', name: 'title', maxLength: 100, required: true, placeholder: t('roomTitle') });
  // defaultChecked too: form.reset() after a room is created goes back to it.
  const isPublic = el('input', { id: 'new-room-public', type: 'checkbox', checked: true, defaultChecked: true });
  const error = el('p', { className: 'form-error', role: 'alert' });
  const form = el('form', { className: 'new-room', 'aria-label': t('newRoom') },
    el('label', { for: 'new-room-title', className: 'visually-hidden' }, t('roomTitle')),
    title,
    el('label', { className: 'check' }, isPublic, t('publicRoom')),
    el('button', { type: 'submit' }, t('create')),
    error,
  );
  form.onsubmit = async (event) => {
    event.preventDefault();
    try {
      const room = await client.createRoom(title.value, { visibility: isPublic.checked ? 'public' : 'private' });
      form.reset();
      error.textContent = '';
      details.open = false;
      await loadRooms();
      await openRoom(room.id);
    } catch (e) {
      error.textContent = errorText(e);
    }
  };
  const details = el('details', { className: 'panel new-room-panel' }, el('summary', {}, t('newRoom')), form);
  return details;
}

export function publicRoomsSection() {
  const list = el('ul', { className: 'public-list' });
  const details = el('details', { className: 'panel public-rooms-panel' }, el('summary', {}, t('publicRooms')), list);
  // Refilled whenever it opens and after a join, so a room just joined
  // shows as joined.
  const refresh = async () => {
    if (!details.open) return;
    const rooms = await client.publicRooms().catch(() => []);
    list.replaceChildren(
      ...(rooms.length ? rooms.map((room) => el('li', {},
        el('span', {}, room.title),
        state.rooms.has(room.id)
          ? el('span', { className: 'muted' }, t('joined'))
          : el('button', {
            type: 'button', textContent: t('join'),
            onclick: () => safely(joinAndOpen(room.id).then(refresh)),
          }),
      )) : [el('li', { className: 'muted' }, t('noPublicRooms'))]),
    );
  };
  details.ontoggle = refresh;
  return details;
}
