// The composer: writing and sending a message (kept as a draft per room
// while unsent, drafts.js; retried with the same id, by hand or once the
// connection is back), answering one (reply mode) and
// changing one's own (edit mode: Enter saves, Escape cancels; ArrowUp in
// an empty composer edits the last own message).

import { newClientMsgId } from '/sdk/natter.js';
import { replaceCodes } from './emoticons.js';
import { closeEmojiPicker, emojiPicker } from './emoji-picker.js';
import { draftOf, setDraft } from './drafts.js';
import { el } from './render.js';
import { t } from './i18n.js';
import { addSent, firstLine, itemAt, lastOwnMessage } from './state.js';
import { fromTokens, toTokens } from './attention.js';
import { insertedMentions, mentionPicker, plainMentions } from './mentions.js';
import { nameOf } from './people.js';
import { typingInput, typingSent } from './typing.js';
import {
  client, errorText, isAbort, isRefusal, redraw, sessionSignal, showNotice, state,
} from './session.js';

const MAX_CHARS = 4000;

/** The composer on screen: its room and the parts a mode changes. */
let current = null;

/** Builds the composer of `room`, in whatever mode its room was left in. */
export function composer(room) {
  const input = el('textarea', {
    id: 'composer', rows: 2, maxLength: MAX_CHARS, placeholder: t('composerHint'), 'aria-label': t('composerLabel'),
  });
  const counter = el('span', { className: 'counter', 'aria-live': 'polite' });
  const banner = el('div', { className: 'compose-mode', hidden: true });
  const submit = el('button', { type: 'submit', className: 'primary' }, t('send'));
  const picker = emojiPicker({ choose: (emoji) => insertAtCursor(input, emoji), focusComposer: () => input.focus() });
  const mentions = mentionPicker(room.id, input);
  const form = el('form', { className: 'composer' },
    banner,
    mentions.node,
    input,
    el('div', { className: 'composer-tools' },
      picker.toggle,
      counter,
      submit,
    ),
    picker.node,
  );
  const updateCounter = () => {
    const left = MAX_CHARS - [...input.value].length;
    counter.textContent = left < 200 ? t('charsLeft', { count: left }) : '';
  };
  current = { roomId: room.id, input, banner, submit, updateCounter };
  const mode = state.compose.get(room.id);
  input.value = mode?.kind === 'edit' ? mode.text : draftOf(room.id).text;
  input.oninput = () => {
    // The draft (or the edit) survives redraws, switching rooms and
    // (the draft) reloads.
    const editing = state.compose.get(room.id);
    if (editing?.kind === 'edit') editing.text = input.value;
    else {
      setDraft(room.id, input.value);
      typingInput(room.id, input.value);
    }
    mentions.update();
    updateCounter();
  };
  updateCounter();
  input.onkeydown = (event) => {
    if (event.isComposing) return;
    // An open mention list takes the arrows, Enter, Tab and Escape.
    if (mentions.keydown(event)) return;
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    } else if (event.key === 'Escape' && state.compose.has(room.id)) {
      event.preventDefault();
      endMode(room.id);
    } else if (event.key === 'ArrowUp' && input.value === '' && state.compose.get(room.id)?.kind !== 'edit') {
      const own = lastOwnMessage(state, room.id);
      if (own) {
        event.preventDefault();
        startEdit(room.id, own.seq);
      }
    }
  };
  form.onsubmit = (event) => {
    event.preventDefault();
    const editing = state.compose.get(room.id);
    if (editing?.kind === 'edit') {
      saveEdit(room.id, editing);
      return;
    }
    if (!input.value.trim()) return;
    // The names picked from the list go as `<@id>` tokens.
    const text = toTokens(input.value, insertedMentions(room.id));
    typingSent(room.id);
    mentions.close();
    closeEmojiPicker();
    input.value = '';
    setDraft(room.id, '');
    updateCounter();
    const replyTo = editing?.kind === 'reply' ? editing.seq : null;
    if (replyTo !== null) state.compose.delete(room.id);
    const clientMsgId = newClientMsgId();
    state.pending.set(clientMsgId, { roomId: room.id, text, replyTo, status: 'sending' });
    refreshComposer();
    redraw.messages({ stickToBottom: true });
    sendPending(clientMsgId);
  };
  refreshComposer();
  return form;
}

/** Redraws the composer's mode: the banner and the submit button's word.
 *  A mode whose message was deleted meanwhile ends. */
