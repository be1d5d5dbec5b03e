// The client's state, as plain data, and how room events change it. No
// DOM here: the views draw from this state and redraw what `applyEvents`
// says changed; web/tests/state.test.mjs runs it under Node.
//
// The rules are docs/protocol.md's "How a client applies them": a message
// is stored once by (room, seq), the first copy kept; edits, deletions
// and reactions change their target if it is loaded, and otherwise
// nothing, since a later read of that history shows the target as it is.
// Here the room list's part of each event (unread counts, the preview of
// the last message); timeline.js keeps each room's loaded history.

import { applyChange, dropTimeline, insert, mark, newChanges, recordOf } from './timeline.js';
import { applyTyping, mentionsMe, mentionsOf, stopTyping } from './attention.js';
import { applyMembership } from './member-pages.js';

export {
  addSent, beginRead, cancelRead, currentItems, dropTimeline, finishRead, firstLine, itemAt, lastOwnMessage,
  openTimeline, quoteFor, quoteMissing, reacted, reactionsOf, timelineOf,
} from './timeline.js';

/** How soon the room list is reloaded for a room it does not have yet. */
export const UNKNOWN_ROOM_DELAY_MS = 50;
/** How soon it is reloaded for news it cannot work out itself. */
export const ROOM_LIST_DELAY_MS = 300;

/** A fresh state: nobody signed in. */
export function createState() {
  return {
    me: null,
    connection: 'connecting',
    rooms: new Map(), // room id → room listing from GET /rooms
    activeRoomId: null,
    timelines: new Map(), // room id → its loaded history (timeline.js)
    members: new Map(), // room id → its loaded members, in name order (memberLists' `members`)
    memberLists: new Map(), // room id → the pages of its member list loaded (member-pages.js)
    memberSearch: null, // the member pane's search: a list of those its text finds
    memberReads: new Set(), // member pages on their way: { roomId, heard } (the joins and leaves meanwhile)
    presence: new Map(), // user id → online
    names: new Map(), // user id → the name their latest event carried
    pending: new Map(), // client msg id → { roomId, text, replyTo, status, error }
    drafts: new Map(), // room id → text typed but not sent
    compose: new Map(), // room id → { kind: 'reply', seq, name, text } | { kind: 'edit', seq, text }
    readSent: new Map(), // room id → the last read marker sent
    levelChanges: 0, // notification levels chosen so far (a room list read before one is older)
    onlineChanges: 0, // room_online items heard so far (likewise, for online counts)
    typing: new Map(), // room id → Map user id → local time their typing notice ends
    newBelow: false,
    authMode: 'login',
    authError: '',
  };
}

/** Forgets everything of the user who was signed in. */
export function clearSession(state) {
  state.me = null;
  for (const map of [state.rooms, state.timelines, state.members, state.memberLists, state.memberReads,
    state.presence, state.names, state.pending, state.drafts, state.compose, state.readSent, state.typing]) {
    map.clear();
  }
  state.memberSearch = null;
  state.activeRoomId = null;
  state.newBelow = false;
}

/** Sets a room's notification level (chosen here, or in another session,
 *  heard on the stream), so a room list read before the choice keeps it. */
export function setLevel(state, room, level) {
  room.notifications = level;
  room.levelChange = ++state.levelChanges;
}

function soon(changes, ms) {
  changes.reloadRooms = changes.reloadRooms === null ? ms : Math.min(changes.reloadRooms, ms);
}

/** A room list's last message, from a stream message event. */
function listingOf(event) {
  const deleted = Boolean(event.deleted);
  return { ...event, text: deleted ? '' : event.text, deleted, edited_at: null, reactions: [] };
}

/** The timeline part of the four change events; kept for reads in flight. */
function change(ctx, event) {
  if (!ctx.timeline) return;
  applyChange(ctx.timeline, event, ctx.changes);
  if (ctx.timeline.reads > 0) ctx.timeline.heard.push(event);
}

/** A room event joins the room's timeline, if loaded. */
function recordRoomEvent({ changes, timeline }, event) {
  if (timeline && insert(timeline, recordOf(event))) mark(changes.added, event.room_id, event.seq);
  changes.members.add(event.room_id);
}

/** room_created, member_joined, member_left, room_updated. */
function roomEvent(ctx, event) {
  recordRoomEvent(ctx, event);
  soon(ctx.changes, ctx.room ? ROOM_LIST_DELAY_MS : UNKNOWN_ROOM_DELAY_MS);
}

/** Someone else's join or leave in a room the list knows changes
 *  nothing the room list shows (its online count comes as room_online),
 *  so it reads no room list: in a room of thousands, every answer that
 *  carries joins would make every member read theirs. */
