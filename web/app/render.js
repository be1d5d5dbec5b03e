// Building DOM safely. Everything users write (messages, names, titles) is
// only ever put into the page as text: this module creates elements with
// createElement and fills them with textContent, never with HTML.

import { replaceCodes } from './emoticons.js';

/**
 * Creates an element. `props` sets properties (`className`, `type`,
 * `textContent`, `onclick` …) or, for names starting with `aria-`/`data-`
 * or `role`, attributes. Children are nodes or strings (added as text).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('aria-') || key.startsWith('data-') || key === 'role' || key === 'for') {
      node.setAttribute(key, String(value));
    } else {
      node[key] = value;
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`]+[^\s<>"'`.,;:!?)\]}]/gi;

/**
 * A message body as nodes: text with emoticon codes shown as emoji, and
 * http(s) links made clickable (opened in a new tab, without giving the
 * opened page a handle on this one). Only http and https become links.
 */
export function renderText(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    if (match.index > last) fragment.append(replaceCodes(text.slice(last, match.index)));
    const href = safeHref(match[0]);
    if (href) {
      fragment.append(el('a', { href, target: '_blank', rel: 'noopener noreferrer nofollow', textContent: match[0] }));
    } else {
      fragment.append(match[0]);
    }
    last = match.index + match[0].length;
  }
  if (last < text.length) fragment.append(replaceCodes(text.slice(last)));
  return fragment;
}

function safeHref(candidate) {
  try {
    const url = new URL(candidate);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/** An avatar URL that is safe for `<img src>`: http(s) or a path on this server. */
export function safeImage(url, fallback) {
  // https, or a path on this server: one slash, then neither a slash nor
  // a backslash (browsers read "/\host" as another host). Plain http is
  // refused by the page's CSP anyway.
  if (typeof url === 'string' && (/^https:\/\//i.test(url) || /^\/[^/\\]/.test(url))) return url;
  return fallback;
}

/** `HH:MM` in the user's locale. */
export function clock(ms, locale) {
  return new Date(ms).toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' });
}

/** A day key for grouping, and whether two timestamps share a day. */
export function dayKey(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}
