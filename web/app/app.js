// The natter web app: where it starts, the session's lifetime (sign-in,
// the event stream, sign-out), the signed-in screen's shell, and the
// wiring of events to state (state.js) and of state to views (sidebar,
// conversation, members, composer). Plain DOM, no framework, no build.

import { NatterError } from '/sdk/natter.js';
import { openEvents } from './events.js';
import { el } from './render.js';
import { has, language, t } from './i18n.js';
import { applyEvents, clearSession, dropTimeline } from './state.js';
import {
  TOKEN_KEY, beginSession, client, embed, endSession, errorText, redraw, root, state, storage,
} from './session.js';
import {
  isOnScreen, listenToHost, scheduleRenewal, showEmbedProblem, signInEmbedded, stopRenewal,
} from './embed.js';
import { languageButton, renderAuth } from './signin.js';
import { reloadAllUntilDone, reloadMembersUntilDone, reloadRoomsSoon, stopReloads } from './loads.js';
import { newRoomForm, publicRoomsSection, renderSidebar, renderTitle } from './sidebar.js';
import {
  closeRoom, markActiveRead, nearBottom, renderConversation, renderMessages, showChanges, showNewBelow,
} from './conversation.js';
import { renderMembers } from './members.js';

Object.assign(redraw, {
  main: renderMain,
  sidebar: renderSidebar,
  title: renderTitle,
  messages: renderMessages,
  changes: showChanges,
  members: renderMembers,
});

/** Stops the event stream, if one runs. */
let stopEvents = null;

// --- start ---------------------------------------------------------------

document.documentElement.lang = language();
listenToHost({
  events: {
    stop: () => {
      const streaming = Boolean(stopEvents);
      stopEvents?.();
      stopEvents = null;
      return streaming;
    },
    start: () => startEvents(),
  },
  onOpen: () => markActiveRead(),
});
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) markActiveRead();
});

if (embed) {
  signInEmbedded().then((ready) => {
    if (ready) resumeSession();
  });
} else if (client.token) {
  resumeSession();
} else {
  showAuth('');
}

/** Starts with the stored token; only a refused token sends the user to
 *  sign-in, a server that cannot be reached is retried. */
function resumeSession() {
  startSession().catch((e) => {
    if (e instanceof NatterError && e.status === 401) {
      showAuth(has(e.code) ? t(e.code) : '');
      return;
    }
    root.replaceChildren(el('main', { className: 'auth' },
      el('h1', { className: 'brand' }, t('appName')),
      el('p', { role: 'alert' }, errorText(e)),
      el('button', { type: 'button', className: 'primary', textContent: t('retry'), onclick: resumeSession }),
    ));
    setTimeout(() => { if (!state.me) resumeSession(); }, 3000);
  });
}

/** The session is over (or never began): its work stops, and the user
 *  signs in again (embedded: on the host site). */
function showAuth(notice) {
  endSession();
  stopReloads();
  stopEvents?.();
  stopEvents = null;
  storage.removeItem(TOKEN_KEY);
  if (embed) {
    stopRenewal();
    return showEmbedProblem(notice || t('embedSignIn'));
  }
  client.token = null;
  clearSession(state);
  state.authError = notice;
  renderAuth(startSession);
}

async function startSession() {
  const me = await client.me();
  beginSession();
  state.me = me;
  state.connection = 'connecting';
  renderMain();
  startEvents();
  if (embed) {
    // When this session ends decides when to ask for the next one.
    client.request('GET', '/api/v1/me/sessions')
      .then(({ sessions }) => scheduleRenewal(sessions.find((s) => s.current)?.expires_at))
      .catch(() => {});
  }
}

/** Opens the event stream for the current session. */
function startEvents() {
  stopEvents = openEvents(client, {
    onReady: () => reloadAllUntilDone(),
    onEvents: (batch) => onEvents(batch),
    onState: (s) => {
      state.connection = s;
      renderConnection();
    },
    // The stream restarts after a resync; onReady then reloads. What the
    // client knew may be ahead of the server's history (a restored
    // backup), so none of it may outrank the reload: the room list and the
    // read markers sent go with the loaded histories.
    onResync: () => {
      dropTimeline(state);
      state.rooms = new Map();
      state.readSent.clear();
    },
    onStop: (code) => showAuth(has(code) ? t(code) : t('unauthenticated')),
  });
}

// --- events --------------------------------------------------------------

/** A batch of the stream: state.js applies it, then each view redraws
 *  what changed and the loads it calls for start. */
