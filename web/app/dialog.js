// A modal question with two answers, in a <dialog>: the browser keeps the
// keyboard inside it, Escape cancels, and focus goes back to where it was.

import { el } from './render.js';
import { t } from './i18n.js';

/**
 * Asks `title` (with `text` below it); resolves to true if the user picks
 * `confirm` (a button word), false on Cancel, Escape or a click beside
 * the dialog. The safe answer, Cancel, has the focus first.
 */
export function confirmDialog({ title, text = '', confirm, danger = true }) {
  const returnTo = document.activeElement;
  return new Promise((resolve) => {
    const heading = el('h2', { id: 'dialog-title' }, title);
    const cancelButton = el('button', { type: 'button', 'data-answer': 'cancel', textContent: t('cancel') });
    const confirmButton = el('button', {
      type: 'button', className: danger ? 'danger' : 'primary', 'data-answer': 'confirm', textContent: confirm,
    });
    const dialog = el('dialog', {
      className: 'confirm-dialog', 'aria-labelledby': 'dialog-title', 'aria-describedby': text ? 'dialog-text' : undefined,
    },
      // The box's own padding is inside this, so a click on the dialog
      // element itself is one on the backdrop.
      el('div', { className: 'dialog-body' },
        heading,
        text ? el('p', { id: 'dialog-text' }, text) : null,
        el('div', { className: 'dialog-buttons' }, cancelButton, confirmButton),
      ),
    );
    let answer = false;
    cancelButton.onclick = () => dialog.close();
    confirmButton.onclick = () => {
      answer = true;
      dialog.close();
    };
    // A click on the backdrop (the dialog itself, outside its box) cancels.
    dialog.addEventListener('click', (event) => {
      if (event.target === dialog) dialog.close();
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (returnTo?.isConnected) returnTo.focus();
      resolve(answer);
    }, { once: true });
    document.body.append(dialog);
    dialog.showModal();
    cancelButton.focus();
  });
}
