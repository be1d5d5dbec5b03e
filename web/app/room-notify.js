// Each room's notification level ('all', 'mentions', 'none'; by default
// everything in a direct conversation, mentions in a group): a choice in
// the room header, saved on the server (so every device obeys it; other
// sessions hear of it on the stream), and the rule desktop notifications
// follow (attention.js's shouldNotify).

import { el } from './render.js';
import { t } from './i18n.js';
import { levelOf, shouldNotify } from './attention.js';
import { setLevel } from './state.js';
import { client, errorText, redraw, state } from './session.js';

const LEVELS = [['all', 'notifyAll'], ['mentions', 'notifyMentions'], ['none', 'notifyNone']];

/** Whether a new message of the stream may show a desktop notification:
 *  its room's level says; null for a room not listed yet, whose kind
 *  and level the next room list tells (a new direct conversation's
 *  first message notifies, a group's only if it names the user). */
export function notificationWanted(event) {
  const room = state.rooms.get(event.room_id);
  return room ? shouldNotify(room, event, state.me?.id) : null;
}

/** The header's choice for `room`: a labelled select, saved as it
 *  changes; a refusal puts the choice back and says why. */
export function notifyChoice(room) {
  const select = el('select', { id: 'room-notify', className: 'room-notify', 'aria-describedby': 'room-notify-error' },
    LEVELS.map(([level, key]) => el('option', { value: level, textContent: t(key) })));
  select.value = levelOf(room);
  const error = el('span', { id: 'room-notify-error', className: 'form-error room-notify-error', role: 'alert' });
  select.onchange = async () => {
    const level = select.value;
    const before = levelOf(room);
    error.textContent = '';
    select.disabled = true;
    try {
      const saved = await client.setNotifications(room.id, level);
      const listed = state.rooms.get(room.id);
      if (listed) setLevel(state, listed, saved);
      room.notifications = saved;
    } catch (e) {
      room.notifications = before;
      error.textContent = errorText(e);
    } finally {
      select.disabled = false;
      select.value = levelOf(state.rooms.get(room.id) ?? room);
      redraw.sidebar();
    }
  };
  return el('span', { className: 'room-notify-wrap' },
    el('label', { for: 'room-notify', className: 'room-notify-label' },
      bellIcon(),
      el('span', { className: 'visually-hidden' }, t('notifyLabel'))),
    select,
    error,
  );
}

/** A bell, drawn (an emoji font may be missing); decoration only. */
function bellIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  for (const [k, v] of Object.entries({ viewBox: '0 0 24 24', width: '18', height: '18', 'aria-hidden': 'true', class: 'bell' })) {
    svg.setAttribute(k, v);
  }
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', 'M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1z');
  path.setAttribute('fill', 'currentColor');
  svg.append(path);
  return svg;
}

/** Another session changed the open room's level: the header follows. */
export function refreshNotifyChoice(changes) {
  const select = document.getElementById('room-notify');
  const room = state.rooms.get(state.activeRoomId);
  if (!select || !room || !changes.notifications.has(room.id) || select.disabled) return;
  select.value = levelOf(room);
}
