// What every part of the app shares: the API client, the state, where the
// session token is kept, whether the page is embedded in a host site, the
// signals that stop the work of a session or of an open room, and the
// redraws (filled in by app.js, so that loads and views can ask for them
// without importing each other).

import { Natter, NatterError, backoffDelay } from '/sdk/natter.js';
import { createState } from './state.js';
import { has, t } from './i18n.js';

/**
 * Set when the app runs embedded in a host site (embed.html): the mode
 * ('widget' or 'room'), the site, the room of a panel, and the origins
 * allowed to frame it.
 */
export const embed = (() => {
  const { mode, site, room } = document.body.dataset;
  if (!mode) return null;
  const origins = (document.querySelector('meta[name="natter-origins"]')?.content || '').split(' ').filter(Boolean);
  return { mode, site, roomId: Number(room) || null, origins };
})();

// Embedded, the session lives only as long as the tab, and apart from the
// full app's.
export const storage = embed ? sessionStorage : localStorage;
export const TOKEN_KEY = embed ? `natter.embed.${embed.site}` : 'natter.token';

export const root = document.getElementById('app');
export const client = new Natter({ token: storage.getItem(TOKEN_KEY) });

/** Everything the screen shows, so any part can be redrawn from it. */
export const state = createState();

/** The views' redraws; app.js puts the real ones in. */
export const redraw = {
  main() {},
  sidebar() {},
  title() {},
  messages() {},
  changes() {},
  members() {},
  /** The open room just appeared in the room list (an invite while its
   *  link was open): read what it shows. */
  room() {},
  /** The room list was read: what waited for it (a notification of a
   *  room not listed yet) goes on. */
  listed() {},
};

// --- cancellation -----------------------------------------------------------
// One controller per session (aborted when it ends: logout, expiry, a
// refused token) and one per open room (aborted when another room opens,
// or none). Loads take their signal; retries stop once it aborts.

/** A controller that aborts with `parent`, and lets go of it once aborted. */
export function childController(parent) {
  const controller = new AbortController();
  if (parent.aborted) {
    controller.abort();
    return controller;
  }
  const stop = () => controller.abort();
  parent.addEventListener('abort', stop, { once: true });
  controller.signal.addEventListener('abort', () => parent.removeEventListener('abort', stop), { once: true });
  return controller;
}

let session = new AbortController();
let room = childController(session.signal);

/** Starts a session's work; whatever the last one started stops. */
export function beginSession() {
  session.abort();
  session = new AbortController();
  room = childController(session.signal);
}

/** Ends the session's work: loads in flight are aborted, retries stop. */
export function endSession() {
  session.abort();
}

export function sessionSignal() {
  return session.signal;
}

/** Another room opens (or none): the last one's loads stop. */
export function beginRoom() {
  room.abort();
  room = childController(session.signal);
  return room.signal;
}

export function roomSignal() {
  return room.signal;
}

/** Waits `ms`, or less if `signal` aborts. */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs `task` and, while it fails and `signal` has not aborted, runs it
 * again with the SDK's jittered backoff; `failed` sees each failure. A
 * refusal (4xx) is not tried again. Resolves to whether it succeeded.
 */
export async function untilDone(task, signal, failed = () => {}) {
  for (let attempt = 1; ; attempt += 1) {
    if (signal.aborted) return false;
    try {
      await task();
      return true;
    } catch (e) {
      if (signal.aborted) return false;
      failed(e);
      if (isRefusal(e)) return false;
      await sleep(backoffDelay(attempt), signal);
    }
  }
}

/** A refusal (4xx) will not succeed when tried again; only failures are. */
export function isRefusal(error) {
  return error instanceof NatterError && error.status >= 400 && error.status < 500;
}

/** Whether a request failed only because its signal aborted. */
export function isAbort(error) {
  return error instanceof NatterError && error.code === 'aborted';
}

export function errorText(error) {
  if (error instanceof NatterError && has(error.code)) return t(error.code);
  return t('unknownError', { message: error?.message || String(error) });
}

export function showNotice(text) {
  const notice = document.getElementById('notice');
  if (notice) notice.textContent = text;
}

/** Shows a failed action's reason in the top bar instead of failing
 *  silently; work stopped on purpose is no failure. */
export function safely(promise) {
  return promise.catch((e) => {
    if (!isAbort(e)) showNotice(errorText(e));
  });
}
