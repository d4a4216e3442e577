// Which hub the console talks to. The agent's token goes to that hub (WebSocket hello,
// REST bearer), so a `?hub=` link must never point it somewhere else: only the page's
// own origin is accepted, or an origin the operator lists in
// <meta name="switchboard-allowed-hubs" content="https://hub-a.example https://hub-b.example">.
// Anything else is refused and the page's own origin is used.

/** The origins listed in the page's `switchboard-allowed-hubs` meta tag. */
export function allowedHubs(doc) {
  const content = doc.querySelector('meta[name="switchboard-allowed-hubs"]')?.getAttribute('content') || '';
  return content.split(/[\s,]+/).filter(Boolean).flatMap((text) => {
    try { return [new URL(text).origin]; } catch { return []; }
  });
}

/**
 * The hub base URL for a `?hub=` value (`param`, maybe null) on a page at `pageOrigin`.
 * Returns `{ hub, refused }`: `refused` holds the value that was not accepted, if any.
 */
export function resolveHub(param, pageOrigin, allowed = []) {
  if (!param) return { hub: pageOrigin, refused: null };
  let url;
  try { url = new URL(param, pageOrigin); } catch { return { hub: pageOrigin, refused: param }; }
  const fine = (url.protocol === 'http:' || url.protocol === 'https:')
    && !url.username && !url.password
    && (url.origin === pageOrigin || allowed.includes(url.origin));
  if (!fine) return { hub: pageOrigin, refused: param };
  return { hub: url.origin + url.pathname.replace(/\/+$/, ''), refused: null };
}
