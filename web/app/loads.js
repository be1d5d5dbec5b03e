// Reading what the screen shows from the server: the room list, a room's
// history and member list (a page at a time), single messages (for quotes). Every load the
// event stream asks for is retried with backoff while still wanted, never
// after a 4xx.

import {
  beginRead, cancelRead, dropTimeline, finishRead, openTimeline, quoteMissing, timelineOf,
} from './state.js';
import { MEMBER_PAGE, WHOLE_PAGE, appendPage, newList } from './member-pages.js';
import { namesArrived } from './typing.js';
import {
  childController, client, embed, errorText, isAbort, redraw, roomSignal, sessionSignal, showNotice, state, untilDone,
} from './session.js';

/** Room-list loads started and the newest one applied: an older answer
 *  that arrives after a newer one would drop what the newer one added;
 *  and the session whose list it is (none: not loaded yet). */
const roomLoads = { started: 0, applied: 0, session: null };
/** The pending reload of the room list: its timer, when it fires, and the
 *  controller of the last one fired (a newer one stops its retries). */
const roomsReload = { timer: null, at: 0, controller: null };
/** The newest full reload; a newer one stops its retries. */
let fullReload = null;
/** Whether the top bar shows a failed full reload, for the next success to clear. */
let reloadFailureShown = false;

/** Reads the room list; resolves to the open room's id if it just
 *  arrived in it (an invite, a join), which is then opened. */
export async function loadRooms(signal = sessionSignal()) {
  const load = ++roomLoads.started;
  const levels = state.levelChanges;
  const counts = state.onlineChanges;
  const rooms = await client.rooms({ signal });
  if (load < roomLoads.applied || signal.aborted) return null;
  roomLoads.applied = load;
  for (const room of rooms) {
    // Events that arrived while the list was computed are newer than it.
    const known = state.rooms.get(room.id);
    if (known && known.head_seq > room.head_seq) {
      for (const key of ['head_seq', 'unread_count', 'mention_count', 'last_message', 'listed_head', 'counted']) room[key] = known[key];
    }
    // A receipt that came while the list was computed is newer than it.
    if (known?.peer_read_seq > (room.peer_read_seq ?? -1) && room.peer_read_seq !== null) room.peer_read_seq = known.peer_read_seq;
    // So is a notification level chosen after the list was asked for.
    if (known?.levelChange > levels) Object.assign(room, { notifications: known.notifications, levelChange: known.levelChange });
    // And a big room's online count heard meanwhile (room_online).
    if (known?.onlineChange > counts) Object.assign(room, { online_count: known.online_count, onlineChange: known.onlineChange });
    // A read marker sent just before this list was computed may not be in it yet.
    const sent = state.readSent.get(room.id) ?? 0;
    if (sent > room.read_seq && (!room.last_message || room.last_message.seq <= sent)) {
      room.read_seq = sent;
      room.unread_count = 0;
      room.mention_count = 0;
    }
  }
  const active = state.activeRoomId;
  const arrived = roomListLoaded() && active !== null && !state.rooms.has(active);
  state.rooms = new Map(rooms.map((room) => [room.id, room]));
  roomLoads.session = sessionSignal();
  redraw.sidebar();
  redraw.title();
  redraw.listed();
  if (!arrived || !state.rooms.has(active)) return null;
  redraw.room(active);
  return active;
}

/** Whether this session's room list has been read: until then a room
 *  not in it may just not be known yet. */
export function roomListLoaded() {
  return roomLoads.session === sessionSignal() && !roomLoads.session.aborted;
}

/** Forgets the room list (a resync): it is read again before use. */
export function forgetRooms() {
  state.rooms = new Map();
  roomLoads.session = null;
}

/**
 * Reloads the room list within `delay` ms, once for however many events
 * ask meanwhile. A later ask never postpones a reload already due (a busy
 * stream of member and presence news must not starve the list), and a
 * failed reload is tried again with backoff rather than leaving the list
 * stale until the next event happens to come.
 */
export function reloadRoomsSoon(delay = 300) {
  const at = Date.now() + delay;
  if (roomsReload.timer !== null) {
    if (roomsReload.at <= at) return;
    clearTimeout(roomsReload.timer);
  }
  roomsReload.at = at;
  // The session, not just the user: an embedded page keeps its user after a stop.
  const session = sessionSignal();
  roomsReload.timer = setTimeout(() => {
    roomsReload.timer = null;
    if (session.aborted) return;
    // Only the retries stop: an answer in flight is still the newest news.
    roomsReload.controller?.abort();
    const controller = childController(session);
    roomsReload.controller = controller;
    untilDone(() => loadRooms(session), controller.signal);
  }, delay);
}

