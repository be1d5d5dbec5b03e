// The loaded history of one room (a "timeline"): its messages as they
// stand now, how change events alter them, and how reads of history (pages,
// single messages, quotes) are taken in. Pure data, used by state.js.
//
// A read that is in flight while events arrive may have been answered
// before them, or after: the protocol's "an event whose target is not
// loaded changes nothing" would lose the first kind, and applying the
// second kind again could move reaction chips. A page of history says the
// room's head it shows (`head_seq`); each message it brings remembers it
// (`shownAt`), and of the change events heard during the read, or
// delivered by the stream afterwards, exactly those after it are applied.
// A single message read (a quote) says no head: the events heard meanwhile
// are applied again, which ends the same for its text and deletion, all a
// quote shows.

import { addReaction, chipsFrom, chipsToWire, hasReacted, removeReaction } from './reactions.js';

/** The room head a page showed each message at; absent: from the stream. */
const shownAt = new WeakMap();

/** A quote shows the first line of a message, this many characters at most. */
const QUOTE_CHARS = 200;

/** An empty history of a room, before its first page. */
export function newTimeline(roomId) {
  return {
    roomId,
    items: [], // messages and room events, ascending by seq
    bySeq: new Map(),
    hasMore: null, // older history exists; null until the first page
    loadingOlder: false,
    lastEventSeq: 0, // the newest stream event applied: others up to it are repeats
    reads: 0, // history reads in flight
    heard: [], // change events that arrived during them
    quotes: new Map(), // seq → what a reply shows of a message not loaded
  };
}

/** The loaded history of a room, or null. */
export function timelineOf(state, roomId) {
  return state.timelines.get(roomId) ?? null;
}

/** The room's history, created empty if there is none yet, so that events
 *  arriving while its first page is read are kept. */
export function openTimeline(state, roomId) {
  let timeline = state.timelines.get(roomId);
  if (!timeline) {
    timeline = newTimeline(roomId);
    state.timelines.set(roomId, timeline);
  }
  return timeline;
}

/** Forgets a room's loaded history (all rooms' without `roomId`): after a
 *  resync or a leave it may have a gap. Reads in flight for it are ignored. */
export function dropTimeline(state, roomId) {
  if (roomId === undefined) state.timelines.clear();
  else state.timelines.delete(roomId);
}

/** What one application of events or of a read changed. */
export function newChanges() {
  return {
    rooms: new Set(), // room-list rows to redraw
    added: new Map(), // room id → seqs new in its history
    changed: new Map(), // room id → seqs of messages (or quotes in them) changed in place
    reloadRooms: null, // ms within which to reload the room list, or null
    members: new Set(), // rooms whose membership or settings changed
    left: new Set(), // rooms the user left (their history is dropped)
    leftActive: false,
    sent: new Map(), // client msg id → room id: own messages no longer pending
    notify: [], // new messages of others
    presence: false,
    typing: new Set(), // rooms whose typing notices changed
    receipts: new Set(), // direct rooms the other person read further in
    notifications: new Set(), // rooms whose notification level changed elsewhere
  };
}

/** Notes `seq` of `roomId` in one of the maps of changes. */
export function mark(map, roomId, seq) {
  if (!map.has(roomId)) map.set(roomId, new Set());
  map.get(roomId).add(seq);
}

/** The first line of a message, as a quote shows it. */
export function firstLine(text) {
  // The server's rule for reply_preview: the first line that shows
  // something, cut with an ellipsis.
  const line = String(text ?? '').split(/[\n\r]/).find((l) => l.trim() !== '') ?? '';
  const chars = [...line];
  return chars.length > QUOTE_CHARS ? `${chars.slice(0, QUOTE_CHARS).join('')}…` : line;
}

