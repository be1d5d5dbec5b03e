// The natter web app: sign-in, the conversation list, a conversation with
// its history and composer, and the member list. Plain DOM, no framework;
// all user text goes through render.js, which only ever inserts text.

import { Natter, NatterError, backoffDelay, newClientMsgId } from '/sdk/natter.js';
import { openEvents } from './events.js';
import { CATEGORIES } from './emoticons.js';
import { clock, dayKey, el, renderText, safeImage } from './render.js';
import { has, language, t, toggleLanguage } from './i18n.js';

/**
 * Set when the app runs embedded in a host site (embed.html): the mode
 * ('widget' or 'room'), the site, the room of a panel, and the origins
 * allowed to frame it.
 */
const embed = (() => {
  const { mode, site, room } = document.body.dataset;
  if (!mode) return null;
  const origins = (document.querySelector('meta[name="natter-origins"]')?.content || '').split(' ').filter(Boolean);
  return { mode, site, roomId: Number(room) || null, origins };
})();
// Embedded, the session lives only as long as the tab, and apart from the
// full app's.
const storage = embed ? sessionStorage : localStorage;
const TOKEN_KEY = embed ? `natter.embed.${embed.site}` : 'natter.token';
const RECENT_KEY = 'natter.recentEmoji';
const MAX_CHARS = 4000;
const GROUP_GAP_MS = 5 * 60 * 1000;

const root = document.getElementById('app');
const client = new Natter({ token: storage.getItem(TOKEN_KEY) });

/** Everything the screen shows, so any part can be redrawn from it. */
const state = {
  me: null,
  connection: 'connecting',
  rooms: new Map(), // id → room listing from GET /rooms
  activeRoomId: null,
  messages: new Map(), // room id → events, ascending by seq
  hasMore: new Map(), // room id → older history exists
  members: new Map(), // room id → member list
  presence: new Map(), // user id → online
  pending: new Map(), // client msg id → { roomId, text, status, error }
  drafts: new Map(), // room id → text typed but not sent
  historyEpoch: 0, // bumped when cached history is dropped
  newBelow: false,
  loadingOlder: false,
  notice: '',
  authMode: 'login',
  authError: '',
};

let stopEvents = null;
/** The embedded app's timer for asking the host page for a new token. */
let renewTimer = null;
/** The pending reload of the room list: its timer, when it fires, and a
 *  generation bumped as each fires, so the retries of an older one stop. */
const roomsReload = { timer: null, at: 0, generation: 0 };
/** Bumped when the session ends, so loads and retries of the last one stop. */
let sessionEpoch = 0;
/** How soon the list is reloaded for a room it lacks: soon, but once for
 *  the events of several answers arriving together. */
const UNKNOWN_ROOM_DELAY_MS = 50;
/** Bumped by every full reload, so the retries of an older one stop. */
let reloadGeneration = 0;
/** Whether the top bar shows a failed full reload, for the next success to clear. */
let reloadFailureShown = false;
/** Room-list loads started and the newest one applied: an older answer
 *  that arrives after a newer one would drop what the newer one added. */
const roomLoads = { started: 0, applied: 0 };
/** The last read marker sent per room, so each is sent once. */
const readSent = new Map();

// --- start ---------------------------------------------------------------

document.documentElement.lang = language();
if (embed) {
  startEmbedded();
} else if (client.token) {
  resumeSession();
} else {
  showAuth('');
}

/** The embedded app signs in with the token the host page passed in the
 *  fragment (never sent to a server log), then forgets it. */
async function startEmbedded() {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  history.replaceState(null, '', location.pathname + location.search);
  if (token) {
    // A new token replaces whatever session this tab had: if it is
    // refused, the old session (perhaps another user's) is not used.
    client.token = null;
    storage.removeItem(TOKEN_KEY);
    try {
      await client.ssoLogin(token, embed.site);
      storage.setItem(TOKEN_KEY, client.token);
    } catch (e) {
      client.token = null;
      return showEmbedProblem(errorText(e));
    }
  }
  if (!client.token) return showEmbedProblem(t('embedSignIn'));
  resumeSession();
}