/** Stops a pending reload of the room list: the session is over. */
export function stopReloads() {
  clearTimeout(roomsReload.timer);
  roomsReload.timer = null;
  reloadFailureShown = false;
}

/**
 * Reloads everything (after connecting, reconnecting or losing ephemeral
 * news) and, while that fails, tries again with backoff: a network blip at
 * the wrong moment must not leave the page empty until some event comes.
 * The failure shows in the top bar until a reload succeeds.
 */
export function reloadAllUntilDone() {
  fullReload?.abort();
  const controller = childController(sessionSignal());
  fullReload = controller;
  const failed = (e) => {
    reloadFailureShown = true;
    showNotice(errorText(e));
  };
  untilDone(() => reloadAll(sessionSignal()), controller.signal, failed).then((done) => {
    if (done && !controller.signal.aborted && reloadFailureShown) {
      reloadFailureShown = false;
      showNotice('');
    }
  });
}

async function reloadAll(signal) {
  dropTimeline(state);
  await loadRooms(signal);
  if (embed?.mode === 'room') state.activeRoomId = embed.roomId;
  // A room not in the list (a link to one the user is not in, one left
  // meanwhile) stays named: the pane says so (no-room.js).
  const roomId = state.activeRoomId;
  if (roomId && state.rooms.has(roomId)) {
    const open = roomSignal();
    try {
      await Promise.all([loadLatest(roomId, open), loadMembers(roomId, open)]);
    } catch (e) {
      // Another room opened meanwhile: it loads itself.
      if (!open.aborted) throw e;
    }
  }
  if (!signal.aborted) redraw.main();
}

/** The newest page of a room's history. Its buffer exists before the
 *  request, so events that arrive while it is in flight are kept. */
export async function loadLatest(roomId, signal) {
  const timeline = openTimeline(state, roomId);
  const read = beginRead(state, roomId);
  let page;
  try {
    page = await client.history(roomId, { limit: 50, signal });
  } catch (e) {
    cancelRead(state, read);
    // Never loaded: the next open of the room tries again (unless another
    // read of its first page, a newer open's, is on the way).
    if (timeline.hasMore === null && timeline.reads === 0 && timelineOf(state, roomId) === timeline) dropTimeline(state, roomId);
    throw e;
  }
  finishRead(state, read, {
    messages: page.messages,
    hasMore: timeline.hasMore === null ? page.has_more : undefined,
    asOf: page.head_seq,
  });
}

const olderLoads = new WeakMap(); // timeline → the page of older history being read

/** The page before the oldest loaded, once at a time; resolves when it is in. */
export function loadOlder(roomId, signal = roomSignal()) {
  const timeline = timelineOf(state, roomId);
  if (!timeline) return Promise.resolve();
  if (olderLoads.has(timeline)) return olderLoads.get(timeline);
  if (!timeline.hasMore || timeline.items.length === 0) return Promise.resolve();
  const load = (async () => {
    timeline.loadingOlder = true;
    redraw.messages({ keepPosition: true });
    const read = beginRead(state, roomId);
    try {
      const page = await client.history(roomId, { before: timeline.items[0].seq, limit: 50, signal });
      // Ignored if the history was dropped meanwhile: this page would leave a hole.
      finishRead(state, read, { messages: page.messages, hasMore: page.has_more, asOf: page.head_seq });
    } catch (e) {
      cancelRead(state, read);
      throw e;
    } finally {
      timeline.loadingOlder = false;
      olderLoads.delete(timeline);
      if (roomId === state.activeRoomId && timelineOf(state, roomId) === timeline) redraw.messages({ keepPosition: true });
    }
  })();
  olderLoads.set(timeline, load);
  return load;
}

/**
 * Reads a page of a room's members (docs/protocol.md, "Presence"): the
 * first one of those `q` finds (blank: everyone), or the one after
 * `list`. The joins and leaves heard while it is on its way go with it
 * (member-pages.js). Each member's presence is taken; so is the room's
 * online count, unless a newer one came meanwhile (room_online).
 */
