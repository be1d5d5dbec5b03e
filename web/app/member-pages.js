// A room's member list as this page has loaded it: a page at a time, by
// display name then id, the way the server answers it (docs/protocol.md,
// "Presence"), of everyone or of those whose name holds a search text.
// A room may have 10,000 members and 50 joins a second, so the page never
// reads the list again for a join or a leave: it puts the joiner where
// they belong if that place is loaded, takes the leaver out, and moves
// the room's count by one. No DOM here: web/tests/member-pages.test.mjs
// runs it under Node.

/** Members per page of a big room's member pane. */
export const MEMBER_PAGE = 50;

/** The most members the server answers in a page: a room that is not big
 *  is read whole in pages of this size (one page at the server's default
 *  size of a big room), so the page can count who is online itself. */
export const WHOLE_PAGE = 500;

/** Code point order: the server's (SQLite's binary order of UTF-8). */
function compareText(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i += 1) {
    if (x[i] !== y[i]) return x[i].codePointAt(0) - y[i].codePointAt(0);
  }
  return x.length - y.length;
}

/** The server's order of members: display name, then id. */
export function compareMembers(a, b) {
  return compareText(a.display_name ?? '', b.display_name ?? '') || a.id - b.id;
}

const asciiLower = (s) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());

/** Whether a search for `q` finds `name`: the text anywhere in it, ASCII
 *  case ignored, as the server's `q` does. A blank `q` finds everyone. */
export function nameMatches(name, q) {
  const text = (q ?? '').trim();
  return !text || asciiLower(name ?? '').includes(asciiLower(text));
}

/**
 * A list from its first page: `answer` is `GET /rooms/{id}/members`'s.
 * `members` in name order, `next` the `after` of the page to read next
 * (null: all is loaded), `count` the room's member count, `q` the
 * search it shows (blank: everyone), `lastSeq` the newest membership
 * event it holds: the answer's `member_count_seq`, or `asOf`, the room's
 * head when the page was asked for, if that is newer (an event seen
 * before then is in the answer). `heard` are the joins and leaves that
 * came while it was on its way: those newer than `lastSeq` are applied.
 */
export function newList(roomId, q, answer, { asOf = 0, heard = [], onlineOf = () => false } = {}) {
  const list = {
    roomId,
    q: (q ?? '').trim(),
    members: [...answer.members].sort(compareMembers),
    next: answer.next ?? null,
    count: Number.isInteger(answer.member_count) ? answer.member_count : answer.members.length,
    // The count holds every join and leave up to the answer's
    // member_count_seq (and the page each of them): only newer ones change it.
    lastSeq: Math.max(asOf, Number.isInteger(answer.member_count_seq) ? answer.member_count_seq : 0),
  };
  for (const event of heard) applyMembership(list, event, onlineOf(event.user_id));
  return list;
}

/** Whether every member the list can show is loaded. */
export function isComplete(list) {
  return Boolean(list) && list.next === null;
}

/** Adds the page after the loaded ones: a member already there (placed
 *  by a join while it was read) is not repeated. `heard` are the joins
 *  and leaves that came while it was read, which the list has counted
 *  already: a leaver the page still lists goes, and a joiner whose place
 *  it loaded comes in. The room's count stays the list's, which has
 *  followed every event since its first page. */
export function appendPage(list, answer, heard = [], onlineOf = () => false) {
  const have = new Set(list.members.map((m) => m.id));
  for (const member of answer.members) if (!have.has(member.id)) list.members.push(member);
  list.members.sort(compareMembers);
  list.next = answer.next ?? null;
  for (const event of heard) {
    const at = list.members.findIndex((m) => m.id === event.user_id);
    if (event.type === 'member_left' && at >= 0) list.members.splice(at, 1);
    if (event.type === 'member_joined' && at < 0) place(list, joiner(event, onlineOf(event.user_id)));
  }
}

/** The member a `member_joined` event tells of. */
function joiner(event, online) {
  return { id: event.user_id, display_name: event.display_name ?? '', role: event.role ?? 'member', online };
}

/** Puts `member` in its place if the list shows it and has loaded that
 *  place; answers whether it did. */
function place(list, member) {
  if (!nameMatches(member.display_name, list.q) || !placeLoaded(list, member)) return false;
  let i = list.members.length;
  while (i > 0 && compareMembers(list.members[i - 1], member) > 0) i -= 1;
  list.members.splice(i, 0, member);
  return true;
}

/** Whether `member`'s place is within what is loaded (after the last
 *  loaded member it belongs to a page not read yet). */
function placeLoaded(list, member) {
  if (list.next === null) return true;
  const last = list.members[list.members.length - 1];
  return last !== undefined && compareMembers(member, last) < 0;
}

/**
 * Applies a `member_joined` or `member_left` event to `list`; `online`
 * is what the page knows of the joiner's presence. Answers whether the
 * list changed. A search list shows only those its text finds; only the
 * list of everyone keeps the room's count (a search answers it too, but
 * the count belongs to the room, not to the search).
 */
export function applyMembership(list, event, online = false) {
  // The same event again (a replay from an older cursor), or one the
  // first page's count already held.
  if (!(event.seq > list.lastSeq)) return false;
  list.lastSeq = event.seq;
  const at = list.members.findIndex((m) => m.id === event.user_id);
  const counts = list.q === '';
  if (event.type === 'member_left') {
    if (at >= 0) list.members.splice(at, 1);
    if (counts && list.count > 0) list.count -= 1;
    return at >= 0 || counts;
  }
  if (event.type !== 'member_joined') return false;
  // Newer than the count, so not in it, even when the page already
  // lists the joiner (read after the join was committed).
  if (counts) list.count += 1;
  if (at >= 0) return counts;
  return place(list, joiner(event, online)) || counts;
}
