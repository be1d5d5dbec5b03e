// The app embedded in a host site (embed.html: the widget or a room
// panel): signing in with the site's token, talking to the host page (the
// unread count; when the user opens or closes the widget), and renewing
// the session before it ends.

import { Natter } from '/sdk/natter.js';
import { el } from './render.js';
import { t } from './i18n.js';
import { TOKEN_KEY, client, embed, errorText, root, state, storage } from './session.js';

/** The page that frames this one, if it is one of the site's origins. */
const parentOrigin = (() => {
  if (!embed || window.parent === window) return null;
  const origin = location.ancestorOrigins?.[0] || (document.referrer ? new URL(document.referrer).origin : null);
  return origin && embed.origins.includes(origin) ? origin : null;
})();

/** Tells the host page something (the unread count); nobody else. */
export function tellParent(message) {
  if (parentOrigin) window.parent.postMessage(message, parentOrigin);
}

/** Whether the chat is on screen: a widget starts closed, and the host
 *  page says when its user opens or closes it. */
let onScreen = embed?.mode !== 'widget';
export const isOnScreen = () => onScreen;

/** The embedded app's timer for asking the host page for a new token. */
let renewTimer = null;

export function showEmbedProblem(text) {
  root.setAttribute('aria-busy', 'false');
  root.replaceChildren(el('main', { className: 'auth' }, el('p', { role: 'alert' }, text)));
}

/** Signs in with the token the host page passed in the fragment (never
 *  sent to a server log), then forgets it. Resolves to whether there is a
 *  session to start. */
export async function signInEmbedded() {
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
      showEmbedProblem(errorText(e));
      return false;
    }
  }
  if (!client.token) {
    showEmbedProblem(t('embedSignIn'));
    return false;
  }
  return true;
}

// --- session renewal --------------------------------------------------------
// A session made from a site token lasts what the site configures (hours,
// not weeks). Before it ends, the app asks the host page for a fresh
// token (widget.js fetches one from the site's data-token-url), signs in
// with it, moves the event stream to the new session and ends the old.
// A host page that never answers leaves the session to expire as before.

/** Asks for a new token well before `expiresAt` (ms since the epoch). */
export function scheduleRenewal(expiresAt) {
  clearTimeout(renewTimer);
  if (!parentOrigin || !expiresAt) return;
  const left = expiresAt - Date.now();
  const wait = Math.max(10_000, Math.min(left - 5 * 60_000, left / 2));
  renewTimer = setTimeout(() => tellParent({ type: 'natter:token-needed' }), wait);
}

export function stopRenewal() {
  clearTimeout(renewTimer);
}

/** Signs in with a token the host page sent; the old session ends.
 *  `events` moves the event stream: `stop()` says whether it ran. */
async function renewSession(token, events) {
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
  const streaming = events.stop();
  if (sameUser) {
    scheduleRenewal(answer.expiresAt);
    if (streaming) events.start();
  }
  await new Natter({ baseUrl: client.baseUrl, token: old }).logout().catch(() => {});
  // The host page signed someone else in: nothing of the last user's
  // may stay on screen, so start over as the new one.
  if (!sameUser) location.reload();
}

/** Listens to the host page: new tokens, and the widget opening or closing. */
export function listenToHost({ events, onOpen }) {
  addEventListener('message', (event) => {
    if (!parentOrigin || event.origin !== parentOrigin || event.source !== window.parent) return;
    if (event.data?.type === 'natter:token' && typeof event.data.token === 'string') {
      renewSession(event.data.token, events);
    }
    if (event.data?.type === 'natter:open') {
      onScreen = true;
      onOpen();
    }
    if (event.data?.type === 'natter:close') onScreen = false;
  });
}
