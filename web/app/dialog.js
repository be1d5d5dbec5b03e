// Modal dialogs, in a <dialog>: the browser keeps the keyboard inside it,
// Escape closes it, and focus goes back to where it was. The settings
// (settings.js) and the questions with two answers (below) are built
// with `modal`; `closeDialogs` ends every one when the session does.

import { el } from './render.js';
import { t } from './i18n.js';

/** The dialogs on the page. */
const openDialogs = new Set();

/**
 * Shows a modal dialog with `attributes` (id, className, aria-…), filled
 * by `fill(dialog)`. When it closes it goes away, the keyboard goes back
 * to where it was (else to `returnFocus()`), and `onClose()` runs. One
 * builder for every dialog, so each leaves the page the same way.
 */
export function modal(attributes, fill, { onClose = () => {}, returnFocus = () => null } = {}) {
  const returnTo = document.activeElement;
  const dialog = el('dialog', attributes);
  dialog.addEventListener('close', () => {
    openDialogs.delete(dialog);
    dialog.remove();
    (returnTo?.isConnected ? returnTo : returnFocus())?.focus();
    onClose();
  }, { once: true });
  openDialogs.add(dialog);
  document.body.append(dialog);
  fill(dialog);
  dialog.showModal();
  return dialog;
}

/** The session ended: no dialog of it (the settings, a question about
 *  one of its rooms) stays on screen for whoever signs in next. */
export function closeDialogs() {
  for (const dialog of [...openDialogs]) {
    dialog.close();
    dialog.remove();
  }
}

/**
 * Asks `title` (with `text` below it); resolves to true if the user picks
 * `confirm` (a button word), false on Cancel, Escape or a click beside
 * the dialog. The safe answer, Cancel, has the focus first.
 */
export function confirmDialog({ title, text = '', confirm, danger = true }) {
  return new Promise((resolve) => {
    let answer = false;
    const cancelButton = el('button', { type: 'button', 'data-answer': 'cancel', textContent: t('cancel') });
    const confirmButton = el('button', {
      type: 'button', className: danger ? 'danger' : 'primary', 'data-answer': 'confirm', textContent: confirm,
    });
    const dialog = modal({
      className: 'confirm-dialog', 'aria-labelledby': 'dialog-title', 'aria-describedby': text ? 'dialog-text' : undefined,
    }, (box) => box.append(
      // The box's own padding is inside this, so a click on the dialog
      // element itself is one on the backdrop.
      el('div', { className: 'dialog-body' },
        el('h2', { id: 'dialog-title' }, title),
        text ? el('p', { id: 'dialog-text' }, text) : null,
        el('div', { className: 'dialog-buttons' }, cancelButton, confirmButton),
      ),
    ), { onClose: () => resolve(answer) });
    cancelButton.onclick = () => dialog.close();
    confirmButton.onclick = () => {
      answer = true;
      dialog.close();
    };
    // A click on the backdrop (the dialog itself, outside its box) cancels.
    dialog.addEventListener('click', (event) => {
      if (event.target === dialog) dialog.close();
    });
    cancelButton.focus();
  });
}