function showEmbedProblem(text) {
  root.setAttribute('aria-busy', 'false');
  root.replaceChildren(el('main', { className: 'auth' }, el('p', { role: 'alert' }, text)));
}

/** The page that frames this one, if it is one of the site's origins. */
const parentOrigin = (() => {
  if (!embed || window.parent === window) return null;
  const origin = location.ancestorOrigins?.[0] || (document.referrer ? new URL(document.referrer).origin : null);
  return origin && embed.origins.includes(origin) ? origin : null;
})();

/** Tells the host page something (the unread count); nobody else. */
function tellParent(message) {
  if (parentOrigin) window.parent.postMessage(message, parentOrigin);
}

/** Whether the chat is on screen: a widget starts closed, and the host
 *  page says when its user opens or closes it. */
let onScreen = embed?.mode !== 'widget';

// --- session renewal (embedded) -------------------------------------------
// A session made from a site token lasts what the site configures (hours,
// not weeks). Before it ends, the app asks the host page for a fresh
// token (widget.js fetches one from the site's data-token-url), signs in
// with it, moves the event stream to the new session and ends the old.
// A host page that never answers leaves the session to expire as before.

/** Asks for a new token well before `expiresAt` (ms since the epoch). */
function scheduleRenewal(expiresAt) {
  clearTimeout(renewTimer);
  if (!parentOrigin || !expiresAt) return;
  const left = expiresAt - Date.now();
  const wait = Math.max(10_000, Math.min(left - 5 * 60_000, left / 2));
  renewTimer = setTimeout(() => tellParent({ type: 'natter:token-needed' }), wait);
}

/** Signs in with a token the host page sent; the old session ends. */
async function renewSession(token) {
  const old = client.token;
  const fresh = new Natter({ baseUrl: client.baseUrl });
  let answer;
  try {
    answer = await fresh.ssoLogin(token, embed.site);
  } catch {
    // Refused or unreachable: ask again in a minute, while the current
    // session runs on.
    clearTimeout(renewTimer);
    renewTimer = setTimeout(() => tellParent({ type: 'natter:token-needed' }), 60_000);
    return;
  }
  client.token = fresh.token;
  storage.setItem(TOKEN_KEY, client.token);
  const sameUser = answer.user?.id === state.me?.id;
  // The old stream stops before its session ends, so its end is no news.
  const streaming = Boolean(stopEvents);
  stopEvents?.();
  stopEvents = null;
  if (sameUser) {
    scheduleRenewal(answer.expiresAt);
    if (streaming) startEvents();
  }
  await new Natter({ baseUrl: client.baseUrl, token: old }).logout().catch(() => {});
  // The host page signed someone else in: nothing of the last user's
  // may stay on screen, so start over as the new one.
  if (!sameUser) location.reload();
}

addEventListener('message', (event) => {
  if (!parentOrigin || event.origin !== parentOrigin || event.source !== window.parent) return;
  if (event.data?.type === 'natter:token' && typeof event.data.token === 'string') {
    renewSession(event.data.token);
  }
  if (event.data?.type === 'natter:open') {
    onScreen = true;
    markActiveRead();
  }
  if (event.data?.type === 'natter:close') onScreen = false;
});

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

function showAuth(notice) {
  stopReloads();
  if (embed) {
    clearTimeout(renewTimer);
    stopEvents?.();
    stopEvents = null;
    storage.removeItem(TOKEN_KEY);
    return showEmbedProblem(notice || t('embedSignIn'));
  }
  stopEvents?.();
  stopEvents = null;
  client.token = null;
  storage.removeItem(TOKEN_KEY);
  state.me = null;
  for (const map of [state.rooms, state.messages, state.hasMore, state.members, state.presence, state.pending, state.drafts, readSent]) {
    map.clear();
  }
  state.activeRoomId = null;
  state.authError = notice;
  renderAuth();
}

async function startSession() {
  const me = await client.me();
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
    onEvents: (batch) => applyEvents(batch),
    onState: (s) => {
      state.connection = s;
      renderConnection();
    },
    // The stream restarts after a resync; onReady then reloads.
    onResync: () => dropHistory(),
    onStop: (code) => showAuth(has(code) ? t(code) : t('unauthenticated')),
  });
}