/** How a message or room event is kept: a message as it stands now. */
export function recordOf(event) {
  if (event.type !== 'message') {
    const { reply_preview: _preview, ...rest } = event;
    return rest;
  }
  const deleted = Boolean(event.deleted);
  return {
    type: 'message',
    room_id: event.room_id,
    seq: event.seq,
    ts: event.ts,
    sender_id: event.sender_id,
    sender_name: event.sender_name,
    client_msg_id: event.client_msg_id,
    text: deleted ? '' : event.text,
    reply_to: deleted ? null : (event.reply_to ?? null),
    edited_at: deleted ? null : (event.edited_at ?? null),
    deleted,
    chips: deleted ? [] : chipsFrom(event.reactions),
  };
}

/** What a reply shows of a message: sender, first line, whether deleted. */
function quoteOf(message) {
  return {
    seq: message.seq,
    sender_id: message.sender_id,
    sender_name: message.sender_name,
    text: message.deleted ? '' : firstLine(message.text),
    deleted: Boolean(message.deleted),
  };
}

/** Adds a record in seq order; false if one with its seq is known. */
export function insert(timeline, record) {
  if (timeline.bySeq.has(record.seq)) return false;
  const items = timeline.items;
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid].seq < record.seq) lo = mid + 1;
    else hi = mid;
  }
  items.splice(lo, 0, record);
  timeline.bySeq.set(record.seq, record);
  // Loaded now: its replies quote it from here.
  timeline.quotes.delete(record.seq);
  return true;
}

/** Marks a message changed, and the replies that quote it. */
function touch(timeline, seq, changes) {
  mark(changes.changed, timeline.roomId, seq);
  for (const item of timeline.items) {
    if (item.reply_to === seq) mark(changes.changed, timeline.roomId, item.seq);
  }
}

/** The timeline part of a change event; also used to apply one again. */
export function applyChange(timeline, event, changes) {
  const target = timeline.bySeq.get(event.target_seq);
  if (!target) {
    changeQuote(timeline, event, changes);
    return;
  }
  // Nothing happens to a deleted message, and what a page showed
  // already has every change up to the head it was read at.
  if (target.type !== 'message' || target.deleted || event.seq <= (shownAt.get(target) ?? 0)) return;
  switch (event.type) {
    case 'message_edited':
      // An edit never empties a message: "" means it was deleted since,
      // and its message_deleted follows.
      if (!event.text) return;
      target.text = event.text;
      target.edited_at = event.ts;
      touch(timeline, target.seq, changes);
      return;
    case 'message_deleted':
      Object.assign(target, { deleted: true, text: '', edited_at: null, reply_to: null, chips: [] });
      touch(timeline, target.seq, changes);
      return;
    case 'reaction_added':
    case 'reaction_removed': {
      const changed = event.type === 'reaction_added'
        ? addReaction(target.chips, event.reaction, event.sender_id)
        : removeReaction(target.chips, event.reaction, event.sender_id);
      if (changed) mark(changes.changed, timeline.roomId, target.seq);
      return;
    }
    default:
  }
}

/** What a reply shows of a message that is not loaded follows its edits. */
function changeQuote(timeline, event, changes) {
  const quote = timeline.quotes.get(event.target_seq);
  if (!quote || quote.deleted || quote.missing) return;
  if (event.type === 'message_edited' && event.text) quote.text = firstLine(event.text);
  else if (event.type === 'message_deleted') Object.assign(quote, { deleted: true, text: '' });
  else return;
  touch(timeline, event.target_seq, changes);
}

/** Starts a read of a room's history; null if none is loaded. */
export function beginRead(state, roomId) {
  const timeline = state.timelines.get(roomId);
  if (!timeline) return null;
  timeline.reads += 1;
  return { timeline, from: timeline.heard.length };
}

/** Ends a read: the change events heard since it began. */
function endRead({ timeline, from }) {
  const heard = timeline.heard.slice(from);
  timeline.reads = Math.max(0, timeline.reads - 1);
  if (timeline.reads === 0) timeline.heard = [];
  return heard;
}

/** A read that failed. */
export function cancelRead(state, read) {
  if (read) endRead(read);
}

