// What can be done with a message: a button on each (shown on hover and
// focus, always on touch screens, and a long press opens it too) with a
// menu of Reply, React (a picker of common emoji and the emoticon codes)
// and, where the user may, Edit and Delete (which asks first). Also the
// toggling of one's own reaction, which the reaction chips use.

import { CODES } from './emoticons.js';
import { el } from './render.js';
import { t } from './i18n.js';
import { reacted } from './state.js';
import { startEdit, startReply } from './composer.js';
import { client, safely, sessionSignal, state } from './session.js';

const COMMON = ['👍', '❤️', '😂', '😮', '😢', '🎉', '🙏', '👀'];
const LONG_PRESS_MS = 500;

/** The open panel, kept across redraws: { roomId, seq, kind, up }. */
let open = null;

export function canEdit(message) {
  return !message.deleted && message.sender_id === state.me.id;
}

/** The sender may delete a message, and so may the room's owner and admins. */
export function canDelete(roomId, message) {
  const role = state.rooms.get(roomId)?.role;
  return !message.deleted && (message.sender_id === state.me.id || role === 'owner' || role === 'admin');
}

/** Adds the user's reaction, or takes it back if they gave it already.
 *  The chips change when the stream brings the change. */
export function toggleReaction(roomId, message, reaction) {
  const signal = sessionSignal();
  return safely(reacted(message, reaction, state.me.id)
    ? client.unreact(roomId, message.seq, reaction, { signal })
    : client.react(roomId, message.seq, reaction, { signal }));
}

const isOpen = (roomId, seq) => open !== null && open.roomId === roomId && open.seq === seq;

/** The actions button of one message, with its panel if that is open. */
export function actionsControl(roomId, message) {
  const wrapper = el('div', { className: 'message-actions' });
  const toggle = el('button', {
    type: 'button', className: 'actions-toggle', textContent: '⋯', title: t('messageActions'),
    'aria-label': t('messageActions'), 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'data-action': 'actions',
    onclick: () => {
      if (isOpen(roomId, message.seq) && open.kind === 'menu') close({ focus: true });
      else show(wrapper, roomId, message, 'menu');
    },
  });
  wrapper.append(toggle);
  if (isOpen(roomId, message.seq)) {
    toggle.setAttribute('aria-expanded', 'true');
    wrapper.append(panel(wrapper, roomId, message, open.kind));
  }
  return wrapper;
}

/** Opens a panel of a message's actions, closing any other. */
function show(wrapper, roomId, message, kind) {
  document.querySelector('.action-panel')?.remove();
  for (const other of document.querySelectorAll('.actions-toggle[aria-expanded="true"]')) other.setAttribute('aria-expanded', 'false');
  // Below the button near the top of the list, above it further down.
  const list = wrapper.closest('.messages');
  const up = list ? wrapper.getBoundingClientRect().top > list.getBoundingClientRect().top + list.clientHeight / 2 : false;
  open = { roomId, seq: message.seq, kind, up };
  wrapper.querySelector('.actions-toggle').setAttribute('aria-expanded', 'true');
  const node = panel(wrapper, roomId, message, kind);
  wrapper.append(node);
  node.querySelector('button')?.focus();
}

/** Closes the open panel; `focus` returns to its message's button. */
function close({ focus = false } = {}) {
  const node = document.querySelector('.action-panel');
  const toggle = node?.parentElement.querySelector('.actions-toggle');
  node?.remove();
  toggle?.setAttribute('aria-expanded', 'false');
  open = null;
  if (focus) toggle?.focus();
}

// A click or tap anywhere else closes the panel.
document.addEventListener('pointerdown', (event) => {
  if (open && !event.target.closest?.('.message-actions')) close();
});

function panel(wrapper, roomId, message, kind) {
  const node = kind === 'react' ? reactionPicker(roomId, message)
    : kind === 'confirm' ? confirmDelete(roomId, message)
      : menu(wrapper, roomId, message);
  node.classList.add('action-panel');
  if (open?.up) node.classList.add('up');
  node.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      close({ focus: true });
    } else if (['ArrowDown', 'ArrowUp', 'ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(event.key)) {
      event.preventDefault();
      moveFocus(node, event.key);
    } else if (event.key === 'Tab' && kind === 'menu') {
      // Back on the button first, so Tab goes on from there.
      close({ focus: true });
    }
  });
  return node;
}