/** Shows a failed action's reason in the top bar instead of failing silently. */
function safely(promise) {
  return promise.catch((e) => showNotice(errorText(e)));
}

/**
 * Reloads everything (after connecting, reconnecting or losing ephemeral
 * news) and, while that fails, tries again with backoff: a network blip at
 * the wrong moment must not leave the page empty until some event comes.
 * The failure shows in the top bar until a reload succeeds.
 */
function reloadAllUntilDone() {
  const generation = ++reloadGeneration;
  const wanted = () => state.me && generation === reloadGeneration;
  const failed = (e) => {
    reloadFailureShown = true;
    showNotice(errorText(e));
  };
  untilDone(reloadAll, wanted, failed).then((done) => {
    if (done && wanted() && reloadFailureShown) {
      reloadFailureShown = false;
      showNotice('');
    }
  });
}

/**
 * Runs `task` and, while it fails and `wanted()` still holds, runs it
 * again with the SDK's jittered backoff; `failed` sees each failure.
 * A refusal (4xx) is not tried again. Resolves to whether it succeeded.
 */
async function untilDone(task, wanted, failed = () => {}) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await task();
      return true;
    } catch (e) {
      if (!wanted()) return false;
      failed(e);
      if (isRefusal(e)) return false;
      await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt)));
      if (!wanted()) return false;
    }
  }
}

/** A refusal (4xx) will not succeed when tried again; only failures are. */
function isRefusal(error) {
  return error instanceof NatterError && error.status >= 400 && error.status < 500;
}

function showNotice(text) {
  const notice = document.getElementById('notice');
  if (notice) notice.textContent = text;
}

/** Forgets cached history, which may have a gap after a resync or a leave. */
function dropHistory(roomId) {
  if (roomId === undefined) state.messages.clear();
  else state.messages.delete(roomId);
  state.historyEpoch += 1;
}

function errorText(error) {
  if (error instanceof NatterError && has(error.code)) return t(error.code);
  return t('unknownError', { message: error?.message || String(error) });
}

// --- sign-in ---------------------------------------------------------------

function renderAuth() {
  root.setAttribute('aria-busy', 'false');
  const registering = state.authMode === 'register';
  const username = el('input', { id: 'username', name: 'username', autocomplete: 'username', required: true });
  const password = el('input', {
    id: 'password',
    name: 'password',
    type: 'password',
    autocomplete: registering ? 'new-password' : 'current-password',
    required: true,
  });
  const displayName = el('input', { id: 'display-name', name: 'display_name', autocomplete: 'nickname' });
  const error = el('p', { className: 'auth-error', role: 'alert', textContent: state.authError });
  const submit = el('button', { type: 'submit', className: 'primary', textContent: registering ? t('register') : t('login') });
  const form = el('form', { className: 'auth-form', 'aria-label': registering ? t('register') : t('login') },
    el('label', { for: 'username' }, t('username')), username,
    el('label', { for: 'password' }, t('password')), password,
    registering ? [el('label', { for: 'display-name' }, t('displayName')), displayName] : null,
    error,
    submit,
  );
  form.onsubmit = async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = '';
    try {
      if (registering) {
        await client.register(username.value.trim(), password.value, displayName.value.trim() || undefined);
      }
      await client.login(username.value.trim(), password.value);
      storage.setItem(TOKEN_KEY, client.token);
      state.authError = '';
      await startSession();
    } catch (e) {
      error.textContent = errorText(e);
      submit.disabled = false;
    }
  };
  const switchMode = el('button', {
    type: 'button',
    className: 'link',
    textContent: registering ? t('haveAccount') : t('needAccount'),
    onclick: () => {
      state.authMode = registering ? 'login' : 'register';
      state.authError = '';
      renderAuth();
    },
  });
  root.replaceChildren(
    el('main', { className: 'auth' },
      el('h1', { className: 'brand' }, t('appName')),
      form,
      switchMode,
      languageButton(() => renderAuth()),
    ),
  );
  username.focus();
}

