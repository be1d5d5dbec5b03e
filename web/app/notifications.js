// Desktop notifications: asked for only when the user clicks, shown for
// others' new messages while the page is hidden (one per room; one of a
// room not listed yet waits for the room list to say how it notifies),
// and closed again when their message is deleted or the session ends.

import { el } from './render.js';
import { t } from './i18n.js';
import { notificationWanted } from './room-notify.js';
import { plainMentions } from './mentions.js';

/** The notification each room shows (one per room: its tag), by seq. */
const shownNotifications = new Map();
/** New messages of rooms not listed yet, `{ event, at }`, until the room
 *  list says how their rooms notify (a minute at most). */
let held = [];
const HOLD_MS = 60_000;

/** Shows a new message of someone else's while the page is hidden, if
 *  the room's notification level ('all', 'mentions', 'none') wants it. */
export function notify(event) {
  if (!document.hidden || typeof Notification !== 'function' || Notification.permission !== 'granted') return;
  const wanted = notificationWanted(event);
  if (wanted === null) held.push({ event, at: Date.now() });
  if (!wanted) return;
  // Text only: the notification API shows strings, never markup.
  const body = plainMentions(event.room_id, event.text);
  const shown = new Notification(t('newMessageFrom', { name: event.sender_name }), { body, tag: `room-${event.room_id}` });
  shownNotifications.set(event.room_id, { seq: event.seq, shown });
}

/** The room list was read: held messages are decided with their rooms'
 *  real levels (a list asked for before the room was made may not have
 *  it yet: those wait for the next). */
export function notifyHeld() {
  const now = Date.now();
  const waiting = held.filter(({ at }) => now - at < HOLD_MS);
  held = waiting.filter(({ event }) => notificationWanted(event) === null);
  for (const { event } of waiting) if (notificationWanted(event) !== null) notify(event);
}

/** A deleted message's text does not stay on screen in a notification. */
export function forgetNotification(roomId, seq) {
  held = held.filter(({ event }) => event.room_id !== roomId || event.seq !== seq);
  const entry = shownNotifications.get(roomId);
  if (entry?.seq !== seq) return;
  entry.shown.close();
  shownNotifications.delete(roomId);
}

/** The session ended: what it showed of its messages closes, and what
 *  waited is dropped. */
export function closeNotifications() {
  held = [];
  for (const { shown } of shownNotifications.values()) shown.close();
  shownNotifications.clear();
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
