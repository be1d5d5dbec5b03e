// The sign-in screen: log in or create an account, and switch language.

import { el } from './render.js';
import { language, t, toggleLanguage } from './i18n.js';
import { TOKEN_KEY, client, errorText, root, state, storage } from './session.js';

/** Draws the sign-in screen; `signedIn()` starts the session once the
 *  server has taken the user's password. */
export function renderAuth(signedIn) {
  root.setAttribute('aria-busy', 'false');
  const registering = state.authMode === 'register';
  const username = el('input', { id: 'username', name: 'username', autocomplete: 'username', required: true });
  const password = el('input', {
    id: 'password',
    name: 'password',
    type: 'password',
    autocomplete: registering ? 'new-password' : 'current-password',
    required: true,
  });
  const displayName = el('input', { id: 'display-name', name: 'display_name', autocomplete: 'nickname' });
  const error = el('p', { className: 'auth-error', role: 'alert', textContent: state.authError });
  const submit = el('button', { type: 'submit', className: 'primary', textContent: registering ? t('register') : t('login') });
  const form = el('form', { className: 'auth-form', 'aria-label': registering ? t('register') : t('login') },
    el('label', { for: 'username' }, t('username')), username,
    el('label', { for: 'password' }, t('password')), password,
    registering ? [el('label', { for: 'display-name' }, t('displayName')), displayName] : null,
    error,
    submit,
  );
  form.onsubmit = async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = '';
    try {
      if (registering) {
        await client.register(username.value.trim(), password.value, displayName.value.trim() || undefined);
      }
      await client.login(username.value.trim(), password.value);
      storage.setItem(TOKEN_KEY, client.token);
      state.authError = '';
      await signedIn();
    } catch (e) {
      error.textContent = errorText(e);
      submit.disabled = false;
    }
  };
  const switchMode = el('button', {
    type: 'button',
    className: 'link',
    textContent: registering ? t('haveAccount') : t('needAccount'),
    onclick: () => {
      state.authMode = registering ? 'login' : 'register';
      state.authError = '';
      renderAuth(signedIn);
    },
  });
  root.replaceChildren(
    el('main', { className: 'auth' },
      el('h1', { className: 'brand' }, t('appName')),
      form,
      switchMode,
      languageButton(() => renderAuth(signedIn)),
    ),
  );
  username.focus();
}

/** The other language's name, in that language (so marked: a screen
 *  reader says it right); its visible word is its name, for speech input,
 *  and what it does is its tooltip and description. */
export function languageButton(redraw) {
  return el('button', {
    type: 'button',
    className: 'lang',
    lang: language() === 'en' ? 'zh-CN' : 'en',
    title: t('languageLabel'),
    textContent: t('language'),
    onclick: () => {
      toggleLanguage();
      document.documentElement.lang = language();
      redraw();
    },
  });
}