function comeOrGo(ctx, event) {
  if (ctx.room && event.user_id !== ctx.me) recordRoomEvent(ctx, event);
  else roomEvent(ctx, event);
}

/** A join or a leave changes the loaded member lists in place (never a
 *  reload: in a room of thousands that is a storm), and pages on their
 *  way hear of it, for when they arrive. */
function membership({ state }, event) {
  for (const read of state.memberReads) if (read.roomId === event.room_id) read.heard.push(event);
  // What this page knows of a joiner's presence; someone unknown is
  // offline until the server's presence item (sent for a joiner who is
  // online, with the room's new count) says otherwise.
  const online = Boolean(state.presence.get(event.user_id));
  for (const list of [state.memberLists.get(event.room_id), state.memberSearch]) {
    if (list?.roomId === event.room_id) applyMembership(list, event, online);
  }
}

/** One handler per event type. `ctx.room` is the room's listing (if the
 *  list has it), `ctx.isNew` whether the listing had not counted the event,
 *  `ctx.timeline` its loaded history (null if none, or for a repeat). */
const HANDLERS = {
  message(ctx, event) {
    const { state, changes, room, isNew, timeline, me } = ctx;
    const mine = event.sender_id === me;
    if (room) {
      if (isNew) {
        room.last_message = listingOf(event);
        // Only what the room list has not counted yet, and never a deleted one.
        if (!mine && !event.deleted && !ctx.seen(room.id)) {
          room.unread_count += 1;
          (room.counted ??= new Set()).add(event.seq);
          if (mentionsMe(event, me)) room.mention_count = (room.mention_count ?? 0) + 1;
        }
      }
      changes.rooms.add(room.id);
    }
    if (mine && state.pending.delete(event.client_msg_id)) changes.sent.set(event.client_msg_id, event.room_id);
    // Someone's new message ends their typing notice at once; one seen
    // before (history overlapping the stream, an older cursor) is older
    // than the notice.
    if (isNew || !room) {
      if (stopTyping(state.typing, event.room_id, event.sender_id, event.seq)) changes.typing.add(event.room_id);
      const key = `${event.room_id}:${event.sender_id}`;
      ctx.spoke.set(key, Math.max(ctx.spoke.get(key) ?? 0, event.seq));
    }
    if (timeline && insert(timeline, recordOf(event))) mark(changes.added, event.room_id, event.seq);
    if (!mine && !event.deleted && (isNew || !room)) changes.notify.push(event);
  },

  message_edited(ctx, event) {
    const { state, room, me, changes } = ctx;
    const last = room?.last_message;
    // An edit that names me, or no longer does, in an unread message
    // changes the mention count, which only the server knows: the list says.
    if (ctx.isNew && event.text && event.sender_id !== me && event.target_seq > (room.read_seq ?? 0)) {
      const before = state.timelines.get(room.id)?.bySeq.get(event.target_seq) ?? (last?.seq === event.target_seq ? last : null);
      const had = before ? mentionsMe(before, me) : room.mention_count > 0;
      if (had !== mentionsMe(event, me)) soon(changes, ROOM_LIST_DELAY_MS);
    }
    if (ctx.isNew && last?.seq === event.target_seq && !last.deleted && event.text) {
      last.text = event.text;
      last.mentions = event.mentions ?? mentionsOf(event.text);
      last.edited_at = event.ts;
      changes.rooms.add(room.id);
    }
    change(ctx, event);
  },

  message_deleted(ctx, event) {
    const { state, room, changes } = ctx;
    if (room && ctx.isNew) {
      const target = event.target_seq;
      const last = room.last_message?.seq === target ? room.last_message : null;
      const loaded = state.timelines.get(room.id)?.bySeq.get(target);
      // A deleted message is no longer unread. The list counted it if it
      // was someone else's after the read marker when the list was read,
      // or if it was counted as it arrived since; only the server knows
      // whose it was when it is not here.
      if (target > (room.read_seq ?? 0) && room.unread_count > 0) {
        const sender = loaded ? loaded.sender_id : last?.sender_id;
        if (target > room.listed_head ? room.counted?.has(target) : sender !== undefined && sender !== ctx.me) {
          room.unread_count -= 1;
          room.counted?.delete(target);
          changes.rooms.add(room.id);
          // Whether it was a mention the server knows: the list says again.
          if (room.mention_count > 0) soon(changes, ROOM_LIST_DELAY_MS);
        } else if (target <= room.listed_head && sender === undefined) {
          soon(changes, ROOM_LIST_DELAY_MS);
        }
      }
      if (last && !last.deleted) {
        Object.assign(last, { deleted: true, text: '', edited_at: null, reply_to: null, reactions: [] });
        changes.rooms.add(room.id);
      }
    }
    change(ctx, event);
  },

  reaction_added: change,
  reaction_removed: change,
  room_created: roomEvent,
  room_updated: roomEvent,

  member_joined(ctx, event) {
    ctx.state.names.set(event.user_id, event.display_name);
    membership(ctx, event);
    comeOrGo(ctx, event);
  },

  member_left(ctx, event) {
    const { state, changes } = ctx;
    membership(ctx, event);
    comeOrGo(ctx, event);
    if (event.user_id !== ctx.me) return;
    dropTimeline(state, event.room_id);
    state.memberLists.delete(event.room_id);
    state.members.delete(event.room_id);
    changes.left.add(event.room_id);
    if (state.activeRoomId === event.room_id) {
      state.activeRoomId = null;
      changes.leftActive = true;
    }
  },
};

