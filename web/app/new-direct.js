// "New message": find a person by name and open the direct conversation
// with them, as Slack's and Telegram's compose button does. A search box
// in the sidebar lists people as the user types (200 ms after the last
// key; an older search in flight is dropped); the arrow keys move between
// the box and the people, Enter opens one, Escape closes the panel. A
// server that turned search off (403 forbidden) is said so plainly.

import { el, safeImage } from './render.js';
import { t } from './i18n.js';
import { avatarImage, generatedAvatar } from './people.js';
import { loadRooms } from './loads.js';
import { openRoom } from './conversation.js';
import { client, errorText, isAbort, safely, state } from './session.js';

const DEBOUNCE_MS = 200;

/** The sidebar's "New message" panel. */
export function newDirectPanel() {
  const input = el('input', {
    id: 'new-direct-search', type: 'search', autocomplete: 'off', maxLength: 64,
    placeholder: t('newDirectHint'), 'aria-describedby': 'new-direct-status',
  });
  const status = el('p', { id: 'new-direct-status', className: 'new-direct-status muted', role: 'status' });
  const list = el('ul', { className: 'people-results', 'aria-label': t('newDirect') });
  const details = el('details', { className: 'panel new-direct-panel' },
    el('summary', {}, t('newDirect')),
    el('div', { className: 'new-direct' },
      el('label', { for: 'new-direct-search', className: 'visually-hidden' }, t('newDirectSearch')),
      input, status, list,
    ),
  );
  let timer = null;
  let search = null;

  const show = (users, q) => {
    list.replaceChildren(...users.map((user) => el('li', {},
      el('button', {
        type: 'button', className: 'person', 'data-user': user.id,
        onclick: () => safely(openDirect(user, details)),
      },
        avatarImage(safeImage(user.avatar_url, generatedAvatar(user.id)), user.id, 28),
        el('span', { className: 'person-name' }, user.display_name),
      ),
    )));
    status.textContent = users.length ? t('peopleFound', { count: users.length }) : t('noPeople', { q });
  };

  const run = async () => {
    const q = input.value.trim();
    search?.abort();
    if (!q) {
      list.replaceChildren();
      status.textContent = '';
      return;
    }
    const controller = search = new AbortController();
    status.textContent = t('searching');
    try {
      const users = await client.searchPeople(q, { limit: 20, signal: controller.signal });
      if (controller.signal.aborted) return;
      show(users.filter((u) => u.id !== state.me?.id), q);
    } catch (e) {
      if (isAbort(e) || controller.signal.aborted) return;
      list.replaceChildren();
      status.textContent = e?.code === 'forbidden' ? t('searchOff') : errorText(e);
    }
  };

  input.oninput = () => {
    clearTimeout(timer);
    timer = setTimeout(run, DEBOUNCE_MS);
  };
  // Up and down walk the box and the people; Escape closes the panel.
  details.addEventListener('keydown', (event) => {
    const buttons = [...list.querySelectorAll('button.person')];
    const at = buttons.indexOf(document.activeElement);
    if (event.key === 'ArrowDown' && buttons.length && (document.activeElement === input || at >= 0)) {
      event.preventDefault();
      buttons[Math.min(at + 1, buttons.length - 1)].focus();
    } else if (event.key === 'ArrowUp' && at >= 0) {
      event.preventDefault();
      (at === 0 ? input : buttons[at - 1]).focus();
    } else if (event.key === 'Escape' && details.open) {
      event.preventDefault();
      details.open = false;
      details.querySelector('summary').focus();
    }
  });
  details.ontoggle = () => {
    if (details.open) input.focus();
  };
  return details;
}

/** Opens (creating it if need be) the direct conversation with `user`. */
async function openDirect(user, details) {
  const room = await client.openDirect(user.id);
  details.open = false;
  if (!state.rooms.has(room.id)) await loadRooms();
  await openRoom(room.id);
}