function languageButton(redraw) {
  return el('button', {
    type: 'button',
    className: 'lang',
    'aria-label': t('languageLabel'),
    textContent: t('language'),
    onclick: () => {
      toggleLanguage();
      document.documentElement.lang = language();
      redraw();
    },
  });
}

// --- data ----------------------------------------------------------------

async function reloadAll() {
  dropHistory();
  await loadRooms();
  if (embed?.mode === 'room' && state.rooms.has(embed.roomId)) state.activeRoomId = embed.roomId;
  if (state.activeRoomId && state.rooms.has(state.activeRoomId)) {
    await Promise.all([loadLatest(state.activeRoomId), loadMembers(state.activeRoomId)]);
  } else {
    state.activeRoomId = null;
  }
  renderMain();
}

async function loadRooms() {
  const load = ++roomLoads.started;
  const rooms = await client.rooms();
  if (load < roomLoads.applied) return;
  roomLoads.applied = load;
  for (const room of rooms) {
    // Events that arrived while the list was computed are newer than it.
    const known = state.rooms.get(room.id);
    if (known && known.head_seq > room.head_seq) {
      room.head_seq = known.head_seq;
      room.unread_count = known.unread_count;
      room.last_message = known.last_message;
    }
    // A read marker sent just before this list was computed may not be in it yet.
    const sent = readSent.get(room.id) ?? 0;
    if (sent > room.read_seq && (!room.last_message || room.last_message.seq <= sent)) {
      room.read_seq = sent;
      room.unread_count = 0;
    }
  }
  state.rooms = new Map(rooms.map((room) => [room.id, room]));
  renderSidebar();
  renderTitle();
}

/**
 * Reloads the room list within `delay` ms, once for however many events
 * ask meanwhile. A later ask never postpones a reload already due (a busy
 * stream of member and presence news must not starve the list), and a
 * failed reload is tried again with backoff rather than leaving the list
 * stale until the next event happens to come.
 */
function reloadRoomsSoon(delay = 300) {
  const at = Date.now() + delay;
  if (roomsReload.timer !== null) {
    if (roomsReload.at <= at) return;
    clearTimeout(roomsReload.timer);
  }
  roomsReload.at = at;
  // The session, not just the user: an embedded page keeps its user after a stop.
  const session = sessionEpoch;
  roomsReload.timer = setTimeout(() => {
    roomsReload.timer = null;
    const generation = ++roomsReload.generation;
    const wanted = () => state.me && session === sessionEpoch && generation === roomsReload.generation;
    if (wanted()) untilDone(loadRooms, wanted);
  }, delay);
}

/** Stops pending reloads and their retries, in flight or not: the session is over. */
function stopReloads() {
  clearTimeout(roomsReload.timer);
  roomsReload.timer = null;
  sessionEpoch += 1;
  reloadGeneration += 1;
  reloadFailureShown = false;
}

async function loadLatest(roomId) {
  // The buffer exists before the request, so events that arrive while it
  // is in flight are kept and merged with the page.
  const fresh = !state.messages.has(roomId);
  if (fresh) state.messages.set(roomId, []);
  const page = await client.history(roomId, { limit: 50 });
  if (!state.messages.has(roomId)) return;
  mergeEvents(roomId, page.messages);
  if (fresh) state.hasMore.set(roomId, page.has_more);
}

async function loadOlder(roomId) {
  const list = state.messages.get(roomId) || [];
  if (state.loadingOlder || !state.hasMore.get(roomId) || list.length === 0) return;
  state.loadingOlder = true;
  renderMessages({ keepPosition: true });
  const epoch = state.historyEpoch;
  try {
    const page = await client.history(roomId, { before: list[0].seq, limit: 50 });
    // History dropped meanwhile: this page would leave a hole.
    if (epoch === state.historyEpoch) {
      mergeEvents(roomId, page.messages);
      state.hasMore.set(roomId, page.has_more);
    }
  } finally {
    state.loadingOlder = false;
  }
  if (roomId === state.activeRoomId) renderMessages({ keepPosition: true });
}

async function loadMembers(roomId) {
  const list = await client.members(roomId);
  state.members.set(roomId, list.members);
  for (const m of list.members) state.presence.set(m.id, m.online);
}