/** Presence and read markers, which are not room events. */
const EPHEMERAL = {
  presence({ state, changes }, item) {
    state.presence.set(item.user_id, item.online);
    changes.presence = true;
    // Online counts in the room list.
    soon(changes, ROOM_LIST_DELAY_MS);
  },
  read({ state, changes }, item) {
    const room = state.rooms.get(item.room_id);
    if (!room) return;
    const before = room.read_seq ?? 0;
    room.read_seq = Math.max(before, item.seq);
    // Read up to the last message (later events may be reactions).
    if (item.seq >= (room.last_message?.seq ?? 0)) {
      room.unread_count = 0;
      room.mention_count = 0;
      changes.rooms.add(room.id);
    } else if (item.seq > before) {
      // Read in part: what is left unread, and whether it names me, the list says.
      soon(changes, ROOM_LIST_DELAY_MS);
    }
  },
  typing({ state, changes, me, now, spoke }, item) {
    // A notice that came with its author's message in one batch is older
    // than it unless the room's head it carries has reached the message.
    const said = spoke.get(`${item.room_id}:${item.user_id}`);
    if (item.typing && said !== undefined && !(item.seq >= said)) return;
    if (applyTyping(state.typing, item, me, now)) changes.typing.add(item.room_id);
  },
  // The other person of a direct conversation read up to `seq` ("Seen").
  read_receipt({ state, changes, me }, item) {
    const room = state.rooms.get(item.room_id);
    if (!room || item.user_id === me || room.kind !== 'direct') return;
    if (item.seq > (room.peer_read_seq ?? 0)) {
      room.peer_read_seq = item.seq;
      changes.receipts.add(room.id);
    }
  },
  // A big room's online count changed, told only to those watching it
  // (docs/protocol.md, "Presence"): the header and the room list show it.
  room_online({ state, changes }, item) {
    const room = state.rooms.get(item.room_id);
    if (!room || !Number.isInteger(item.online_count)) return;
    room.online_count = item.online_count;
    room.onlineChange = ++state.onlineChanges;
    changes.rooms.add(room.id);
  },
  // The user chose a room's notification level in another session.
  notifications({ state, changes }, item) {
    const room = state.rooms.get(item.room_id);
    if (!room) return;
    setLevel(state, room, item.level);
    changes.rooms.add(room.id);
    changes.notifications.add(room.id);
  },
};

/**
 * Applies one batch of the event stream, `{events, ephemeral}`, and says
 * what changed (see newChanges in timeline.js). `seen(roomId)` tells
 * whether a new message in that room is on the user's screen as it
 * arrives (then it is not counted unread).
 */
export function applyEvents(state, { events = [], ephemeral = [] } = {}, { seen = () => false, now = Date.now() } = {}) {
  const changes = newChanges();
  const me = state.me?.id;
  const spoke = new Map(); // "room:user" → the newest seq they said something at in this batch
  for (const event of events) {
    const room = state.rooms.get(event.room_id);
    // What the list counted when it was read, for deletions of what it counted.
    if (room) room.listed_head ??= room.head_seq;
    const isNew = room !== undefined && event.seq > room.head_seq;
    if (isNew) room.head_seq = event.seq;
    // A conversation this page has not heard of yet (a new direct chat):
    // the list is reloaded within moments.
    if (!room) soon(changes, UNKNOWN_ROOM_DELAY_MS);
    if (event.sender_name !== undefined) state.names.set(event.sender_id, event.sender_name);
    let timeline = state.timelines.get(event.room_id) ?? null;
    if (timeline) {
      if (event.seq <= timeline.lastEventSeq) timeline = null;
      else timeline.lastEventSeq = event.seq;
    }
    HANDLERS[event.type]?.({ state, changes, seen, me, room, isNew, timeline, spoke }, event);
  }
  for (const item of ephemeral) EPHEMERAL[item.type]?.({ state, changes, me, now, spoke }, item);
  return changes;
}
