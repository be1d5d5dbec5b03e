// The natter web app: where it starts, the session's lifetime (sign-in,
// the event stream, sign-out), the signed-in screen's shell, and the
// wiring of events to state (state.js), of the address to what is open
// (router.js) and of state to views (sidebar, conversation, members,
// composer). Plain DOM, no framework, no build.

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
import {
  forgetRooms, reloadAllUntilDone, reloadRoomsSoon, stopReloads,
} from './loads.js';
import { newRoomForm, publicRoomsSection, renderSidebar, renderTitle } from './sidebar.js';
import {
  closeRoom, markActiveRead, nearBottom, openRoom, renderConversation, renderMessages, retryRoom, showChanges,
  showNewBelow,
} from './conversation.js';
import { closeLeftRoom, refreshOnlineCount, showMembersPane } from './room-header.js';
import { retryFailed } from './composer.js';
import { closeEmojiPicker } from './emoji-picker.js';
import { closeDialogs } from './dialog.js';
import { forgetDrafts } from './drafts.js';
import { goUp, onRouteChange, parseRoute, showRoute } from './router.js';
import { renderMembers } from './members.js';
import { closeNotifications, forgetNotification, notificationButton, notify, notifyHeld } from './notifications.js';
import { forgetTyping, showTyping } from './typing.js';
import { showSeen } from './seen.js';
import { refreshNotifyChoice } from './room-notify.js';
import { accountButton } from './settings.js';
import { newDirectPanel } from './new-direct.js';

Object.assign(redraw, {
  main: renderMain,
  sidebar: renderSidebar,
  title: renderTitle,
  messages: renderMessages,
  changes: showChanges,
  members: renderMembers,
  // The address says whether its member list shows (an invite while a
  // link to /rooms/<id>/members was open).
  room: (roomId) => openRoom(roomId, { route: null, focus: false, members: parseRoute().members }),
  listed: notifyHeld,
});

/** The event stream, if one runs: `{ stop, retryNow, watch }` (events.js). */
let events = null;
/** The rooms this page has open, for the stream to watch: in a big room
 *  only those looking at it hear presence and typing (docs/protocol.md). */
const openRooms = () => (state.activeRoomId === null ? [] : [state.activeRoomId]);

// --- start ---------------------------------------------------------------