/** Adds events to a room's list, keeping it sorted by seq with no duplicates. */
function mergeEvents(roomId, events) {
  const list = state.messages.get(roomId) || [];
  const known = new Set(list.map((e) => e.seq));
  const fresh = events.filter((e) => !known.has(e.seq));
  if (fresh.length === 0) return false;
  const merged = list.concat(fresh).sort((a, b) => a.seq - b.seq);
  state.messages.set(roomId, merged);
  return true;
}

// --- events --------------------------------------------------------------

function applyEvents({ events, ephemeral, ephemeralGap }) {
  let roomsChanged = false;
  let activeChanged = false;
  let leftActive = false;
  for (const event of events) {
    const room = state.rooms.get(event.room_id);
    const mine = event.sender_id === state.me.id;
    const isNew = room !== undefined && event.seq > room.head_seq;
    if (isNew) room.head_seq = event.seq;
    if (event.type === 'message') {
      if (room) {
        if (isNew) room.last_message = event;
        const seen = event.room_id === state.activeRoomId && onScreen && !document.hidden && nearBottom();
        // Only what the room list has not counted yet.
        if (!mine && !seen && isNew) room.unread_count += 1;
        roomsChanged = true;
      } else {
        // A conversation this page has not heard of yet (a new direct
        // chat): show it within moments, not after the usual gathering delay.
        reloadRoomsSoon(UNKNOWN_ROOM_DELAY_MS);
      }
      if (mine && state.pending.delete(event.client_msg_id)) activeChanged ||= event.room_id === state.activeRoomId;
      if (state.messages.has(event.room_id) && mergeEvents(event.room_id, [event])) {
        if (event.room_id === state.activeRoomId) activeChanged = true;
      }
      if (!mine) notify(event);
    } else {
      if (state.messages.has(event.room_id)) mergeEvents(event.room_id, [event]);
      if (event.room_id === state.activeRoomId) {
        activeChanged = true;
        // Who joined or left: a failed load is tried again while the
        // room stays open, or the list would be wrong until the next change.
        const roomId = event.room_id;
        const session = sessionEpoch;
        const wanted = () => session === sessionEpoch && roomId === state.activeRoomId;
        untilDone(() => loadMembers(roomId), wanted).then((done) => {
          if (done && wanted()) renderMembers();
        });
      }
      if (event.type === 'member_left' && event.user_id === state.me.id) {
        dropHistory(event.room_id);
        if (event.room_id === state.activeRoomId) {
          state.activeRoomId = null;
          leftActive = true;
        }
      }
      reloadRoomsSoon(room ? 300 : UNKNOWN_ROOM_DELAY_MS);
    }
  }
  for (const item of ephemeral) {
    if (item.type === 'presence') {
      state.presence.set(item.user_id, item.online);
      reloadRoomsSoon();
    } else if (item.type === 'read') {
      const room = state.rooms.get(item.room_id);
      if (room && item.seq >= room.head_seq) {
        room.unread_count = 0;
        roomsChanged = true;
      }
    }
  }
  if (ephemeralGap) reloadAllUntilDone();
  if (leftActive) {
    renderMain();
    return;
  }
  if (roomsChanged) {
    renderSidebar();
    renderTitle();
  }
  if (activeChanged) {
    const atBottom = nearBottom();
    renderMessages({ stickToBottom: atBottom });
    if (!atBottom) showNewBelow(true);
    markActiveRead();
  }
  renderMembers();
}

function notify(event) {
  if (!document.hidden || typeof Notification !== 'function' || Notification.permission !== 'granted') return;
  // Text only: the notification API shows strings, never markup.
  new Notification(t('newMessageFrom', { name: event.sender_name }), { body: event.text, tag: `room-${event.room_id}` });
}

function markActiveRead() {
  const roomId = state.activeRoomId;
  const room = state.rooms.get(roomId);
  if (!room || !onScreen || document.hidden || !nearBottom()) return;
  const list = state.messages.get(roomId) || [];
  const last = list[list.length - 1];
  if (!last || (room.unread_count === 0 && room.read_seq >= last.seq)) return;
  room.unread_count = 0;
  room.read_seq = last.seq;
  renderSidebar();
  renderTitle();
  if ((readSent.get(roomId) ?? 0) < last.seq) {
    readSent.set(roomId, last.seq);
    client.markRead(roomId, last.seq).catch(() => readSent.delete(roomId));
  }
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) markActiveRead();
});

