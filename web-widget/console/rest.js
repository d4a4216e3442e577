// REST calls to the hub with the agent's token. A refusal throws an Error carrying the
// hub's `code` and `message` (docs/protocol.md, "Requests, acks and errors") and the
// HTTP status; an answer is its parsed JSON (null when empty).

export async function rest(hub, token, method, path, { json, body, headers = {} } = {}) {
  const res = await fetch(hub + path, {
    method,
    headers: { Authorization: 'Bearer ' + token, ...(json !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers },
    body: json !== undefined ? JSON.stringify(json) : body,
  });
  const text = await res.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* not json */ }
  if (!res.ok) throw Object.assign(new Error(parsed?.message || res.statusText), { code: parsed?.code, status: res.status });
  return parsed;
}
