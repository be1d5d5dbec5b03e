// The rules behind typing notices, mentions, notification choices and
// "Seen", as plain functions with no DOM, so web/tests/attention.test.mjs
// runs them under Node. The views (typing.js, mentions.js, seen.js,
// room-notify.js) draw what these decide.

// --- mentions ----------------------------------------------------------------

/** Mentions counted in one message at most (the server's MAX_MENTIONS). */
const MAX_MENTIONS = 50;
/** A token as the server reads it (mentions.rs): 1 to 18 digits, no leading zero. */
const TOKEN = /<@([1-9]\d{0,17})>/g;
/** What a word is made of, on either side of a mention. */
const WORD = /[\p{L}\p{N}_]/u;
/** Scripts written without spaces, where a name runs into the next word
 *  ("@韩梅梅你好"); in others a letter after the name makes it another word. */
const SPACELESS = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\p{Script=Thai}]/u;

/** The tokens of `text` the server counts, in order: each token until 50
 *  different people are named; the ones after that are plain text. */
function* tokensOf(text) {
  const seen = new Set();
  for (const match of String(text ?? '').matchAll(TOKEN)) {
    const id = Number(match[1]);
    seen.add(id);
    yield { index: match.index, length: match[0].length, id };
    if (seen.size === MAX_MENTIONS) return;
  }
}

/** The users `text` mentions, each once, in the order first named: the
 *  server's rule (mentions.rs), for messages that come without `mentions`. */
export function mentionsOf(text) {
  return [...new Set([...tokensOf(text)].map((token) => token.id))];
}

/** Whether a message mentions user `me` (its `mentions`, else its text). */
export function mentionsMe(message, me) {
  if (me === undefined || me === null || !message) return false;
  const ids = Array.isArray(message.mentions) ? message.mentions : mentionsOf(message.text);
  return ids.includes(me);
}

/**
 * Splits `text` into plain strings and mentions `{ id }`, in order, so a
 * renderer can build each as its own node (never as markup). Only what
 * the server counts as a mention is one.
 */
export function splitMentions(text) {
  const source = String(text ?? '');
  const parts = [];
  let last = 0;
  for (const { index, length, id } of tokensOf(source)) {
    if (index > last) parts.push(source.slice(last, index));
    parts.push({ id });
    last = index + length;
  }
  if (last < source.length) parts.push(source.slice(last));
  return parts;
}

/** Text with every token shown as `@` and the name `nameOf(id)` gives:
 *  for previews, quotes and notifications, which show plain text. */
export function namesForTokens(text, nameOf) {
  return splitMentions(text).map((p) => (typeof p === 'string' ? p : `@${nameOf(p.id)}`)).join('');
}

/** Whether an `@` at `at` begins a word (at the start, or after a space
 *  or punctuation): the composer's list opens there, and only there does
 *  a name become a mention. */
export function beginsWord(text, at) {
  return at === 0 || !WORD.test(text[at - 1]);
}

/** Whether a name that ends at `end` ends a word there. */
function endsWord(text, end) {
  if (end >= text.length || !WORD.test(text[end])) return true;
  return SPACELESS.test(text[end - 1]) || SPACELESS.test(text[end]);
}

/** Where the composer's text names someone of `mentions`: `{ at, name }`
 *  for each `@Name` that begins a word and ends one, the longest name
 *  that fits first (so "@Li Lei" is never "@Li" followed by " Lei"). */
function* namedIn(text, mentions) {
  const names = [...new Set(mentions.map((m) => m.name).filter(Boolean))].sort((a, b) => b.length - a.length);
  if (names.length === 0) return;
  let next = 0;
  for (let at = text.indexOf('@'); at >= 0; at = text.indexOf('@', at + 1)) {
    if (at < next || !beginsWord(text, at)) continue;
    const name = names.find((n) => text.startsWith(n, at + 1) && endsWord(text, at + 1 + n.length));
    if (name === undefined) continue;
    yield { at, name };
    next = at + 1 + name.length;
  }
}

/**
 * What the composer sends: each `@Name` of a mention it holds
 * (`mentions`: `{ name, id }` in the order they stand in the text)
 * becomes `<@id>`. Two people of one name keep their own ids: the k-th
 * `@Name` is the k-th mention of that name (and any later one the last).
 */