/**
 * Takes in what a read brought: `messages` (a page of history, in current
 * state; one already loaded is kept as it is), `quotes` (messages read
 * only for what replies show of them), `hasMore`, and `asOf`, the room's
 * head the page shows (0 when unknown). Returns the changes,
 * or null if the history was dropped meanwhile (the answer would leave a
 * hole).
 */
export function finishRead(state, read, { messages = [], quotes = [], hasMore, asOf = 0 } = {}) {
  if (!read) return null;
  const heard = endRead(read);
  const { timeline } = read;
  if (state.timelines.get(timeline.roomId) !== timeline) return null;
  const changes = newChanges();
  const fresh = new Set();
  for (const item of messages) {
    const record = recordOf(item);
    if (!insert(timeline, record)) continue;
    if (asOf) shownAt.set(record, asOf);
    mark(changes.added, timeline.roomId, record.seq);
    fresh.add(record.seq);
    const preview = item.reply_preview;
    if (preview && !timeline.bySeq.has(preview.seq)) {
      timeline.quotes.set(preview.seq, { ...preview });
      fresh.add(preview.seq);
    }
  }
  for (const message of quotes) {
    if (timeline.bySeq.has(message.seq)) continue;
    timeline.quotes.set(message.seq, quoteOf(message));
    fresh.add(message.seq);
    touch(timeline, message.seq, changes);
  }
  if (hasMore !== undefined) timeline.hasMore = hasMore;
  // Messages the page brought skip what it already shows (`shownAt`).
  const replayed = newChanges();
  for (const event of heard) {
    if (fresh.has(event.target_seq)) applyChange(timeline, event, replayed);
  }
  for (const seq of replayed.changed.get(timeline.roomId) || []) mark(changes.changed, timeline.roomId, seq);
  return changes;
}

/** A message the user sent, from the answer to the send: kept unless known. */
export function addSent(state, message) {
  const timeline = state.timelines.get(message.room_id);
  return Boolean(timeline && insert(timeline, recordOf(message)));
}

/** Notes that a quoted message cannot be read (so it is not asked again). */
export function quoteMissing(state, roomId, seq) {
  const timeline = state.timelines.get(roomId);
  if (timeline && !timeline.bySeq.has(seq)) timeline.quotes.set(seq, { seq, missing: true });
}

/** A loaded message (or room event) by seq, or null. */
export function itemAt(state, roomId, seq) {
  return state.timelines.get(roomId)?.bySeq.get(seq) ?? null;
}

/**
 * What a reply to `seq` shows: `{sender_id, sender_name, text, deleted}`
 * from the message if loaded, else from a preview or an earlier read;
 * `{missing: true}` if it cannot be read; null if unknown yet.
 */
export function quoteFor(state, roomId, seq) {
  const timeline = state.timelines.get(roomId);
  if (!timeline) return null;
  const target = timeline.bySeq.get(seq);
  if (target?.type === 'message') return quoteOf(target);
  return timeline.quotes.get(seq) ?? null;
}

/** The user's last message in the room that is not deleted, or null. */
export function lastOwnMessage(state, roomId) {
  const items = state.timelines.get(roomId)?.items || [];
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i];
    if (item.type === 'message' && item.sender_id === state.me?.id && !item.deleted) return item;
  }
  return null;
}

/** A message's reactions as the server sends them. */
export function reactionsOf(message) {
  return chipsToWire(message.chips || []);
}

/** Whether `userId` reacted to the message with `reaction`. */
export function reacted(message, reaction, userId) {
  return hasReacted(message.chips || [], reaction, userId);
}

/** A room's loaded history as the server would send it now (no previews). */
export function currentItems(state, roomId) {
  return (state.timelines.get(roomId)?.items || []).map((item) => {
    if (item.type !== 'message') return { ...item };
    const { chips, ...rest } = item;
    return { ...rest, reactions: chipsToWire(chips) };
  });
}
