// Desktop notifications: asked for only when the user clicks, shown for
// others' new messages while the page is hidden (one per room), and
// closed again when their message is deleted.

import { el } from './render.js';
import { t } from './i18n.js';
import { notificationWanted } from './room-notify.js';
import { plainMentions } from './mentions.js';

/** The notification each room shows (one per room: its tag), by seq. */
const shownNotifications = new Map();

/** Shows a new message of someone else's while the page is hidden, if
 *  the room's notification level ('all', 'mentions', 'none') wants it. */
export function notify(event) {
  if (!document.hidden || typeof Notification !== 'function' || Notification.permission !== 'granted') return;
  if (!notificationWanted(event)) return;
  // Text only: the notification API shows strings, never markup.
  const body = plainMentions(event.room_id, event.text);
  const shown = new Notification(t('newMessageFrom', { name: event.sender_name }), { body, tag: `room-${event.room_id}` });
  shownNotifications.set(event.room_id, { seq: event.seq, shown });
}

/** A deleted message's text does not stay on screen in a notification. */
export function forgetNotification(roomId, seq) {
  const entry = shownNotifications.get(roomId);
  if (entry?.seq !== seq) return;
  entry.shown.close();
  shownNotifications.delete(roomId);
}

/** The top bar's button that asks for permission to notify. */
export function notificationButton(redrawShell) {
  if (typeof Notification !== 'function') return null;
  const on = Notification.permission === 'granted';
  return el('button', {
    type: 'button', className: 'notify', 'aria-pressed': String(on),
    textContent: on ? t('notificationsOn') : t('notifications'),
    // Asked only after the user clicks, never on load.
    onclick: async () => {
      await Notification.requestPermission();
      redrawShell();
    },
  });
}
