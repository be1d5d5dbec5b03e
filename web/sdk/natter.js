// natter JS SDK: the client side of natter's HTTP API and event stream.
//
// A plain ES module with no dependencies, served by natter at
// /sdk/natter.js. It runs in browsers and in Node 18+ (anything with
// fetch and AbortController). docs/sdk.md shows how to use it; the wire
// protocol it speaks is docs/protocol.md.

/** An error answer from natter: HTTP status plus the API's stable code. */
export class NatterError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.name = 'NatterError';
    this.status = status;
    this.code = code;
  }
}

/** Codes after which the event stream stops for good: the session is gone. */
const FATAL_CODES = new Set([
  'session_ended',
  'session_replaced',
  'session_expired',
  'unauthenticated',
]);

/** A fresh client message id; a retry reuses it so a message is stored once. */
export function newClientMsgId() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

/** Waits `ms`, or until `signal` aborts. */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** The path of one reaction to one message. */
function reactionPath(roomId, seq, reaction) {
  return `/api/v1/rooms/${roomId}/messages/${seq}/reactions/${encodeURIComponent(reaction)}`;
}

/** Exponential backoff with full jitter: 0.5 s doubling up to 30 s. */
export function backoffDelay(attempt, { base = 500, max = 30000, random = Math.random } = {}) {
  return Math.floor(random() * Math.min(max, base * 2 ** attempt));
}

/**
 * The long-poll transport: one `GET /api/v1/events` at a time. Other
 * transports (SSE, WebSocket) implement the same `next()` and plug in
 * without changes to the rest of the SDK or the app.
 */
export function longPollTransport({ timeoutSeconds = 30 } = {}) {
  return {
    name: 'long-poll',
    async next(client, cursor, signal, { watch = [] } = {}) {
      const rooms = watch.length ? `&watch=${watch.join(',')}` : '';
      const query = cursor
        ? `?cursor=${encodeURIComponent(cursor)}&timeout=${timeoutSeconds}${rooms}`
        : '';
      // Give up a little after the server's own timeout would have answered.
      return client.request('GET', `/api/v1/events${query}`, undefined, {
        signal,
        timeoutMs: (timeoutSeconds + 15) * 1000,
      });
    },
  };
}

/** The rooms a poll may name in `watch`: room ids, each once, at most 8
 *  (the server's limit), so a longer list never makes every poll fail. */
function watchList(roomIds) {
  return [...new Set([roomIds].flat().filter((id) => Number.isInteger(id) && id > 0))].slice(0, 8);
}