function onEvents(batch) {
  const active = state.activeRoomId;
  // A message is seen as it arrives if its room is open, on screen and
  // scrolled to the bottom.
  const seen = (roomId) => roomId === active && isOnScreen() && !document.hidden && nearBottom();
  const changes = applyEvents(state, batch, { seen });
  for (const event of changes.notify) notify(event);
  for (const event of batch.events || []) {
    if (event.type === 'message_deleted') forgetNotification(event.room_id, event.target_seq);
  }
  if (changes.reloadRooms !== null) reloadRoomsSoon(changes.reloadRooms);
  if (active !== null && changes.members.has(active) && !changes.leftActive) reloadMembersUntilDone(active);
  if (batch.ephemeralGap) reloadAllUntilDone();
  if (changes.leftActive) {
    closeRoom();
    renderMain();
    return;
  }
  if (changes.rooms.size) {
    renderSidebar();
    renderTitle();
  }
  const added = changes.added.has(active) || [...changes.sent.values()].includes(active) || changes.members.has(active);
  if (added) {
    const atBottom = nearBottom();
    renderMessages({ stickToBottom: atBottom });
    if (!atBottom) showNewBelow(true);
    markActiveRead();
  } else {
    showChanges(changes);
  }
  renderMembers();
}

/** The notification each room shows (one per room: its tag), by seq. */
const shownNotifications = new Map();

function notify(event) {
  if (!document.hidden || typeof Notification !== 'function' || Notification.permission !== 'granted') return;
  // Text only: the notification API shows strings, never markup.
  const shown = new Notification(t('newMessageFrom', { name: event.sender_name }), { body: event.text, tag: `room-${event.room_id}` });
  shownNotifications.set(event.room_id, { seq: event.seq, shown });
}

/** A deleted message's text does not stay on screen in a notification. */
function forgetNotification(roomId, seq) {
  const entry = shownNotifications.get(roomId);
  if (entry?.seq !== seq) return;
  entry.shown.close();
  shownNotifications.delete(roomId);
}

// --- main screen ----------------------------------------------------------

/**
 * Draws the signed-in screen. The shell (top bar, sidebar forms) is rebuilt
 * only when something it shows has changed, so a reload after a reconnect
 * never closes a form the user has open or drops what they typed in it.
 */
function renderMain() {
  if (!state.me) return;
  root.setAttribute('aria-busy', 'false');
  const key = [language(), state.me.id, state.me.display_name,
    typeof Notification === 'function' ? Notification.permission : ''].join('\n');
  if (root.dataset.shell !== key || !document.getElementById('layout')) {
    root.dataset.shell = key;
    renderShell();
  }
  document.getElementById('layout').classList.toggle('has-room', Boolean(state.activeRoomId));
  renderConnection();
  renderSidebar();
  renderConversation();
  renderMembers();
  renderTitle();
}

function renderShell() {
  root.replaceChildren(
    el('header', { className: 'topbar' },
      el('button', {
        type: 'button', className: 'back', 'aria-label': t('back'), textContent: '‹',
        onclick: () => {
          closeRoom();
          renderMain();
        },
      }),
      el('h1', { className: 'brand' }, t('appName')),
      el('span', { id: 'connection', className: 'connection', role: 'status' }),
      el('span', { id: 'notice', className: 'notice', role: 'alert' }),
      el('span', { className: 'spacer' }),
      notificationButton(),
      languageButton(() => renderMain()),
      el('span', { className: 'me' }, state.me.display_name),
      embed ? null : el('button', {
        type: 'button', className: 'logout', textContent: t('logout'),
        onclick: async () => {
          try { await client.logout(); } catch { /* the session may already be gone */ }
          showAuth('');
        },
      }),
    ),
    el('div', { id: 'layout', className: 'layout' },
      el('nav', { className: 'sidebar', 'aria-label': t('conversations') },
        el('h2', {}, t('conversations')),
        el('div', { id: 'sidebar' }),
        newRoomForm(),
        publicRoomsSection(),
      ),
      el('main', { id: 'conversation', className: 'conversation' }),
      el('aside', { id: 'members', className: 'members', 'aria-label': t('members') }),
    ),
  );
}

function renderConnection() {
  const node = document.getElementById('connection');
  if (!node) return;
  node.dataset.state = state.connection;
  node.textContent = t(state.connection);
}

function notificationButton() {
  if (typeof Notification !== 'function') return null;
  const on = Notification.permission === 'granted';
  return el('button', {
    type: 'button', className: 'notify', 'aria-pressed': String(on),
    textContent: on ? t('notificationsOn') : t('notifications'),
    // Asked only after the user clicks, never on load.
    onclick: async () => {
      await Notification.requestPermission();
      renderMain();
    },
  });
}
