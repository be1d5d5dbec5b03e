// One message in the conversation, as it stands now: sender and time, the
// quote of what it answers, its text (or that it was deleted), "(edited)",
// its reaction chips and its actions; also the list's other lines (a day
// starts, someone joined). Every piece of user text goes in as text
// (render.js, textContent, title), never as markup.

import { CODES, replaceCodes } from './emoticons.js';
import { clock, dayKey, el } from './render.js';
import { language, t } from './i18n.js';
import { quoteFor, reactionsOf } from './state.js';
import { loadQuote } from './loads.js';
import { avatarImage, avatarOf, nameOf } from './people.js';
import { actionsControl, longPress, toggleReaction } from './message-actions.js';
import { sendPending } from './composer.js';
import { messageText, plainMentions } from './mentions.js';
import { mentionsMe } from './attention.js';
import { redraw, state } from './session.js';

/**
 * The list item of a stored message. `grouped` leaves out the avatar and
 * name (the same sender just before); `jump(roomId, seq)` shows the
 * original of a quote.
 */
export function messageItem(roomId, message, grouped, { jump }) {
  const mine = message.sender_id === state.me.id;
  // A message that names the user stands out, as in Slack.
  const forMe = !mine && !message.deleted && mentionsMe(message, state.me.id);
  const item = el('li', {
    className: 'message' + (grouped ? ' grouped' : '') + (mine ? ' mine' : '') + (message.deleted ? ' deleted' : '')
      + (forMe ? ' mentions-me' : ''),
    'data-seq': message.seq,
    // Focusable by script (a jump) and by a click, which shows its actions.
    tabIndex: -1,
  },
    grouped ? null : avatarImage(avatarOf(roomId, message.sender_id), message.sender_id, 36),
    el('div', { className: 'bubble' },
      grouped ? null : el('div', { className: 'meta' },
        el('span', { className: 'sender' }, message.sender_name),
        el('time', { dateTime: new Date(message.ts).toISOString() }, clock(message.ts, language())),
      ),
      message.reply_to !== null && !message.deleted ? quote(roomId, message.reply_to, jump) : null,
      message.deleted
        ? el('div', { className: 'text deleted' }, t('messageDeleted'))
        : el('div', { className: 'text' }, messageText(roomId, message.text)),
      message.edited_at && !message.deleted
        ? el('span', {
          className: 'edited',
          title: t('editedAt', { time: new Date(message.edited_at).toLocaleString(language()) }),
        }, t('edited'))
        : null,
      reactionChips(roomId, message),
    ),
    message.deleted ? null : actionsControl(roomId, message),
  );
  if (!message.deleted) longPress(item, roomId, message);
  return item;
}

/** A message being sent, or that could not be. */
export function pendingItem(clientMsgId, pending, { jump }) {
  return el('li', { className: 'message mine pending', 'data-client-id': clientMsgId },
    el('div', { className: 'bubble' },
      pending.replyTo !== null && pending.replyTo !== undefined ? quote(pending.roomId, pending.replyTo, jump) : null,
      el('div', { className: 'text' }, messageText(pending.roomId, pending.text)),
      el('div', { className: 'status' },
        pending.status === 'sending' ? t('sending') : t('failed'),
        pending.error ? ` ${pending.error}` : '',
        pending.status === 'failed'
          ? el('button', { type: 'button', className: 'retry', textContent: t('retry'), onclick: () => sendPending(clientMsgId) })
          : null,
        pending.status === 'refused'
          ? el('button', {
            type: 'button', className: 'retry', textContent: t('dismiss'),
            onclick: () => {
              state.pending.delete(clientMsgId);
              redraw.messages();
            },
          })
          : null,
      ),
    ),
  );
}

/**
 * What a reply shows of its original: from the original if loaded, else
 * from the preview history gave, else read from the server (the quote is
 * redrawn when that arrives). A click shows the original.
 */
function quote(roomId, seq, jump) {
  const original = quoteFor(state, roomId, seq);
  if (!original) loadQuote(roomId, seq);
  let text = '…';
  if (original?.missing) text = t('quoteUnavailable');
  else if (original?.deleted) text = t('messageDeleted');
  else if (original) text = replaceCodes(plainMentions(roomId, original.text));
  const name = original && !original.missing ? original.sender_name ?? nameOf(roomId, original.sender_id) : '';
  return el('button', {
    type: 'button',
    className: 'quote' + (original?.deleted ? ' deleted' : ''),
    title: t('showOriginal'),
    'aria-label': t('quoteOf', { name, text }),
    'data-action': 'quote',
    onclick: () => jump(roomId, seq),
  },
    name ? el('span', { className: 'quote-sender' }, name) : null,
    el('span', { className: 'quote-text' }, text),
  );
}

/** One chip per reaction: its emoji (a code shown as its emoji) and count;
 *  the tooltip says who; a click adds or takes back the user's own. */
function reactionChips(roomId, message) {
  const reactions = reactionsOf(message);
  if (reactions.length === 0) return null;
  return el('div', { className: 'reactions', role: 'group', 'aria-label': t('reactions') },
    reactions.map((r) => {
      const mine = r.user_ids.includes(state.me.id);
      const names = r.user_ids.map((id) => nameOf(roomId, id)).join(', ');
      return el('button', {
        type: 'button',
        className: 'reaction' + (mine ? ' mine' : ''),
        title: t('reactedBy', { names, reaction: r.reaction }),
        'aria-pressed': String(mine),
        'data-action': `reaction:${r.reaction}`,
        onclick: () => toggleReaction(roomId, message, r.reaction),
      },
        el('span', { className: 'reaction-emoji' }, CODES.get(r.reaction) ?? r.reaction),
        el('span', { className: 'reaction-count' }, String(r.count)),
      );
    }),
  );
}

/** A room event's line (someone joined, left, renamed the room). */
export function systemItem(event) {
  return el('li', { className: 'system' }, systemText(event));
}

/** The line that starts a day's messages. */
export function dayItem(ms) {
  // A plain item: a separator's text is hidden from screen readers.
  return el('li', { className: 'day' }, dayLabel(ms));
}

function systemText(event) {
  switch (event.type) {
    case 'member_joined': return t('joinedEvent', { name: event.display_name });
    case 'member_left': return t('leftEvent', { name: event.sender_name });
    case 'room_created':
      return event.kind === 'direct'
        ? t('directCreated', { name: event.sender_name })
        : t('createdEvent', { name: event.sender_name, title: event.title });
    case 'room_updated': return t('renamedEvent', { name: event.sender_name, title: event.title });
    default: return '';
  }
}

function dayLabel(ms) {
  const today = new Date();
  const yesterday = new Date(today.getTime() - 86400000);
  if (dayKey(ms) === dayKey(today.getTime())) return t('today');
  if (dayKey(ms) === dayKey(yesterday.getTime())) return t('yesterday');
  return new Date(ms).toLocaleDateString(language());
}
