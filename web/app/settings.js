// The user's settings, in a dialog opened from their name in the top bar:
// display name and avatar, password, language (applied at once, kept in
// this browser), and what notifications do by default. Server refusals
// show beside the form they belong to.

import { el, safeImage } from './render.js';
import { language, setLanguage, t } from './i18n.js';
import { avatarImage, generatedAvatar } from './people.js';
import { modal } from './dialog.js';
import { client, embed, errorText, redraw, state } from './session.js';

const LANGUAGES = [['en', 'English'], ['zh-CN', '中文']];

/** The top bar's account button: the user's picture and name, opening
 *  the settings (embedded, the host site owns the profile: just the name). */
export function accountButton() {
  if (embed) return el('span', { className: 'me' }, state.me.display_name);
  return el('button', {
    type: 'button', className: 'account', 'aria-label': t('openSettings', { name: state.me.display_name }),
    'aria-haspopup': 'dialog', onclick: openSettings,
  },
    avatarImage(safeImage(state.me.avatar_url, generatedAvatar(state.me.id)), state.me.id, 24),
    el('span', { className: 'me' }, state.me.display_name),
  );
}

/** Opens the settings dialog; Escape or Close ends it, and the keyboard
 *  goes back to where it was (or to the account button). */
export function openSettings() {
  document.getElementById('settings')?.remove();
  const dialog = modal({ id: 'settings', className: 'settings-dialog', 'aria-labelledby': 'settings-title' }, fill, {
    returnFocus: () => document.querySelector('.topbar .account'),
  });
  dialog.querySelector('#settings-name')?.focus();
}

/** A form's row: a label and its field, with an optional hint. */
function field(id, label, input, hint) {
  return el('div', { className: 'settings-field' },
    el('label', { for: id }, label),
    input,
    hint ? el('p', { className: 'settings-hint', id: `${id}-hint` }, hint) : null,
  );
}

function fill(dialog) {
  dialog.replaceChildren(el('div', { className: 'dialog-body settings-body' },
    el('div', { className: 'settings-top' },
      el('h2', { id: 'settings-title' }, t('settings')),
      el('button', { type: 'button', className: 'settings-close', textContent: t('close'), onclick: () => dialog.close() }),
    ),
    profileForm(),
    passwordForm(),
    el('section', { className: 'settings-section', 'aria-labelledby': 'settings-language-title' },
      el('h3', { id: 'settings-language-title' }, t('languageTitle')),
      languageChoice(dialog),
    ),
    el('section', { className: 'settings-section', 'aria-labelledby': 'settings-notify-title' },
      el('h3', { id: 'settings-notify-title' }, t('notifyTitle')),
      el('p', { className: 'settings-hint' }, t('notifyExplain')),
    ),
  ));
}

/** The user's own avatar URL, or '' when natter generates it. */
function ownAvatar() {
  const url = state.me.avatar_url || '';
  return url.startsWith('/api/v1/avatar.svg') || url === generatedAvatar(state.me.id) ? '' : url;
}

function profileForm() {
  const name = el('input', {
    id: 'settings-name', name: 'display_name', value: state.me.display_name, maxLength: 64, required: true, autocomplete: 'nickname',
  });
  const avatar = el('input', {
    // Text, not type=url: a picture on this server is a path. The generated one shows as empty.
    id: 'settings-avatar', name: 'avatar_url', inputMode: 'url', value: ownAvatar(), autocomplete: 'photo',
    placeholder: 'https://…', 'aria-describedby': 'settings-avatar-hint',
  });
  const error = el('p', { className: 'form-error', role: 'alert', id: 'settings-profile-error' });
  const done = el('p', { className: 'settings-done', role: 'status' });
  const submit = el('button', { type: 'submit', className: 'primary' }, t('save'));
  const form = el('form', { className: 'settings-section', 'aria-labelledby': 'settings-profile-title' },
    el('h3', { id: 'settings-profile-title' }, t('profileTitle')),
    field('settings-name', t('displayNameLabel'), name),
    field('settings-avatar', t('avatarLabel'), avatar, t('avatarHint')),
    error, done, submit,
  );
  form.onsubmit = async (event) => {
    event.preventDefault();
    error.textContent = '';
    done.textContent = '';
    submit.disabled = true;
    try {
      const user = await client.updateProfile({ displayName: name.value.trim(), avatarUrl: avatar.value.trim() });
      state.me = { ...state.me, ...user };
      // The member lists show the new name at once, not after their next load.
      for (const members of [...state.members.values(), state.memberSearch?.members ?? []]) {
        const mine = members.find((m) => m.id === user.id);
        if (mine) Object.assign(mine, { display_name: user.display_name, avatar_url: user.avatar_url });
      }
      done.textContent = t('profileSaved');
      redraw.main();
      redraw.members();
    } catch (e) {
      error.textContent = errorText(e);
    } finally {
      submit.disabled = false;
    }
  };
  return form;
}

function passwordForm() {
  const current = el('input', { id: 'settings-current', type: 'password', autocomplete: 'current-password', required: true });
  const next = el('input', {
    id: 'settings-new', type: 'password', autocomplete: 'new-password', required: true, 'aria-describedby': 'settings-new-hint',
  });
  const error = el('p', { className: 'form-error', role: 'alert', id: 'settings-password-error' });
  const done = el('p', { className: 'settings-done', role: 'status' });
  const submit = el('button', { type: 'submit', className: 'primary' }, t('changePassword'));
  // A hidden username field lets password managers save the right account.
  const username = el('input', {
    type: 'text', name: 'username', autocomplete: 'username', value: state.me.username || '', hidden: true, tabIndex: -1,
  });
  const form = el('form', { className: 'settings-section', 'aria-labelledby': 'settings-password-title' },
    el('h3', { id: 'settings-password-title' }, t('passwordTitle')),
    username,
    field('settings-current', t('currentPassword'), current),
    field('settings-new', t('newPassword'), next, t('newPasswordHint')),
    error, done, submit,
  );
  form.onsubmit = async (event) => {
    event.preventDefault();
    error.textContent = '';
    done.textContent = '';
    submit.disabled = true;
    try {
      await client.changePassword(current.value, next.value);
      form.reset();
      done.textContent = t('passwordChanged');
    } catch (e) {
      // The server's own words for a password it will not take (its rules may differ).
      const wrong = e?.code === 'wrong_password' || e?.code === 'invalid_credentials';
      if (wrong) error.textContent = t('wrongCurrentPassword');
      else if (e?.code === 'invalid_password' && e.message) error.textContent = t('passwordRefused', { message: e.message });
      else error.textContent = errorText(e);
      (wrong ? current : next).focus();
    } finally {
      submit.disabled = false;
    }
  };
  return form;
}

function languageChoice(dialog) {
  const select = el('select', { id: 'settings-language' },
    LANGUAGES.map(([code, label]) => el('option', { value: code, lang: code, textContent: label })));
  select.value = language();
  select.onchange = () => {
    setLanguage(select.value);
    document.documentElement.lang = language();
    redraw.main();
    fill(dialog);
    dialog.querySelector('#settings-language')?.focus();
  };
  return field('settings-language', t('languagePick'), select);
}
