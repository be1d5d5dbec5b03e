// Jumping to a message (the original of a quote): older pages of history
// are read until it is loaded, then it is scrolled to, focused and
// highlighted a moment (kept across redraws meanwhile).

import { timelineOf } from './state.js';
import { loadOlder } from './loads.js';
import { errorText, isAbort, roomSignal, showNotice, state } from './session.js';

const HIGHLIGHT_MS = 2000;

/** The message shown as the target of a jump, while it is highlighted. */
let highlighted = null;

/** Whether a redraw of message `seq` should keep its highlight. */
export function isHighlighted(roomId, seq) {
  return highlighted !== null && highlighted.roomId === roomId && highlighted.seq === seq;
}

/**
 * Scrolls to message `seq` and highlights it a moment, reading older
 * pages of history until it is loaded.
 */
export async function jumpToMessage(roomId, seq) {
  const signal = roomSignal();
  while (!signal.aborted && roomId === state.activeRoomId) {
    const node = document.querySelector(`#messages li.message[data-seq="${seq}"]`);
    if (node) {
      highlight(roomId, seq, node);
      return;
    }
    const timeline = timelineOf(state, roomId);
    const oldest = timeline?.items[0]?.seq;
    // Loaded as far back as the original, or as far as history goes.
    if (!timeline || !timeline.hasMore || oldest === undefined || oldest <= seq) return;
    try {
      await loadOlder(roomId, signal);
    } catch (e) {
      if (!isAbort(e)) showNotice(errorText(e));
      return;
    }
    if (timelineOf(state, roomId)?.items[0]?.seq === oldest) return;
  }
}

function highlight(roomId, seq, node) {
  highlighted = { roomId, seq };
  node.classList.add('highlight');
  node.scrollIntoView({ block: 'center' });
  node.focus({ preventScroll: true });
  setTimeout(() => {
    if (highlighted?.roomId !== roomId || highlighted.seq !== seq) return;
    highlighted = null;
    document.querySelector(`#messages li.message[data-seq="${seq}"]`)?.classList.remove('highlight');
  }, HIGHLIGHT_MS);
}