export function toTokens(text, mentions) {
  let out = '';
  let last = 0;
  const used = new Map(); // name → how many of its mentions the text used
  for (const { at, name } of namedIn(text, mentions)) {
    const same = mentions.filter((m) => m.name === name);
    const k = used.get(name) ?? 0;
    used.set(name, k + 1);
    out += `${text.slice(last, at)}<@${same[Math.min(k, same.length - 1)].id}>`;
    last = at + 1 + name.length;
  }
  return out + text.slice(last);
}

/** The composer's text for a stored text (an edit, a kept draft): tokens
 *  back to `@Name`, and the mentions, in order, that toTokens turns back
 *  into the same tokens. */
export function fromTokens(text, nameOf) {
  const mentions = [];
  const shown = splitMentions(text).map((p) => {
    if (typeof p === 'string') return p;
    const name = nameOf(p.id);
    mentions.push({ name, id: p.id });
    return `@${name}`;
  }).join('');
  return { text: shown, mentions };
}

/** A mention picked from the list: `{ name, id }` goes into `mentions`
 *  at its place among those of the same name, `text` being the composer's
 *  text with the `@Name` that starts at `at` already in it. */
export function addMention(mentions, text, at, name, id) {
  let before = 0;
  for (const span of namedIn(text, [...mentions, { name }])) {
    if (span.at >= at) break;
    if (span.name === name) before += 1;
  }
  const same = mentions.flatMap((m, i) => (m.name === name ? [i] : []));
  mentions.splice(same[before] ?? mentions.length, 0, { name, id });
}

/**
 * The mention being typed at the caret: `{ start, query }` when an `@`
 * that begins a word (at the start, or after a space or punctuation)
 * comes before the caret on the same line, at most 32 characters back;
 * else null. The query may hold spaces: names do ("Li Lei").
 */
export function mentionQuery(value, caret) {
  const before = value.slice(0, caret);
  const at = before.lastIndexOf('@');
  if (at < 0) return null;
  const query = before.slice(at + 1);
  if (query.length > 32 || /[\n\r]/.test(query) || query.startsWith(' ')) return null;
  if (!beginsWord(before, at)) return null;
  return { start: at, query };
}

/** Room members whose display name or username matches `query`: those
 *  whose name (or a word of it) starts with it first, then those that
 *  merely contain it; never `me`; at most `limit`. */
export function matchMembers(members, query, me, limit = 8) {
  const q = query.toLowerCase();
  const scored = [];
  for (const m of members || []) {
    if (m.id === me) continue;
    const names = [m.display_name || '', m.username || ''].map((s) => s.toLowerCase());
    let score = -1;
    for (const name of names) {
      if (name.startsWith(q)) score = Math.max(score, 2);
      else if (name.split(/\s+/).some((w) => w.startsWith(q))) score = Math.max(score, 1);
      else if (name.includes(q)) score = Math.max(score, 0);
    }
    if (score >= 0) scored.push({ m, score });
  }
  scored.sort((a, b) => b.score - a.score || (a.m.display_name || '').localeCompare(b.m.display_name || ''));
  return scored.slice(0, limit).map((s) => s.m);
}

// --- typing -------------------------------------------------------------------

/** How often, at most, the client says it is still typing in one room. */
export const TYPING_INTERVAL_MS = 3000;

/**
 * Decides when to tell a room the user is typing: `input(roomId, text,
 * now)` answers 'start' (send `true`), 'stop' (send `false`) or null
 * (send nothing). The first keystroke sends at once, then at most one
 * `true` per interval; emptying the composer without sending sends one
 * `false`; `sent(roomId)` forgets the room (a message ends the notice
 * on the server, so the next keystroke announces again at once).
 */
export class TypingThrottle {
  constructor(interval = TYPING_INTERVAL_MS) {
    this.interval = interval;
    this.rooms = new Map(); // room id → time the last `true` was sent
  }

  input(roomId, text, now) {
    const last = this.rooms.get(roomId);
    if (!text.trim()) {
      if (last === undefined) return null;
      this.rooms.delete(roomId);
      return 'stop';
    }
    if (last !== undefined && now - last < this.interval) return null;
    this.rooms.set(roomId, now);
    return 'start';
  }

  sent(roomId) {
    this.rooms.delete(roomId);
  }
}