/** A natter client for one user session. */
export class Natter {
  /**
   * @param {object} options
   * @param {string} [options.baseUrl] natter's address; '' for the page's own origin
   * @param {string} [options.token] a session token from an earlier login
   * @param {object} [options.transport] how events arrive (default: long polling)
   * @param {Function} [options.fetch] a fetch implementation (default: the global one)
   */
  constructor({ baseUrl = '', token = null, transport, fetch } = {}) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
    this.token = token;
    this.transport = transport || longPollTransport();
    this.fetch = fetch || globalThis.fetch.bind(globalThis);
  }

  /** Sends one API request; resolves with the JSON answer or throws NatterError. */
  async request(method, path, body, { signal, timeoutMs = 20000 } = {}) {
    const headers = {};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    let response;
    let text;
    try {
      response = await this.fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        // API answers are never cached, and must not wait for each other:
        // browsers hold back a GET while an identical one is in flight
        // (their cache lock), which would stall a second tab's poll.
        cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
      });
      // Read the body under the same timeout: a stalled body must not hang.
      text = await response.text();
    } catch (e) {
      throw new NatterError(0, signal?.aborted ? 'aborted' : 'network_error', String(e?.message || e));
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    let json = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        throw new NatterError(response.status, 'bad_response', 'the server answered with something other than JSON');
      }
    }
    if (!response.ok) {
      const error = json?.error || {};
      throw new NatterError(response.status, error.code || 'http_error', error.message || response.statusText);
    }
    return json;
  }

  // --- accounts -------------------------------------------------------

  /** Creates an account (it does not log in). */
  async register(username, password, displayName) {
    const body = { username, password };
    if (displayName !== undefined) body.display_name = displayName;
    return (await this.request('POST', '/api/v1/users', body)).user;
  }

  /** Logs in; the client keeps the token for later calls. */
  async login(username, password) {
    const answer = await this.request('POST', '/api/v1/sessions', { username, password });
    this.token = answer.token;
    return { user: answer.user, token: answer.token, expiresAt: answer.expires_at };
  }

  /**
   * Exchanges a token signed by a host site's backend for a session
   * (docs/embedding.md); `site` is the site's id in natter's configuration.
   */
  async ssoLogin(token, site) {
    const body = { token };
    if (site) body.site = site;
    const answer = await this.request('POST', '/api/v1/sessions/sso', body);
    this.token = answer.token;
    return { user: answer.user, token: answer.token, expiresAt: answer.expires_at };
  }

  /** Ends this session everywhere it is used; the event stream stops with `session_ended`. */
  async logout() {
    await this.request('DELETE', '/api/v1/sessions/current');
    this.token = null;
  }

  async me() {
    return (await this.request('GET', '/api/v1/me')).user;
  }

  /** Changes display name and/or avatar URL ('' returns to the generated avatar). */
  async updateProfile({ displayName, avatarUrl } = {}) {
    const body = {};
    if (displayName !== undefined) body.display_name = displayName;
    if (avatarUrl !== undefined) body.avatar_url = avatarUrl;
    return (await this.request('PATCH', '/api/v1/me', body)).user;
  }

  /** Changes the password; other sessions end unless told otherwise. */
  async changePassword(currentPassword, newPassword, { endOtherSessions = true } = {}) {
    return this.request('POST', '/api/v1/me/password', {
      current_password: currentPassword,
      new_password: newPassword,
      end_other_sessions: endOtherSessions,
    });
  }

  async user(id) {
    return (await this.request('GET', `/api/v1/users/${id}`)).user;
  }

  /** People of the caller's community whose name holds `q`, to open a direct conversation with. */
  async searchPeople(q, { limit, signal } = {}) {
    const params = new URLSearchParams({ q });
    if (limit !== undefined) params.set('limit', String(limit));
    return (await this.request('GET', `/api/v1/users?${params}`, undefined, { signal })).users;
  }

  // --- conversations --------------------------------------------------

  /**
   * The caller's rooms with their role, unread count, last message (as it
   * stands now: edited, or `deleted`) and online count.
   */
  async rooms({ signal } = {}) {
    return (await this.request('GET', '/api/v1/rooms', undefined, { signal })).rooms;
  }

  async publicRooms() {
    return (await this.request('GET', '/api/v1/rooms/public')).rooms;
  }

  async room(id) {
    return (await this.request('GET', `/api/v1/rooms/${id}`)).room;
  }

  async createRoom(title, { visibility = 'private' } = {}) {
    return (await this.request('POST', '/api/v1/rooms', { title, visibility })).room;
  }

  async updateRoom(id, { title, visibility } = {}) {
    return (await this.request('PATCH', `/api/v1/rooms/${id}`, { title, visibility })).room;
  }

  async joinRoom(id) {
    return (await this.request('POST', `/api/v1/rooms/${id}/join`, {})).room;
  }

  async leaveRoom(id) {
    await this.request('POST', `/api/v1/rooms/${id}/leave`, {});
  }

  async invite(roomId, userId) {
    await this.request('POST', `/api/v1/rooms/${roomId}/members`, { user_id: userId });
  }

  /**
   * A page of the room's members by name: `{members, online_count,
   * member_count, member_count_seq, next}`; each member has an `online`
   * flag, and the count holds every join and leave up to
   * `member_count_seq` (apply only newer ones to it). Pass `next`
   * as `after` for the page after; `q` finds members by part of their
   * name; `limit` is 1..=500 (200 when not given).
   */
  async members(roomId, { after, q, limit, signal } = {}) {
    const params = new URLSearchParams();
    if (after !== undefined && after !== null) params.set('after', String(after));
    if (q) params.set('q', q);
    if (limit !== undefined) params.set('limit', String(limit));
    const query = params.size ? `?${params}` : '';
    return this.request('GET', `/api/v1/rooms/${roomId}/members${query}`, undefined, { signal });
  }

  /** The one direct conversation with `userId`, created if needed. */
  async openDirect(userId) {
    return (await this.request('POST', '/api/v1/direct', { user_id: userId })).room;
  }

  // --- messages -------------------------------------------------------

  /**
   * A page of history before `before` (or the newest), oldest first:
   * `{messages, has_more}`. Messages come as they stand now (edited text,
   * `deleted`, `reactions`, `reply_preview`); edits, deletions and
   * reactions themselves are events of the stream only.
   */
  async history(roomId, { before, limit = 50, signal } = {}) {
    const params = new URLSearchParams({ limit: String(limit) });
    if (before !== undefined) params.set('before', String(before));
    return this.request('GET', `/api/v1/rooms/${roomId}/messages?${params}`, undefined, { signal });
  }

  /** One message as it stands now, with its `reply_preview` (for a quote
   *  whose original is not loaded, or to jump to it). */
  async message(roomId, seq, { signal } = {}) {
    return (await this.request('GET', `/api/v1/rooms/${roomId}/messages/${seq}`, undefined, { signal })).message;
  }

  /**
   * Sends a message and resolves with the stored message once the server
   * has committed it. Network errors and server errors are retried with
   * the same client message id, so a retry never stores a second copy;
   * refusals (4xx) are not retried. `replyTo` is the seq of the message
   * this one answers.
   */
  async send(roomId, text, { clientMsgId = newClientMsgId(), retries = 5, signal, replyTo } = {}) {
    const body = { client_msg_id: clientMsgId, text };
    if (replyTo !== undefined && replyTo !== null) body.reply_to = replyTo;
    for (let attempt = 0; ; attempt++) {
      try {
        const answer = await this.request('POST', `/api/v1/rooms/${roomId}/messages`, body, { signal });
        return answer.message;
      } catch (e) {
        const retryable = e instanceof NatterError && (e.status === 0 || e.status >= 500) && e.code !== 'aborted';
        if (!retryable || attempt >= retries) throw e;
        await sleep(backoffDelay(attempt), signal);
      }
    }
  }

  /**
   * Gives one's own message a new text; resolves with `{message, changed}`
   * (`changed` false when the text was the same: nothing happened).
   */
  async editMessage(roomId, seq, text, { signal } = {}) {
    return this.request('PATCH', `/api/v1/rooms/${roomId}/messages/${seq}`, { text }, { signal });
  }

  /** Deletes a message (one's own, or any as the room's owner or admin);
   *  resolves with `{message, changed}`. */
  async deleteMessage(roomId, seq, { signal } = {}) {
    return this.request('DELETE', `/api/v1/rooms/${roomId}/messages/${seq}`, undefined, { signal });
  }

  /** Adds one's reaction (one emoji, or an emoticon code such as
   *  `:smile:`) to a message; resolves with `{message, changed}`. */
  async react(roomId, seq, reaction, { signal } = {}) {
    return this.request('PUT', reactionPath(roomId, seq, reaction), undefined, { signal });
  }

  /** Takes one's reaction back; resolves with `{message, changed}`. */
  async unreact(roomId, seq, reaction, { signal } = {}) {
    return this.request('DELETE', reactionPath(roomId, seq, reaction), undefined, { signal });
  }

  async markRead(roomId, seq) {
    return (await this.request('POST', `/api/v1/rooms/${roomId}/read`, { seq })).read_seq;
  }

  /**
   * Tells the room the user is typing (or, with `false`, stopped without
   * sending). Call it at most once per 3 s per room while keys are
   * pressed: a notice stands for 6 s. Resolves with whether the room was
   * told (the server holds back notices that come too often).
   */
  async typing(roomId, typing = true) {
    return (await this.request('POST', `/api/v1/rooms/${roomId}/typing`, { typing })).announced;
  }

  /**
   * Which messages of a room notify the user on every device: 'all',
   * 'mentions', 'none', or 'default'. Resolves with the level in force.
   */
  async setNotifications(roomId, level) {
    return (await this.request('PUT', `/api/v1/rooms/${roomId}/notifications`, { level })).level;
  }

  // --- events ---------------------------------------------------------

  /**
   * Runs the event loop until stopped: takes a cursor, then waits for
   * events with it, forever, resuming exactly after every error.
   *
   * handlers:
   * - onReady(cursor): the stream is live; load what the page shows now
   * - onEvents({events, ephemeral, ephemeralGap}): something happened
   * - onState(state): 'connecting' | 'connected' | 'reconnecting' | 'stopped'
   * - onResync(): the cursor could not be served; reload what the page shows
   * - onStop(code): the session ended ('session_ended', 'session_replaced', …)
   *
   * Returns a function that stops the loop; its `retryNow()` ends a
   * reconnect wait at once (a "Retry now" button), and `watch(roomIds)`
   * names the rooms the page has open (at most 8): in a big room,
   * presence and typing reach only those looking at it
   * (docs/protocol.md, "Presence"). A waiting poll is renewed at once,
   * from the same cursor, when the rooms change.
   */
  subscribe(handlers = {}, { cursor = null, watch = [] } = {}) {
    const controller = new AbortController();
    const signal = controller.signal;
    const call = (name, ...args) => {
      try {
        handlers[name]?.(...args);
      } catch (e) {
        // A failing handler must not kill the stream.
        queueMicrotask(() => { throw e; });
      }
    };
    // Aborted to cut one backoff wait short.
    let wait = new AbortController();
    // Aborted to renew a waiting poll (the watched rooms changed).
    let renew = new AbortController();
    let watching = watchList(watch);
    let state = null;
    const setState = (next) => {
      if (next !== state) {
        state = next;
        call('onState', next);
      }
    };
    const run = async () => {
      let attempt = 0;
      let resyncs = 0;
      setState('connecting');
      while (!signal.aborted) {
        try {
          renew = new AbortController();
          let answer;
          try {
            answer = await this.transport.next(this, cursor, AbortSignal.any([signal, renew.signal]), {
              watch: watching,
            });
          } catch (e) {
            // Renewed on purpose: the same cursor again, with the new rooms.
            if (renew.signal.aborted && !signal.aborted) continue;
            throw e;
          }
          if (signal.aborted) break;
          attempt = 0;
          setState('connected');
          const first = cursor === null;
          cursor = answer.cursor;
          if (first) {
            call('onReady', cursor);
            continue;
          }
          resyncs = 0;
          if (answer.events.length || answer.ephemeral.length || answer.ephemeral_gap) {
            call('onEvents', {
              events: answer.events,
              ephemeral: answer.ephemeral,
              ephemeralGap: answer.ephemeral_gap,
            });
          }
        } catch (e) {
          if (signal.aborted) break;
          if (e instanceof NatterError && FATAL_CODES.has(e.code)) {
            setState('stopped');
            call('onStop', e.code);
            return;
          }
          if (e instanceof NatterError && e.code === 'resync_required') {
            cursor = null;
            call('onResync');
            // Resyncs in a row (a lagging node behind a load balancer)
            // back off like errors, so the page does not reload in a loop.
            if (resyncs++ > 0) await sleep(backoffDelay(resyncs), signal);
            continue;
          }
          setState('reconnecting');
          wait = new AbortController();
          await sleep(backoffDelay(attempt++), AbortSignal.any([signal, wait.signal]));
        }
      }
      setState('stopped');
    };
    run();
    const stop = () => controller.abort();
    stop.retryNow = () => wait.abort();
    stop.watch = (roomIds) => {
      const next = watchList(roomIds);
      if (next.join(',') === watching.join(',')) return;
      watching = next;
      renew.abort();
    };
    return stop;
  }
}
