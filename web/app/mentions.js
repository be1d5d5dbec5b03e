// Mentions in the web client: a message's `<@id>` tokens drawn as a
// highlighted `@Name` (the caller's own more strongly), the same as plain
// text for previews and quotes, and the composer's `@` autocomplete of the
// room's members (a listbox the textarea points into with
// aria-activedescendant). The composer shows `@Name`; the names it
// inserted are kept per room (or per edit) and become tokens on send.

import { el, renderText } from './render.js';
import { t } from './i18n.js';
import { matchMembers, mentionQuery, namesForTokens, splitMentions } from './attention.js';
import { nameOf } from './people.js';
import { state } from './session.js';

/** The name a mention shows: the person's current name as the room's
 *  members (or any list this page has) know it, else "someone". */
export function mentionName(roomId, id) {
  if (id === state.me?.id) return state.me.display_name;
  const find = (members) => (members || []).find((m) => m.id === id)?.display_name;
  const known = find(state.members.get(roomId)) ?? state.names.get(id);
  if (known !== undefined) return known;
  for (const members of state.members.values()) {
    const name = find(members);
    if (name !== undefined) return name;
  }
  for (const room of state.rooms.values()) if (room.peer?.id === id) return room.peer.display_name;
  return nameOf(roomId, id);
}

/** Room id → Map of name → user id: the mentions inserted into its draft. */
const draftMentions = new Map();

/** A message's text as nodes: tokens as `@Name` chips, the rest as
 *  renderText draws it (emoji, links). Built from nodes, never markup. */
export function messageText(roomId, text) {
  const fragment = document.createDocumentFragment();
  for (const part of splitMentions(text)) {
    if (typeof part === 'string') {
      fragment.append(renderText(part));
      continue;
    }
    const me = part.id === state.me?.id;
    fragment.append(el('span', {
      className: 'mention' + (me ? ' mention-me' : ''), 'data-user': part.id,
    }, `@${mentionName(roomId, part.id)}`));
  }
  return fragment;
}

/** Plain text with tokens as `@Name`: the room list's preview, a reply's
 *  quote, a notification's body. */
export function plainMentions(roomId, text) {
  return namesForTokens(String(text ?? ''), (id) => mentionName(roomId, id));
}

/** The map of names inserted into the composer of `roomId`: the edit's
 *  own while one is edited (it is saved with it), else the draft's. */
export function insertedMentions(roomId) {
  const mode = state.compose.get(roomId);
  if (mode?.kind === 'edit') return (mode.mentions ??= new Map());
  if (!draftMentions.has(roomId)) draftMentions.set(roomId, new Map());
  return draftMentions.get(roomId);
}

/** The draft was sent: its mentions go with it. */
export function forgetMentions(roomId) {
  draftMentions.delete(roomId);
}

/**
 * The autocomplete for `input`, the composer of `roomId`. Returns its
 * listbox `node`, `update()` for each input, and `keydown(event)`, which
 * answers true when the list took the key (arrows, Enter, Tab, Escape).
 */
export function mentionPicker(roomId, input) {
  const list = el('ul', {
    id: 'mention-list', className: 'mention-list', role: 'listbox', 'aria-label': t('mentionList'), hidden: true,
  });
  let open = null; // { start, query, matches, index }

  const close = () => {
    if (!open) return;
    open = null;
    list.hidden = true;
    list.replaceChildren();
    input.removeAttribute('aria-activedescendant');
    input.removeAttribute('aria-controls');
    input.removeAttribute('aria-autocomplete');
  };

  const draw = () => {
    list.replaceChildren(...open.matches.map((member, i) => el('li', {
      id: `mention-option-${member.id}`,
      className: 'mention-option',
      role: 'option',
      'aria-selected': String(i === open.index),
      'data-user': member.id,
      // The textarea keeps the keyboard: a click picks without a blur.
      onmousedown: (event) => event.preventDefault(),
      onclick: () => pick(member),
    },
      el('span', { className: 'mention-name' }, member.display_name),
      member.username && member.username !== member.display_name
        ? el('span', { className: 'mention-username' }, `@${member.username}`) : null,
    )));
    list.hidden = false;
    input.setAttribute('aria-controls', 'mention-list');
    input.setAttribute('aria-autocomplete', 'list');
    input.setAttribute('aria-activedescendant', `mention-option-${open.matches[open.index].id}`);
    list.children[open.index]?.scrollIntoView?.({ block: 'nearest' });
  };

  const pick = (member) => {
    if (!open) return;
    const name = member.display_name || member.username;
    const caret = input.selectionStart ?? input.value.length;
    const before = input.value.slice(0, open.start);
    const after = input.value.slice(caret);
    const inserted = `@${name} `;
    insertedMentions(roomId).set(name, member.id);
    close();
    input.value = before + inserted + after.replace(/^ /, '');
    input.selectionStart = input.selectionEnd = before.length + inserted.length;
    input.focus();
    input.dispatchEvent(new Event('input'));
  };

  const update = () => {
    const found = mentionQuery(input.value, input.selectionStart ?? input.value.length);
    const matches = found ? matchMembers(state.members.get(roomId), found.query, state.me?.id) : [];
    if (!found || matches.length === 0) {
      close();
      return;
    }
    const keep = open && open.start === found.start ? matches.findIndex((m) => m.id === open.matches[open.index]?.id) : -1;
    open = { ...found, matches, index: Math.max(keep, 0) };
    draw();
  };

  const keydown = (event) => {
    if (!open) return false;
    const n = open.matches.length;
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      open.index = (open.index + (event.key === 'ArrowDown' ? 1 : n - 1)) % n;
      draw();
    } else if (event.key === 'Enter' || event.key === 'Tab') {
      pick(open.matches[open.index]);
    } else if (event.key === 'Escape') {
      close();
    } else {
      return false;
    }
    event.preventDefault();
    event.stopPropagation();
    return true;
  };

  input.addEventListener('blur', close);
  // A caret moved by a click or the arrow keys sideways may leave the mention.
  input.addEventListener('click', update);
  input.addEventListener('keyup', (event) => {
    if (['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(event.key)) update();
  });
  return { node: list, update, keydown, close };
}
