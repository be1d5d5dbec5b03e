// Mentions in the web client: a message's `<@id>` tokens drawn as a
// highlighted `@Name` (the caller's own more strongly), the same as plain
// text for previews and quotes, and the composer's `@` autocomplete of the
// room's members (a listbox the textarea points into with
// aria-activedescendant). The composer shows `@Name`; the mentions picked
// are kept with the draft (drafts.js) or the edit and become tokens on send.
// In a room whose member list is not all loaded (a room of thousands is
// read a page at a time), the server is asked too, by name, as the person
// pauses typing.

import { el, renderText } from './render.js';
import { t } from './i18n.js';
import { addMention, matchMembers, mentionQuery, namesForTokens, splitMentions } from './attention.js';
import { draftOf } from './drafts.js';
import { nameOf } from './people.js';
import { isComplete } from './member-pages.js';
import { childController, client, roomSignal, state } from './session.js';

/** How long the autocomplete waits after a key before asking the server. */
const ASK_DEBOUNCE_MS = 200;
/** How many people it lists. */
const MATCHES = 8;
/** How many it asks the server for: the server lists matches by name,
 *  and matchMembers puts those whose name starts with the text first, so
 *  "@li" offers "Li Lei" even when dozens of names hold "li" earlier. */
const ASKED_MATCHES = 50;

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
    }, `@${nameOf(roomId, part.id)}`));
  }
  return fragment;
}

/** Plain text with tokens as `@Name`: the room list's preview, a reply's
 *  quote, a notification's body. */
export function plainMentions(roomId, text) {
  return namesForTokens(String(text ?? ''), (id) => nameOf(roomId, id));
}

/** The mentions picked into the composer of `roomId` (`{ name, id }`, in
 *  text order): the edit's own while one is edited (saved with it), else
 *  the draft's (kept with it, drafts.js). */
export function insertedMentions(roomId) {
  const mode = state.compose.get(roomId);
  if (mode?.kind === 'edit') return (mode.mentions ??= []);
  return draftOf(roomId).mentions;
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
  // The server's answer for one query ({ query, members }), the timer of
  // the next question and the one on its way.
  let asked = { query: null, members: [] };
  let timer = null;
  let asking = null;

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
    const text = before + inserted + after.replace(/^ /, '');
    addMention(insertedMentions(roomId), text, before.length, name, member.id);
    close();
    input.value = text;
    input.selectionStart = input.selectionEnd = before.length + inserted.length;
    input.focus();
    input.dispatchEvent(new Event('input'));
  };

  /** Asks the server for members named like `query` (the last question
   *  on its way is dropped); their answer updates the list if the query
   *  is still the one typed. */
  const ask = (query) => {
    clearTimeout(timer);
    asking?.abort();
    asking = null;
    if (asked.query === query) return;
    timer = setTimeout(async () => {
      const controller = asking = childController(roomSignal());
      try {
        const answer = await client.members(roomId, { q: query, limit: ASKED_MATCHES, signal: controller.signal });
        if (controller.signal.aborted) return;
        asked = { query, members: answer.members };
        if (document.activeElement === input) update();
      } catch {
        // Not found by the server this time: the loaded members still are.
      } finally {
        if (asking === controller) asking = null;
      }
    }, ASK_DEBOUNCE_MS);
  };

  /** The members to match: those loaded and, where the loaded list is not
   *  all of them, those the server found for this query. */
  const candidates = (query) => {
    const loaded = state.members.get(roomId) || [];
    if (isComplete(state.memberLists.get(roomId)) || !query.trim()) return loaded;
    if (asked.query !== query) {
      ask(query);
      return loaded;
    }
    const have = new Set(loaded.map((m) => m.id));
    return [...loaded, ...asked.members.filter((m) => !have.has(m.id))];
  };

  const update = () => {
    const found = mentionQuery(input.value, input.selectionStart ?? input.value.length);
    const matches = found ? matchMembers(candidates(found.query), found.query, state.me?.id, MATCHES) : [];
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

  input.addEventListener('blur', () => {
    clearTimeout(timer);
    asking?.abort();
    close();
  });
  // A caret moved by a click or the arrow keys sideways may leave the mention.
  input.addEventListener('click', update);
  input.addEventListener('keyup', (event) => {
    if (['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(event.key)) update();
  });
  return { node: list, update, keydown, close };
}