// --- main screen ----------------------------------------------------------

/**
 * Draws the signed-in screen. The shell (top bar, sidebar forms) is rebuilt
 * only when something it shows has changed, so a reload after a reconnect
 * never closes a form the user has open or drops what they typed in it.
 */
function renderMain() {
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
        onclick: () => { state.activeRoomId = null; renderMain(); },
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

function renderTitle() {
  let unread = 0;
  for (const room of state.rooms.values()) unread += room.unread_count;
  document.title = unread > 0 ? `(${unread}) ${t('appName')}` : t('appName');
  tellParent({ type: 'natter:unread', count: unread });
}

function roomTitle(room) {
  if (room.kind === 'direct') return room.peer?.display_name || '…';
  return room.title;
}

function renderSidebar() {
  const node = document.getElementById('sidebar');
  if (!node) return;
  const rooms = [...state.rooms.values()];
  const list = el('ul', { className: 'room-list' },
    rooms.map((room) => {
      const preview = room.last_message
        ? el('span', { className: 'preview' }, renderText(`${room.last_message.sender_name}: ${room.last_message.text}`))
        : el('span', { className: 'preview' });
      return el('li', {},
        el('button', {
          type: 'button',
          className: 'room' + (room.id === state.activeRoomId ? ' active' : ''),
          'aria-current': room.id === state.activeRoomId ? 'true' : undefined,
          'data-room': room.id,
          onclick: () => openRoom(room.id),
        },
          el('span', { className: 'room-title' }, roomTitle(room)),
          room.unread_count > 0
            ? el('span', { className: 'badge' },
              el('span', { 'aria-hidden': 'true' }, String(room.unread_count)),
              el('span', { className: 'visually-hidden' }, t('unread', { count: room.unread_count })))
            : null,
          preview,
          room.kind === 'group' ? el('span', { className: 'online-count' }, t('online', { count: room.online_count })) : null,
        ),
      );
    }),
  );
  // Only the list is redrawn: the forms below keep what is typed in them.
  node.replaceChildren(rooms.length ? list : el('p', { className: 'empty' }, t('noRooms')));
}

function newRoomForm() {
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
  const details = el('details', { className: 'panel' }, el('summary', {}, t('newRoom')), form);
  return details;
}

function publicRoomsSection() {
  const list = el('ul', { className: 'public-list' });
  const details = el('details', { className: 'panel' }, el('summary', {}, t('publicRooms')), list);
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
            onclick: () => safely((async () => {
              await client.joinRoom(room.id);
              await loadRooms();
              await refresh();
              await openRoom(room.id);
            })()),
          }),
      )) : [el('li', { className: 'muted' }, t('noPublicRooms'))]),
    );
  };
  details.ontoggle = refresh;
  return details;
}

async function openRoom(roomId) {
  state.activeRoomId = roomId;
  state.newBelow = false;
  // A newly opened room starts on its messages, not its member list.
  document.getElementById('layout')?.classList.remove('show-members');
  renderMain();
  await Promise.all([
    state.messages.has(roomId) ? null : loadLatest(roomId),
    loadMembers(roomId),
  ]);
  if (state.activeRoomId !== roomId) return;
  renderConversation();
  renderMembers();
  markActiveRead();
}

// --- conversation -----------------------------------------------------------