/** Arrow keys move between a panel's buttons, round and round. */
function moveFocus(node, key) {
  const buttons = [...node.querySelectorAll('button')];
  const at = buttons.indexOf(document.activeElement);
  const next = key === 'Home' ? 0
    : key === 'End' ? buttons.length - 1
      : key === 'ArrowDown' || key === 'ArrowRight' ? (at + 1) % buttons.length
        : (at - 1 + buttons.length) % buttons.length;
  buttons[next]?.focus();
}

function menu(wrapper, roomId, message) {
  const item = (action, label, run) => el('button', {
    type: 'button', role: 'menuitem', className: 'action', textContent: label, 'data-action': `menu:${action}`,
    onclick: run,
  });
  return el('div', { className: 'action-menu', role: 'menu', 'aria-label': t('messageActions') },
    item('reply', t('reply'), () => {
      close();
      startReply(roomId, message.seq);
    }),
    item('react', t('react'), () => show(wrapper, roomId, message, 'react')),
    canEdit(message) ? item('edit', t('edit'), () => {
      close();
      startEdit(roomId, message.seq);
    }) : null,
    canDelete(roomId, message) ? item('delete', t('delete'), () => show(wrapper, roomId, message, 'confirm')) : null,
  );
}

function reactionPicker(roomId, message) {
  const choice = (reaction, glyph, label) => el('button', {
    type: 'button', className: 'emoji', textContent: glyph, title: label, 'aria-label': label,
    'aria-pressed': String(reacted(message, reaction, state.me.id)), 'data-action': `react:${reaction}`,
    onclick: () => {
      close({ focus: true });
      toggleReaction(roomId, message, reaction);
    },
  });
  return el('div', { className: 'reaction-picker', role: 'dialog', 'aria-label': t('react') },
    el('div', { className: 'reaction-common' }, COMMON.map((emoji) => choice(emoji, emoji, emoji))),
    el('div', { className: 'reaction-codes-title' }, t('emoticonCodes')),
    el('div', { className: 'reaction-codes' }, [...CODES].map(([code, emoji]) => choice(code, emoji, code))),
  );
}

function confirmDelete(roomId, message) {
  return el('div', { className: 'confirm-delete', role: 'alertdialog', 'aria-label': t('confirmDelete') },
    el('p', {}, t('confirmDelete')),
    el('button', {
      type: 'button', className: 'danger', textContent: t('delete'), 'data-action': 'confirm:delete',
      onclick: () => {
        close({ focus: true });
        safely(client.deleteMessage(roomId, message.seq, { signal: sessionSignal() }));
      },
    }),
    el('button', {
      type: 'button', textContent: t('cancel'), 'data-action': 'confirm:cancel',
      onclick: () => close({ focus: true }),
    }),
  );
}

/** On a touch screen, pressing a message for a moment opens its actions. */
export function longPress(item, roomId, message) {
  let timer = null;
  let start = null;
  let opened = false;
  const cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  item.addEventListener('pointerdown', (event) => {
    if (event.pointerType !== 'touch' || event.target.closest('button, a')) return;
    start = { x: event.clientX, y: event.clientY };
    opened = false;
    timer = setTimeout(() => {
      timer = null;
      const wrapper = item.querySelector('.message-actions');
      if (!wrapper) return;
      opened = true;
      show(wrapper, roomId, message, 'menu');
    }, LONG_PRESS_MS);
  });
  item.addEventListener('pointermove', (event) => {
    if (timer && Math.hypot(event.clientX - start.x, event.clientY - start.y) > 10) cancel();
  });
  item.addEventListener('pointerup', cancel);
  item.addEventListener('pointercancel', cancel);
  // The browser's own long-press menu would cover ours.
  item.addEventListener('contextmenu', (event) => {
    if (opened) event.preventDefault();
  });
}
