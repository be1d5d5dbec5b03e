// The composer's emoji picker: a button that opens a panel of categories
// and emoji. It closes on a pick, on a send, on Escape and on a click
// elsewhere, and the keyboard goes back to the composer. Arrow keys move
// within the grid (and between the category tabs); each is one Tab stop
// (a roving tabindex), so Tab leaves the grid in one step.

import { CATEGORIES } from './emoticons.js';
import { el } from './render.js';
import { t } from './i18n.js';
import { state, storage } from './session.js';

/** Each user's own recent picks, in the session's storage (the tab's
 *  when embedded, as drafts are): another person on this browser has theirs. */
const recentKey = () => `natter.recentEmoji.${state.me?.id}`;
/** The grid's columns, as app.css lays it out (for ArrowUp and ArrowDown). */
const COLUMNS = 8;

/** The picker that is open, if one is: { node, toggle, close, focusComposer }. */
let open = null;

// A click or tap outside the picker and its button closes it.
document.addEventListener('pointerdown', (event) => {
  if (!open || open.node.contains(event.target) || open.toggle.contains(event.target)) return;
  // Only a control takes the keyboard; a click on a pane or a message
  // gives it back to the composer.
  const focusable = event.target.closest?.('button, a[href], input, textarea, select, summary, [tabindex="0"]');
  const { close, focusComposer } = open;
  close({ focus: false });
  // A click on nothing focusable would leave the keyboard on the page's
  // body once the mousedown that follows is done.
  if (!focusable) setTimeout(focusComposer);
});

/** Closes the open picker (a message was sent, say); the focus stays. */
export function closeEmojiPicker() {
  open?.close({ focus: false });
}

const recent = () => {
  try {
    const list = JSON.parse(storage.getItem(recentKey()) || '[]');
    return Array.isArray(list) ? list.filter((e) => typeof e === 'string') : [];
  } catch {
    return [];
  }
};

/** Puts `emoji` first among the recent picks; storage that is full or
 *  refused only means it is not remembered (the pick itself still goes in). */
function remember(emoji) {
  try {
    storage.setItem(recentKey(), JSON.stringify([emoji, ...recent().filter((e) => e !== emoji)].slice(0, 24)));
  } catch {
    // Not remembered.
  }
}

/**
 * The picker's button and panel. `choose(emoji)` puts the pick in the
 * composer; `focusComposer()` gives the composer the keyboard back.
 */
export function emojiPicker({ choose, focusComposer }) {
  const grid = el('div', { className: 'emoji-grid', role: 'listbox', 'aria-label': t('emoji') });
  const tabs = el('div', { className: 'emoji-tabs', role: 'tablist' });
  const node = el('div', { className: 'emoji-picker', hidden: true }, tabs, grid);
  const toggle = el('button', {
    type: 'button', className: 'emoji-toggle', 'aria-label': t('emoji'), 'aria-expanded': 'false', textContent: '😊',
  });

  const close = ({ focus = true } = {}) => {
    if (node.hidden) return;
    node.hidden = true;
    toggle.setAttribute('aria-expanded', 'false');
    if (open?.node === node) open = null;
    if (focus) focusComposer();
  };
  const show = () => {
    open?.close({ focus: false });
    node.hidden = false;
    toggle.setAttribute('aria-expanded', 'true');
    open = { node, toggle, close, focusComposer };
    (grid.querySelector('[tabindex="0"]') || tabs.querySelector('[tabindex="0"]'))?.focus();
  };
  toggle.onclick = () => (node.hidden ? show() : close());

  const fill = (name, list) => {
    for (const tab of tabs.children) {
      const selected = tab.dataset.name === name;
      tab.setAttribute('aria-selected', String(selected));
      tab.tabIndex = selected ? 0 : -1;
    }
    grid.replaceChildren(...list.map((emoji, i) => el('button', {
      type: 'button', className: 'emoji', role: 'option', textContent: emoji, tabIndex: i === 0 ? 0 : -1,
      onclick: () => {
        remember(emoji);
        close({ focus: false });
        choose(emoji);
      },
    })));
  };
  const categories = [[t('recent'), null], ...CATEGORIES];
  for (const [name, list] of categories) {
    tabs.append(el('button', {
      type: 'button', role: 'tab', 'data-name': name, textContent: list ? list[0] : '🕘', title: name, tabIndex: -1,
      onclick: () => fill(name, list || recent()),
    }));
  }
  fill(CATEGORIES[0][0], CATEGORIES[0][1]);

  grid.addEventListener('keydown', (event) => {
    const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -COLUMNS, ArrowDown: COLUMNS }[event.key];
    if (step === undefined && event.key !== 'Home' && event.key !== 'End') return;
    event.preventDefault();
    const buttons = [...grid.children];
    const at = buttons.indexOf(document.activeElement);
    let next = event.key === 'Home' ? 0 : event.key === 'End' ? buttons.length - 1 : at + step;
    next = Math.max(0, Math.min(buttons.length - 1, next));
    rove(buttons, next);
  });
  tabs.addEventListener('keydown', (event) => {
    const step = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
    if (step === undefined) return;
    event.preventDefault();
    const buttons = [...tabs.children];
    const at = buttons.indexOf(document.activeElement);
    const next = (at + step + buttons.length) % buttons.length;
    buttons[next].focus();
    buttons[next].click();
  });
  for (const part of [node, toggle]) {
    part.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape' || node.hidden) return;
      event.preventDefault();
      event.stopPropagation();
      close();
    });
  }
  // Tab (or anything else) that takes the keyboard out of the picker
  // closes it, even past the page's last control (no relatedTarget then).
  node.addEventListener('focusout', (event) => {
    const to = event.relatedTarget;
    if (to && !node.contains(to) && to !== toggle) close({ focus: false });
  });
  node.addEventListener('keydown', (event) => {
    if (event.key !== 'Tab') return;
    setTimeout(() => {
      if (!node.contains(document.activeElement)) close({ focus: false });
    });
  });
  return { toggle, node };
}

/** Moves the one Tab stop of a group to `buttons[index]`, and the focus. */
function rove(buttons, index) {
  const target = buttons[index];
  if (!target) return;
  for (const button of buttons) button.tabIndex = button === target ? 0 : -1;
  target.focus();
}
