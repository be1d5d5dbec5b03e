// What views show of people: their avatar, their name, and the title of
// a direct conversation (the other person's name).

import { el, safeImage } from './render.js';
import { t } from './i18n.js';
import { state } from './session.js';

/** The avatar natter draws for a user who has none (or whose own fails). */
export const generatedAvatar = (userId) => `/api/v1/users/${userId}/avatar.svg`;

export function avatarOf(roomId, userId) {
  const member = (state.members.get(roomId) || []).find((m) => m.id === userId);
  return safeImage(member?.avatar_url, generatedAvatar(userId));
}

/** An avatar that falls back to the generated one if the user's own fails. */
export function avatarImage(src, userId, size) {
  const fallback = generatedAvatar(userId);
  const img = el('img', { className: 'avatar', src, alt: '', width: size, height: size });
  img.addEventListener('error', () => {
    if (!img.src.endsWith(fallback)) img.src = fallback;
  }, { once: true });
  return img;
}

/** A user's name as this page knows it now (mentions, typing notices,
 *  quotes, reactions all say it alike): their own, the room's member
 *  list, their latest event, any other member list, a direct
 *  conversation's peer; else "someone". */
export function nameOf(roomId, userId) {
  if (userId === state.me?.id) return state.me.display_name;
  const find = (members) => (members || []).find((m) => m.id === userId)?.display_name;
  const known = find(state.members.get(roomId)) ?? state.names.get(userId);
  if (known !== undefined) return known;
  for (const members of state.members.values()) {
    const name = find(members);
    if (name !== undefined) return name;
  }
  for (const room of state.rooms.values()) if (room.peer?.id === userId) return room.peer.display_name;
  return t('someone');
}

/** A room's title; a direct conversation is called after the other person. */
export function roomTitle(room) {
  if (room.kind === 'direct') return room.peer?.display_name || '…';
  return room.title;
}