function renderConversation() {
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
            dropHistory(room.id);
            state.activeRoomId = null;
            await loadRooms();
            renderMain();
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

function nearBottom() {
  const list = document.getElementById('messages');
  if (!list) return true;
  return list.scrollHeight - list.scrollTop - list.clientHeight < 60;
}

function showNewBelow(show) {
  state.newBelow = show;
  const button = document.getElementById('new-below');
  if (button) button.hidden = !show;
}

function avatarOf(roomId, userId) {
  const member = (state.members.get(roomId) || []).find((m) => m.id === userId);
  return safeImage(member?.avatar_url, `/api/v1/users/${userId}/avatar.svg`);
}

/** An avatar that falls back to the generated one if the user's own fails. */
function avatarImage(src, userId, size) {
  const fallback = `/api/v1/users/${userId}/avatar.svg`;
  const img = el('img', { className: 'avatar', src, alt: '', width: size, height: size });
  img.addEventListener('error', () => {
    if (!img.src.endsWith(fallback)) img.src = fallback;
  }, { once: true });
  return img;
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

function renderMessages({ stickToBottom = false, keepPosition = false } = {}) {
  const list = document.getElementById('messages');
  const roomId = state.activeRoomId;
  if (!list || roomId === null) return;
  const heightBefore = list.scrollHeight;
  const topBefore = list.scrollTop;
  const items = [];
  if (state.loadingOlder) items.push(el('li', { className: 'system' }, t('loadingOlder')));
  else if (!state.hasMore.get(roomId)) items.push(el('li', { className: 'system' }, t('beginning')));
  let previous = null;
  let day = null;
  for (const event of state.messages.get(roomId) || []) {
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
    items.push(messageItem(roomId, event, grouped));
    previous = event;
  }
  for (const [clientMsgId, pending] of state.pending) {
    if (pending.roomId === roomId) items.push(pendingItem(clientMsgId, pending));
  }
  list.replaceChildren(...items);
  if (stickToBottom) list.scrollTop = list.scrollHeight;
  else if (keepPosition) list.scrollTop = topBefore + (list.scrollHeight - heightBefore);
}

function messageItem(roomId, event, grouped) {
  const mine = event.sender_id === state.me.id;
  return el('li', {
    className: 'message' + (grouped ? ' grouped' : '') + (mine ? ' mine' : ''),
    'data-seq': event.seq,
  },
    grouped ? null : avatarImage(avatarOf(roomId, event.sender_id), event.sender_id, 36),
    el('div', { className: 'bubble' },
      grouped ? null : el('div', { className: 'meta' },
        el('span', { className: 'sender' }, event.sender_name),
        el('time', { dateTime: new Date(event.ts).toISOString() }, clock(event.ts, language())),
      ),
      el('div', { className: 'text' }, renderText(event.text)),
    ),
  );
}

function pendingItem(clientMsgId, pending) {
  return el('li', { className: 'message mine pending', 'data-client-id': clientMsgId },
    el('div', { className: 'bubble' },
      el('div', { className: 'text' }, renderText(pending.text)),
      el('div', { className: 'status' },
        pending.status === 'sending' ? t('sending') : t('failed'),
        pending.error ? ` ${pending.error}` : '',
        pending.status === 'failed'
          ? el('button', { type: 'button', className: 'retry', textContent: t('retry'), onclick: () => sendPending(clientMsgId) })
          : null,
        pending.status === 'refused'
          ? el('button', {
            type: 'button', className: 'retry', textContent: t('dismiss'),
            onclick: () => { state.pending.delete(clientMsgId); renderMessages(); },
          })
          : null,
      ),
    ),
  );
}

function composer(room) {
  const input = el('textarea', {
    id: 'composer', rows: 2, maxLength: MAX_CHARS, placeholder: t('composerHint'), 'aria-label': t('composerLabel'),
  });
  const counter = el('span', { className: 'counter', 'aria-live': 'polite' });
  const picker = emojiPicker((emoji) => insertAtCursor(input, emoji));
  const form = el('form', { className: 'composer' },
    input,
    el('div', { className: 'composer-tools' },
      el('button', {
        type: 'button', className: 'emoji-toggle', 'aria-label': t('emoji'), 'aria-expanded': 'false', textContent: '😊',
        onclick: (event) => {
          picker.hidden = !picker.hidden;
          event.currentTarget.setAttribute('aria-expanded', String(!picker.hidden));
        },
      }),
      counter,
      el('button', { type: 'submit', className: 'primary' }, t('send')),
    ),
    picker,
  );
  const updateCounter = () => {
    const left = MAX_CHARS - [...input.value].length;
    counter.textContent = left < 200 ? t('charsLeft', { count: left }) : '';
  };
  input.value = state.drafts.get(room.id) || '';
  input.oninput = () => {
    // The draft survives redraws and switching rooms.
    if (input.value) state.drafts.set(room.id, input.value);
    else state.drafts.delete(room.id);
    updateCounter();
  };
  updateCounter();
  input.onkeydown = (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  };
  form.onsubmit = (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    input.value = '';
    state.drafts.delete(room.id);
    updateCounter();
    const clientMsgId = newClientMsgId();
    state.pending.set(clientMsgId, { roomId: room.id, text, status: 'sending' });
    renderMessages({ stickToBottom: true });
    sendPending(clientMsgId);
  };
  return form;
}

/** Sends (or re-sends, with the same id) a pending message. */
async function sendPending(clientMsgId) {
  const pending = state.pending.get(clientMsgId);
  if (!pending) return;
  pending.status = 'sending';
  if (pending.roomId === state.activeRoomId) renderMessages({ stickToBottom: nearBottom() });
  try {
    const message = await client.send(pending.roomId, pending.text, { clientMsgId, retries: 2 });
    state.pending.delete(clientMsgId);
    if (state.messages.has(pending.roomId)) mergeEvents(pending.roomId, [message]);
  } catch (e) {
    const refused = isRefusal(e);
    pending.status = refused ? 'refused' : 'failed';
    pending.error = refused ? errorText(e) : '';
  }
  if (pending.roomId === state.activeRoomId) renderMessages({ stickToBottom: true });
}

function insertAtCursor(input, text) {
  const start = input.selectionStart ?? input.value.length;
  const end = input.selectionEnd ?? start;
  input.value = input.value.slice(0, start) + text + input.value.slice(end);
  input.selectionStart = input.selectionEnd = start + text.length;
  input.focus();
  input.dispatchEvent(new Event('input'));
}

function emojiPicker(choose) {
  const recent = () => JSON.parse(localStorage.getItem(RECENT_KEY) || '[]');
  const grid = el('div', { className: 'emoji-grid', role: 'listbox', 'aria-label': t('emoji') });
  const tabs = el('div', { className: 'emoji-tabs', role: 'tablist' });
  const show = (name, list) => {
    for (const tab of tabs.children) tab.setAttribute('aria-selected', String(tab.dataset.name === name));
    grid.replaceChildren(...list.map((emoji) => el('button', {
      type: 'button', className: 'emoji', role: 'option', textContent: emoji,
      onclick: () => {
        const next = [emoji, ...recent().filter((e) => e !== emoji)].slice(0, 24);
        localStorage.setItem(RECENT_KEY, JSON.stringify(next));
        choose(emoji);
      },
    })));
  };
  const categories = [[t('recent'), null], ...CATEGORIES];
  for (const [name, list] of categories) {
    tabs.append(el('button', {
      type: 'button', role: 'tab', 'data-name': name, textContent: list ? list[0] : '🕘', title: name,
      onclick: () => show(name, list || recent()),
    }));
  }
  const picker = el('div', { className: 'emoji-picker', hidden: true }, tabs, grid);
  show(CATEGORIES[0][0], CATEGORIES[0][1]);
  return picker;
}

// --- members ----------------------------------------------------------------

function renderMembers() {
  const node = document.getElementById('members');
  if (!node) return;
  const roomId = state.activeRoomId;
  const members = roomId === null ? null : state.members.get(roomId);
  if (!members) {
    node.replaceChildren();
    return;
  }
  const online = members.filter((m) => state.presence.get(m.id)).length;
  node.replaceChildren(
    el('h2', {}, t('members'), ' ', el('span', { className: 'online-count' }, t('online', { count: online }))),
    el('ul', { className: 'member-list' },
      members.map((member) => {
        const isOnline = Boolean(state.presence.get(member.id));
        const me = member.id === state.me.id;
        return el('li', { className: 'member', 'data-user': member.id },
          avatarImage(safeImage(member.avatar_url, `/api/v1/users/${member.id}/avatar.svg`), member.id, 28),
          el('span', { className: 'dot' + (isOnline ? ' online' : ''), role: 'img', 'aria-label': isOnline ? t('connected') : t('offline') }),
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
}
