// natter's widget loader, for host sites. One tag on any page:
//
//   <script src="https://chat.example.com/widget.js" data-site="school"
//           data-token="…a token your backend signed…" async></script>
//
// adds a chat button in the bottom corner, with an unread badge, that opens
// natter in an iframe. A session made from a site token lasts a few hours
// (the site's `session_ttl_secs`); with `data-token-url="/natter-token"`,
// a URL of the host site that answers `{"token": "…"}` with a freshly
// signed token for the signed-in user, the widget fetches a new token
// when the chat asks for one, and the chat renews its session unseen. The chat runs on natter's origin, so the host
// page's CSS cannot break it and its scripts cannot read it; the two talk
// only through postMessage, each checking the other's origin.
(() => {
  const script = document.currentScript;
  if (!script || !script.src) return;
  const natter = new URL(script.src).origin;
  const site = script.dataset.site || '';
  const token = script.dataset.token || '';
  const label = script.dataset.label || 'Chat';
  // Resolved against the page, and only ever fetched from its own origin:
  // the token is the user's, and goes nowhere else.
  const tokenUrl = script.dataset.tokenUrl ? new URL(script.dataset.tokenUrl, location.href) : null;

  const host = document.createElement('div');
  host.setAttribute('data-natter-widget', '');
  const shadow = host.attachShadow({ mode: 'open' });
  const style = document.createElement('style');
  style.textContent = `
    :host { all: initial; }
    .launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; width: 56px; height: 56px;
      border-radius: 50%; border: none; background: #2f6fed; color: #fff; font: 24px/56px system-ui, sans-serif;
      cursor: pointer; box-shadow: 0 4px 14px rgba(0,0,0,.25); padding: 0; }
    .launcher:focus-visible { outline: 3px solid #9bbcff; outline-offset: 2px; }
    .badge { position: absolute; top: -4px; right: -4px; min-width: 20px; height: 20px; padding: 0 5px; border-radius: 10px;
      background: #c93c37; color: #fff; font: bold 12px/20px system-ui, sans-serif; }
    .badge[hidden] { display: none; }
    iframe { position: fixed; right: 20px; bottom: 88px; z-index: 2147483000; width: 380px; height: 560px;
      max-width: calc(100vw - 40px); max-height: calc(100vh - 108px); border: 1px solid #d0d5dd; border-radius: 12px;
      box-shadow: 0 8px 30px rgba(0,0,0,.25); background: #fff; }
    iframe[hidden] { display: none; }
  `;
  const frame = document.createElement('iframe');
  frame.title = label;
  frame.hidden = true;
  // The token travels in the fragment: it never reaches a server log.
  frame.src = `${natter}/embed/widget?site=${encodeURIComponent(site)}#token=${encodeURIComponent(token)}`;
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'launcher';
  button.setAttribute('aria-label', label);
  button.setAttribute('aria-expanded', 'false');
  button.textContent = '💬';
  const badge = document.createElement('span');
  badge.className = 'badge';
  badge.hidden = true;
  button.append(badge);
  button.addEventListener('click', () => {
    frame.hidden = !frame.hidden;
    button.setAttribute('aria-expanded', String(!frame.hidden));
    frame.contentWindow?.postMessage({ type: frame.hidden ? 'natter:close' : 'natter:open' }, natter);
  });
  window.addEventListener('message', (event) => {
    if (event.origin !== natter || event.source !== frame.contentWindow) return;
    const data = event.data || {};
    if (data.type === 'natter:token-needed' && tokenUrl && tokenUrl.origin === location.origin) {
      fetch(tokenUrl, { credentials: 'same-origin', cache: 'no-store' })
        .then((response) => (response.ok ? response.json() : null))
        .then((body) => {
          if (typeof body?.token === 'string') {
            frame.contentWindow?.postMessage({ type: 'natter:token', token: body.token }, natter);
          }
        })
        .catch(() => {});
    }
    if (data.type === 'natter:unread') {
      const count = Math.max(0, Number(data.count) || 0);
      badge.textContent = count > 99 ? '99+' : String(count);
      badge.hidden = count === 0;
      // The name holds the count the button shows (for speech input too).
      button.setAttribute('aria-label', count === 0 ? label : `${label}, ${badge.textContent}`);
    }
  });
  shadow.append(style, frame, button);
  const attach = () => document.body.append(host);
  if (document.body) attach();
  else addEventListener('DOMContentLoaded', attach, { once: true });
})();