export function refreshComposer() {
  if (!current || !current.input.isConnected) return;
  const { roomId, input, banner, submit } = current;
  const mode = state.compose.get(roomId);
  // A kept draft not typed in yet shows the names the page has learnt since.
  const kept = mode?.kind === 'edit' ? null : state.drafts.get(roomId);
  if (kept?.tokens !== undefined && draftOf(roomId).text !== input.value) {
    input.value = kept.text;
    current.updateCounter();
  }
  const target = mode ? itemAt(state, roomId, mode.seq) : null;
  if (mode && target?.deleted) {
    endMode(roomId);
    return;
  }
  // A reply's banner follows edits of what it answers.
  if (mode?.kind === 'reply' && target?.type === 'message') mode.text = firstLine(plainMentions(roomId, target.text));
  submit.textContent = mode?.kind === 'edit' ? t('save') : t('send');
  submit.disabled = Boolean(mode?.saving);
  if (!mode) {
    banner.hidden = true;
    banner.replaceChildren();
    return;
  }
  const label = mode.kind === 'edit'
    ? t('editing')
    : t('replyingTo', { name: mode.name, text: replaceCodes(mode.text) });
  banner.hidden = false;
  banner.replaceChildren(
    el('span', { className: 'compose-what' }, label),
    el('button', {
      type: 'button', className: 'compose-cancel', textContent: '×',
      'aria-label': mode.kind === 'edit' ? t('cancelEdit') : t('cancelReply'),
      onclick: () => {
        endMode(roomId);
        current?.input.focus();
      },
    }),
  );
}

/** Leaves reply or edit mode; after an edit the draft comes back. */
function endMode(roomId) {
  const mode = state.compose.get(roomId);
  state.compose.delete(roomId);
  if (current?.roomId === roomId && mode?.kind === 'edit') {
    current.input.value = draftOf(roomId).text;
    current.updateCounter();
  }
  refreshComposer();
}

function focusComposer(roomId, { caretAtEnd = false } = {}) {
  if (current?.roomId !== roomId || !current.input.isConnected) return;
  const { input } = current;
  input.focus();
  if (caretAtEnd) input.selectionStart = input.selectionEnd = input.value.length;
}

/** Answers message `seq`: the composer says to whom, and the next send carries `reply_to`. */
export function startReply(roomId, seq) {
  const target = itemAt(state, roomId, seq);
  if (target?.type !== 'message' || target.deleted) return;
  if (state.compose.get(roomId)?.kind === 'edit') endMode(roomId);
  state.compose.set(roomId, { kind: 'reply', seq, name: target.sender_name, text: firstLine(plainMentions(roomId, target.text)) });
  refreshComposer();
  focusComposer(roomId);
}

/** Edits one's own message `seq` in the composer. */
export function startEdit(roomId, seq) {
  const target = itemAt(state, roomId, seq);
  if (target?.type !== 'message' || target.deleted || target.sender_id !== state.me.id) return;
  // Tokens show as `@Name` while edited, and turn back into tokens on save.
  const shown = fromTokens(target.text, (id) => nameOf(roomId, id));
  // `shown`: what it began as; saved unchanged, nothing is sent.
  state.compose.set(roomId, { kind: 'edit', seq, text: shown.text, shown: shown.text, mentions: shown.mentions });
  if (current?.roomId === roomId) {
    current.input.value = shown.text;
    current.updateCounter();
  }
  refreshComposer();
  focusComposer(roomId, { caretAtEnd: true });
}

/** Saves an edit. The new text shows when its message_edited arrives. */
async function saveEdit(roomId, mode) {
  const target = itemAt(state, roomId, mode.seq);
  if (mode.saving) return;
  if (!mode.text.trim()) {
    showNotice(t('empty_message'));
    return;
  }
  const text = toTokens(mode.text, mode.mentions ?? []);
  if (!target || target.deleted || mode.text === mode.shown || text === target.text) {
    endMode(roomId);
    return;
  }
  mode.saving = true;
  refreshComposer();
  try {
    await client.editMessage(roomId, mode.seq, text, { signal: sessionSignal() });
    if (state.compose.get(roomId) === mode) endMode(roomId);
  } catch (e) {
    if (!isAbort(e)) showNotice(errorText(e));
  } finally {
    mode.saving = false;
    refreshComposer();
  }
}

/** Sends (or re-sends, with the same id) a pending message. */
export async function sendPending(clientMsgId) {
  const pending = state.pending.get(clientMsgId);
  if (!pending) return;
  pending.status = 'sending';
  if (pending.roomId === state.activeRoomId) redraw.messages({ keepBottom: true });
  try {
    const message = await client.send(pending.roomId, pending.text, {
      clientMsgId, retries: 2, replyTo: pending.replyTo ?? undefined, signal: sessionSignal(),
    });
    state.pending.delete(clientMsgId);
    addSent(state, message);
  } catch (e) {
    // The session ended: the pending message went with it.
    if (isAbort(e)) return;
    const refused = isRefusal(e);
    pending.status = refused ? 'refused' : 'failed';
    pending.error = refused ? errorText(e) : '';
  }
  if (pending.roomId === state.activeRoomId) redraw.messages({ stickToBottom: true });
}

/** The connection is back: every message that failed for want of it is
 *  sent again, with its own client message id, so none is stored twice. */
export function retryFailed() {
  for (const [clientMsgId, pending] of state.pending) {
    if (pending.status === 'failed') sendPending(clientMsgId);
  }
}

function insertAtCursor(input, text) {
  const start = input.selectionStart ?? input.value.length;
  const end = input.selectionEnd ?? start;
  input.value = input.value.slice(0, start) + text + input.value.slice(end);
  input.selectionStart = input.selectionEnd = start + text.length;
  input.focus();
  input.dispatchEvent(new Event('input'));
}