async function readMembers(roomId, { q = '', list = null, limit = pageSize(roomId), signal }) {
  const counts = state.onlineChanges;
  const read = { roomId, heard: [], asOf: state.rooms.get(roomId)?.head_seq ?? 0 };
  state.memberReads.add(read);
  let answer;
  try {
    answer = await client.members(roomId, { q: q || undefined, after: list?.next ?? undefined, limit, signal });
  } finally {
    state.memberReads.delete(read);
  }
  for (const m of answer.members) state.presence.set(m.id, m.online);
  const room = state.rooms.get(roomId);
  if (room && Number.isInteger(answer.online_count) && !(room.onlineChange > counts) && room.online_count !== answer.online_count) {
    room.online_count = answer.online_count;
    redraw.sidebar();
  }
  return { answer, read };
}

const onlineOf = (userId) => state.presence.get(userId) ?? false;

/** A big room's list is read a page at a time as the person scrolls; any
 *  other room's whole (docs/protocol.md, "Presence"): its members hear
 *  every presence change, so with the whole list the header's online
 *  count follows them (room-header.js). */
const isBig = (roomId) => state.rooms.get(roomId)?.big !== false;
const pageSize = (roomId) => (isBig(roomId) ? MEMBER_PAGE : WHOLE_PAGE);

/** A room's member list (on open, and after news was lost: a resync, an
 *  ephemeral gap): its first page, or all of it in a room that is not
 *  big; the pages loaded before go. */
export async function loadMembers(roomId, signal) {
  const { answer, read } = await readMembers(roomId, { signal });
  if (signal?.aborted) return;
  const list = newList(roomId, '', answer, { asOf: read.asOf, heard: read.heard, onlineOf });
  while (list.next !== null && !isBig(roomId)) {
    const more = await readMembers(roomId, { list, signal });
    if (signal?.aborted) return;
    appendPage(list, more.answer, more.read.heard, onlineOf);
  }
  state.memberLists.set(roomId, list);
  state.members.set(roomId, list.members);
  namesArrived(roomId);
}

/** The first page of the members whose name holds `q`: the member
 *  pane's search, kept in the state (joins and leaves change it) while
 *  it is the one the pane shows. */
export async function searchMembers(roomId, q, signal) {
  const { answer, read } = await readMembers(roomId, { q, signal });
  if (signal.aborted) return null;
  state.memberSearch = newList(roomId, q, answer, { asOf: read.asOf, heard: read.heard, onlineOf });
  return state.memberSearch;
}

const moreLoads = new WeakMap(); // list → the read of its next page

/** The page after the last loaded of `list` (everyone's or a search's),
 *  once at a time; resolves when it is in. */
export function loadMoreMembers(list, signal = roomSignal()) {
  if (!list || list.next === null) return Promise.resolve();
  if (moreLoads.has(list)) return moreLoads.get(list);
  const load = (async () => {
    try {
      const { answer, read } = await readMembers(list.roomId, { q: list.q, list, signal });
      if (signal.aborted) return;
      appendPage(list, answer, read.heard, onlineOf);
      namesArrived(list.roomId);
    } finally {
      moreLoads.delete(list);
    }
  })();
  moreLoads.set(list, load);
  return load;
}

/** Whether the next page of `list` is on its way. */
export function loadingMore(list) {
  return Boolean(list) && moreLoads.has(list);
}

/** The first page, again and again with backoff while it fails and the
 *  room stays open: without it the pane would stay empty. */
export function reloadMembersUntilDone(roomId) {
  const signal = roomSignal();
  untilDone(() => loadMembers(roomId, signal), signal).then((done) => {
    if (done && !signal.aborted) redraw.members();
  });
}

const quotesAsked = new WeakMap(); // timeline → seqs asked for

/** Reads a message that replies quote but that is not loaded. */
export async function loadQuote(roomId, seq) {
  const timeline = timelineOf(state, roomId);
  if (!timeline) return;
  if (!quotesAsked.has(timeline)) quotesAsked.set(timeline, new Set());
  const asked = quotesAsked.get(timeline);
  if (asked.has(seq)) return;
  asked.add(seq);
  const read = beginRead(state, roomId);
  try {
    const message = await client.message(roomId, seq, { signal: roomSignal() });
    redraw.changes(finishRead(state, read, { quotes: [message] }));
  } catch (e) {
    cancelRead(state, read);
    if (isAbort(e)) {
      asked.delete(seq);
    } else if (e.status === 404 || e.status === 403) {
      quoteMissing(state, roomId, seq);
      redraw.messages();
    }
  }
}