document.documentElement.lang = language();
listenToHost({
  events: {
    stop: () => {
      const streaming = Boolean(events);
      stopEvents();
      return streaming;
    },
    start: () => startEvents(),
  },
  onOpen: () => markActiveRead(),
});
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) markActiveRead();
});
// Back, forward, a link: the address says what to show.
onRouteChange((route) => {
  if (state.me) showRoute(route);
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
  stopEvents();
  forgetSessionViews();
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

/** What the views keep of a session outside the state (the open room's
 *  "New messages" line, desktop notifications, dialogs, the emoji
 *  picker, typing notices) and the mentions picked into its drafts: none
 *  of it may reach whoever signs in next. */
function forgetSessionViews() {
  closeRoom();
  closeNotifications();
  closeDialogs();
  closeEmojiPicker();
  forgetTyping();
  state.drafts.clear();
}

async function startSession() {
  const me = await client.me();
  beginSession();
  state.me = me;
  state.connection = 'connecting';
  // A reload or a shared link opens the room its address names, once the
  // room list says whether the user is in it.
  const route = embed ? { roomId: embed.mode === 'room' ? embed.roomId : null, members: false } : parseRoute();
  state.activeRoomId = route.roomId;
  renderMain();
  showMembersPane(route.members);
  startEvents();
  if (embed) {
    // When this session ends decides when to ask for the next one.
    client.request('GET', '/api/v1/me/sessions')
      .then(({ sessions }) => scheduleRenewal(sessions.find((s) => s.current)?.expires_at))
      .catch(() => {});
  }
}

function stopEvents() {
  events?.stop();
  events = null;
}

/** Opens the event stream for the current session. */
function startEvents() {
  events = openEvents(client, {
    onReady: () => reloadAllUntilDone(),
    onEvents: (batch) => onEvents(batch),
    onState: (s) => {
      state.connection = s;
      renderConnection();
      // Back after an outage: what failed for want of the server is tried
      // again (a send keeps its client message id, so it is stored once).
      if (s === 'connected') {
        retryFailed();
        retryRoom();
      }
    },
    // The stream restarts after a resync; onReady then reloads. What the
    // client knew may be ahead of the server's history (a restored
    // backup), so none of it may outrank the reload: the room list and the
    // read markers sent go with the loaded histories.
    onResync: () => {
      dropTimeline(state);
      forgetRooms();
      state.readSent.clear();
    },
    onStop: (code) => {
      // Logged out elsewhere: the drafts go, as on this page's Log out.
      if (code === 'session_ended' && state.me) forgetDrafts(state.me.id);
      showAuth(has(code) ? t(code) : t('unauthenticated'));
    },
  }, { watch: openRooms() });
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
  // Joins and leaves changed the loaded member lists in place (state.js):
  // a room of thousands is never read again for them. Only lost news
  // (and a resync, onReady) reads the open room's first page again.
  if (batch.ephemeralGap) reloadAllUntilDone();
  if (changes.leftActive) {
    closeLeftRoom(); // redraws all, and so watches no room
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
  // The header's count follows presence, as the member list does.
  refreshOnlineCount();
  if (changes.typing.size) showTyping();
  if (changes.receipts.has(active)) showSeen();
  refreshNotifyChoice(changes);
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
  const key = [language(), state.me.id, state.me.display_name, state.me.avatar_url,
    typeof Notification === 'function' ? Notification.permission : ''].join('\n');
  if (root.dataset.shell !== key || !document.getElementById('layout')) {
    root.dataset.shell = key;
    renderShell();
  }
  document.getElementById('layout').classList.toggle('has-room', Boolean(state.activeRoomId));
  // Nothing to go back to from the list itself.
  const back = document.querySelector('.topbar .back');
  if (back) back.hidden = state.activeRoomId === null;
  events?.watch(openRooms()); // every open and close of a room comes by here
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
        // Up one level: the member list to its room, a room to the list.
        onclick: () => {
          const route = goUp();
          if (route) showRoute(route);
        },
      }),
      el('h1', { className: 'brand' }, t('appName')),
      el('span', { id: 'connection', className: 'connection', role: 'status' }),
      el('button', {
        id: 'retry-now', type: 'button', className: 'retry-now icon-button', hidden: true,
        onclick: () => events?.retryNow(),
      },
        el('span', { className: 'icon', 'aria-hidden': 'true' }, '↻'),
        el('span', { className: 'label' }, t('retryNow')),
      ),
      el('span', { id: 'notice', className: 'notice', role: 'alert' }),
      el('span', { className: 'spacer' }),
      notificationButton(() => renderMain()),
      languageButton(() => renderMain()),
      accountButton(),
      embed ? null : el('button', {
        type: 'button', className: 'logout', textContent: t('logout'),
        onclick: async () => {
          forgetDrafts(state.me.id);
          try { await client.logout(); } catch { /* the session may already be gone */ }
          showAuth('');
        },
      }),
    ),
    el('div', { id: 'layout', className: 'layout' },
      el('nav', { className: 'sidebar', 'aria-label': t('conversations') },
        el('h2', {}, t('conversations')),
        el('div', { id: 'sidebar' }),
        newDirectPanel(),
        newRoomForm(),
        publicRoomsSection(),
      ),
      // Focusable by script: the keyboard goes here when a room opens
      // without a composer, and to the member list when it opens.
      el('main', { id: 'conversation', className: 'conversation', tabIndex: -1 }),
      el('aside', { id: 'members', className: 'members', 'aria-label': t('members'), tabIndex: -1 }),
    ),
  );
}

function renderConnection() {
  const node = document.getElementById('connection');
  if (!node) return;
  node.dataset.state = state.connection;
  node.textContent = t(state.connection);
  const retry = document.getElementById('retry-now');
  if (retry) retry.hidden = state.connection !== 'reconnecting';
}
