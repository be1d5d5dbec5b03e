// A message's reaction chips, and the order rules of docs/protocol.md:
// one chip per reaction, `{reaction, users: [userId...]}`, the chips in
// the order they first appeared (a new chip goes last and keeps its place
// while anyone is on it), each chip's users in the order they reacted.
// History and GET one send chips in this order already, so events apply
// to a read message without anything more. Pure data: no DOM, tested
// under Node.

/** Chips from the `reactions` of a message as the server sends it. */
export function chipsFrom(reactions = []) {
  return reactions.map((r) => ({ reaction: r.reaction, users: [...r.user_ids] }));
}

/** The chips as the server sends them: `[{reaction, count, user_ids}]`. */
export function chipsToWire(chips) {
  return chips.map((c) => ({ reaction: c.reaction, count: c.users.length, user_ids: [...c.users] }));
}

/** Whether `userId` has reacted with `reaction`. */
export function hasReacted(chips, reaction, userId) {
  return chips.some((c) => c.reaction === reaction && c.users.includes(userId));
}

/**
 * Applies a reaction_added: a new chip goes last, a new user last in their
 * chip; a user already there changes nothing. Returns whether anything
 * changed.
 */
export function addReaction(chips, reaction, userId) {
  const chip = chips.find((c) => c.reaction === reaction);
  if (!chip) chips.push({ reaction, users: [userId] });
  else if (chip.users.includes(userId)) return false;
  else chip.users.push(userId);
  return true;
}

/**
 * Applies a reaction_removed: the user leaves the chip, and a chip with
 * nobody left goes; the others keep their places. Returns whether anything
 * changed.
 */
export function removeReaction(chips, reaction, userId) {
  const chip = chips.find((c) => c.reaction === reaction);
  const at = chip ? chip.users.indexOf(userId) : -1;
  if (at < 0) return false;
  chip.users.splice(at, 1);
  if (chip.users.length === 0) chips.splice(chips.indexOf(chip), 1);
  return true;
}