/**
 * Applies a typing item of the stream to `typing` (Map room id → Map
 * user id → local time it expires): a notice stands for `expires_in_ms`
 * unless renewed; `typing: false` ends it. Returns whether it changed
 * who is shown typing. One's own notices are never kept.
 */
export function applyTyping(typing, item, me, now) {
  if (item.user_id === me) return false;
  let room = typing.get(item.room_id);
  if (item.typing && item.expires_in_ms > 0) {
    if (!room) typing.set(item.room_id, room = new Map());
    const had = room.has(item.user_id);
    room.set(item.user_id, now + item.expires_in_ms);
    if (Number.isInteger(item.seq)) noticeSeqs(typing).set(`${item.room_id}:${item.user_id}`, item.seq);
    return !had;
  }
  return stopTyping(typing, item.room_id, item.user_id);
}

// The room's head each shown notice was announced at, by "room:user":
// kept beside `typing` without changing its shape.
const SEQS = new WeakMap();
const noticeSeqs = (typing) => {
  if (!SEQS.has(typing)) SEQS.set(typing, new Map());
  return SEQS.get(typing);
};

/**
 * Ends a typing notice: `false` came, or (with `messageSeq`) its author's
 * message arrived — unless the notice was announced after that message
 * (a message delivered late must not end a newer notice).
 */
export function stopTyping(typing, roomId, userId, messageSeq) {
  const key = `${roomId}:${userId}`;
  const announcedAt = noticeSeqs(typing).get(key);
  if (messageSeq !== undefined && announcedAt !== undefined && announcedAt >= messageSeq) return false;
  const room = typing.get(roomId);
  if (!room?.delete(userId)) return false;
  noticeSeqs(typing).delete(key);
  if (room.size === 0) typing.delete(roomId);
  return true;
}

/** Drops notices that expired by `now`; returns whether any did. */
export function pruneTyping(typing, now) {
  let pruned = false;
  for (const [roomId, room] of typing) {
    for (const [userId, until] of room) {
      if (until <= now) {
        room.delete(userId);
        pruned = true;
      }
    }
    if (room.size === 0) typing.delete(roomId);
  }
  return pruned;
}

/** Who is typing in `roomId` now, in the order they began. */
export function typersOf(typing, roomId, now) {
  return [...(typing.get(roomId) || [])].filter(([, until]) => until > now).map(([id]) => id);
}

/** The earliest expiry of any notice, or null: when to look again. */
export function nextExpiry(typing) {
  let next = null;
  for (const room of typing.values()) for (const until of room.values()) next = next === null ? until : Math.min(next, until);
  return next;
}

/** Which words say who types: [key, vars] for i18n's `t`, or null. */
export function typingWords(names) {
  if (names.length === 0) return null;
  if (names.length === 1) return ['typingOne', { name: names[0] }];
  if (names.length === 2) return ['typingTwo', { a: names[0], b: names[1] }];
  return ['typingMany', {}];
}

// --- notifications and "Seen" ------------------------------------------------

/** A room's notification level as the room list gives it, or its default:
 *  direct conversations notify of everything, groups of mentions. */
export function levelOf(room) {
  if (room?.notifications === 'all' || room?.notifications === 'mentions' || room?.notifications === 'none') {
    return room.notifications;
  }
  return room?.kind === 'direct' ? 'all' : 'mentions';
}

/** Whether a new message earns a desktop notification under the room's
 *  level: 'all' → any of others', 'mentions' → those naming me, 'none' → none. */
export function shouldNotify(room, message, me) {
  if (!message || message.sender_id === me || message.deleted) return false;
  const level = levelOf(room);
  if (level === 'all') return true;
  if (level === 'mentions') return mentionsMe(message, me);
  return false;
}

/**
 * The seq of the message that shows "Seen": in a direct conversation
 * whose receipts the server shares, the user's own last message, once
 * the other person has read up to it; else null. `items` is the loaded
 * history in order.
 */
export function seenSeq(room, items, me) {
  if (room?.kind !== 'direct' || room.peer_read_seq === null || room.peer_read_seq === undefined) return null;
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i];
    if (item.type === 'message' && item.sender_id === me && !item.deleted) {
      return room.peer_read_seq >= item.seq ? item.seq : null;
    }
  }
  return null;
}
