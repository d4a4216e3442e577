// The console's WebSocket discipline (the widget has the same rules in its own single file):
// - requests carry `req` and resolve on the matching ack, reject on error or disconnect;
// - reconnect with exponential backoff and jitter, a connect+welcome deadline;
// - nothing heard for IDLE_MS -> `ping`; no answer within PING_TIMEOUT_MS -> the socket is
//   treated as dead (half-open) and replaced without waiting for a close handshake;
// - `online` and `visibilitychange` trigger an immediate check.

const IDLE_MS = 10000;
const PING_TIMEOUT_MS = 10000;
const CONNECT_TIMEOUT_MS = 10000;
const REQUEST_TIMEOUT_MS = 20000;
const BACKOFF_MAX_MS = 8000;

export class Connection {
  /**
   * @param {object} o
   * @param {string} o.url WebSocket URL
   * @param {() => object} o.hello builds the hello frame
   * @param {(frame: object) => void} o.onFrame every frame except acks/errors with a known req
   * @param {(welcome: object) => void} o.onWelcome
   * @param {(state: string) => void} o.onState connecting | open | reconnecting | stopped
   * @param {(code: number, reason: string) => boolean} [o.onClose] return false to stop reconnecting
   */
  constructor(o) {
    this.o = o;
    this.ws = null;
    this.state = 'idle';
    this.welcomed = false;
    this.attempt = 0;
    this.retry = 0;
    this.lastHeard = 0;
    this.ping = null;
    this.n = 0;
    this.reqs = new Map();
    this.stopped = true;
    this.tick = 0;
    this.onOnline = () => this.probe();
    this.onVisible = () => { if (document.visibilityState === 'visible') this.probe(); };
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false; this.attempt = 0;
    this.tick = setInterval(() => this.watch(), 1000);
    addEventListener('online', this.onOnline);
    document.addEventListener('visibilitychange', this.onVisible);
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearInterval(this.tick);
    removeEventListener('online', this.onOnline);
    document.removeEventListener('visibilitychange', this.onVisible);
    clearTimeout(this.retry); this.retry = 0;
    const ws = this.ws;
    if (ws) { this.detach(ws); try { ws.close(1000, 'bye'); } catch { /* closing */ } }
    this.cleanup();
    this.setState('stopped');
  }

  setState(s) { if (this.state !== s) { this.state = s; this.o.onState?.(s); } }

  connect() {
    clearTimeout(this.retry); this.retry = 0;
    if (this.ws || this.stopped) return;
    this.setState(this.attempt ? 'reconnecting' : 'connecting');
    let ws;
    try { ws = new WebSocket(this.o.url); } catch { this.schedule(); return; }
    this.ws = ws; this.welcomed = false; this.lastHeard = Date.now();
    const guard = setTimeout(() => { if (this.ws === ws && !this.welcomed) this.drop('connect timeout'); }, CONNECT_TIMEOUT_MS);
    ws.onopen = () => { this.lastHeard = Date.now(); this.raw(this.o.hello()); };
    ws.onmessage = (e) => {
      if (this.ws !== ws) return;
      this.lastHeard = Date.now();
      let m;
      try { m = JSON.parse(e.data); } catch { return; }
      if (m && typeof m.type === 'string') this.frame(m);
    };
    ws.onclose = (e) => {
      clearTimeout(guard);
      if (this.ws !== ws) return;
      this.closed(e.code, e.reason);
    };
    ws.onerror = () => {};
  }

  detach(ws) { ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null; }

  /** Abandon the current socket (it may be half-open) and reconnect. */
  drop(why) {
    const ws = this.ws;
    if (!ws) return;
    this.detach(ws);
    try { ws.close(4000, why); } catch { /* closing */ }
    this.closed(0, why);
  }

  cleanup() {
    this.ws = null; this.welcomed = false; this.ping = null;
    const reqs = this.reqs; this.reqs = new Map();
    for (const r of reqs.values()) { clearTimeout(r.timer); r.reject({ code: 'disconnected' }); }
  }

  closed(code, reason) {
    this.cleanup();
    if (this.o.onClose && this.o.onClose(code, reason) === false) { this.stop(); return; }
    if (this.stopped) return;
    this.setState('reconnecting');
    this.schedule();
  }

  schedule(now) {
    if (this.retry || this.ws || this.stopped) return;
    const cap = Math.min(BACKOFF_MAX_MS, 500 * 2 ** this.attempt);
    this.attempt++;
    const delay = now ? 0 : cap / 2 + Math.random() * cap / 2;
    this.retry = setTimeout(() => { this.retry = 0; this.connect(); }, delay);
  }

  probe() {
    if (this.stopped) return;
    if (!this.ws) { this.attempt = 0; clearTimeout(this.retry); this.retry = 0; this.connect(); return; }
    if (this.welcomed && !this.ping) this.sendPing(5000);
  }

  sendPing(timeout = PING_TIMEOUT_MS) {
    const req = 'p' + (++this.n);
    this.ping = { req, at: Date.now(), timeout };
    this.raw({ type: 'ping', req });
  }

  watch() {
    if (!this.ws || this.ws.readyState !== 1 || !this.welcomed) return;
    const now = Date.now();
    if (this.ping) {
      if (this.lastHeard > this.ping.at) this.ping = null;
      else if (now - this.ping.at >= this.ping.timeout) this.drop('ping timeout');
    } else if (now - this.lastHeard >= IDLE_MS) this.sendPing();
  }

  frame(m) {
    if (m.type === 'welcome') {
      this.welcomed = true; this.attempt = 0;
      this.setState('open');
      this.o.onWelcome(m);
      return;
    }
    if (m.type === 'ack' || m.type === 'error') {
      if (this.ping && m.req === this.ping.req) { this.ping = null; return; }
      const r = m.req != null && this.reqs.get(m.req);
      if (r) {
        this.reqs.delete(m.req); clearTimeout(r.timer);
        if (m.type === 'ack') r.resolve(m); else r.reject(m);
        return;
      }
    }
    this.o.onFrame(m);
  }

  raw(obj) {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return false;
    try { ws.send(JSON.stringify(obj)); return true; } catch { return false; }
  }

  /** Sends a frame without req (typing, read). */
  send(obj) { return this.welcomed && this.raw(obj); }

  /** Sends a frame with a fresh req; resolves with the ack, rejects with the error frame
   *  or {code:'disconnected'|'timeout'}. */
  request(frame) {
    return new Promise((resolve, reject) => {
      if (!this.ws || !this.welcomed) { reject({ code: 'disconnected' }); return; }
      const req = 'r' + (++this.n);
      const ws = this.ws;
      const entry = {
        resolve, reject,
        timer: setTimeout(() => {
          if (this.reqs.get(req) !== entry) return;
          this.reqs.delete(req);
          reject({ code: 'timeout' });
          if (this.ws === ws && !this.ping) this.sendPing(5000);
        }, REQUEST_TIMEOUT_MS),
      };
      this.reqs.set(req, entry);
      if (!this.raw({ ...frame, req })) { clearTimeout(entry.timer); this.reqs.delete(req); reject({ code: 'disconnected' }); }
    });
  }
}

/**
 * Applies a conversation's events strictly in seq order. Live events ahead of a gap wait in
 * a buffer until `history` fills it; anything at or below the highest applied seq is ignored.
 */
export class ConvLog {
  constructor(id, conn, apply) {
    this.id = id;
    this.conn = conn;
    this.applyFn = apply;
    this.applied = 0;
    this.buffer = new Map();
    this.busy = false;
    this.waiters = [];
  }

  apply(ev) { this.applied = ev.seq; this.applyFn(ev); }

  /** A live event. */
  offer(ev) {
    if (ev.seq <= this.applied || this.buffer.has(ev.seq)) return;
    this.buffer.set(ev.seq, ev);
    this.drain();
    if (this.buffer.size) this.catchUp();
  }

  /** The ack of our own `message` on an `echo: false` connection (docs/protocol.md, "Echo of
   *  one's own messages"): the hub sends it instead of the event and after every event below
   *  it, so the event is rebuilt from what was sent and taken like a live one. An ack without
   *  `ts` (a resend, or a hub that echoes anyway) leaves the event to arrive or to history. */
  acked(ack, from, sent) {
    if (typeof ack.ts !== 'number') return;
    this.offer({ type: 'event', conversation_id: this.id, seq: ack.seq, ts: ack.ts, kind: 'message', from,
      text: sent.text, client_msg_id: sent.cmid, ...(sent.attachment ? { attachment: sent.attachment } : {}) });
  }

  drain() {
    let ev;
    while ((ev = this.buffer.get(this.applied + 1))) { this.buffer.delete(ev.seq); this.apply(ev); }
  }

  /** Fetches history after the highest applied seq until nothing is missing. Resolves when
   *  caught up (or on a permanent error); a disconnect leaves it to the next resume. */
  catchUp() {
    const p = new Promise((resolve) => this.waiters.push(resolve));
    this.fetch();
    return p;
  }

  fetch() {
    if (this.busy) return;
    if (!this.conn.welcomed) return;
    this.busy = true;
    this.conn.request({ type: 'history', conversation_id: this.id, after_seq: this.applied, limit: 200 }).then((ack) => {
      this.busy = false;
      const evs = (ack.events || []).filter((e) => e.seq > this.applied).sort((a, b) => a.seq - b.seq);
      for (const e of evs) this.apply(e);
      for (const k of [...this.buffer.keys()]) if (k <= this.applied) this.buffer.delete(k);
      if (!ack.more && !evs.length && this.buffer.size) {
        this.flushBuffer(); // nothing visible below the buffered events: apply them in order
      }
      this.drain();
      if (ack.more || this.buffer.size) this.fetch();
      else this.done();
    }, (err) => {
      this.busy = false;
      if (err.code === 'disconnected') return;
      if (err.code === 'unavailable' || err.code === 'rate_limited' || err.code === 'timeout') {
        setTimeout(() => this.fetch(), 1000 + Math.random() * 1000);
      } else {
        // History refused (e.g. no longer a member): nothing can fill the gap, so apply what
        // arrived, still in order, rather than hide it.
        this.flushBuffer();
        this.done(err);
      }
    });
  }

  flushBuffer() {
    for (const k of [...this.buffer.keys()].sort((a, b) => a - b)) { const e = this.buffer.get(k); this.buffer.delete(k); this.apply(e); }
  }

  done(err) { const w = this.waiters; this.waiters = []; for (const f of w) f(err); }

  /** Forget in-flight state after a disconnect. */
  reset() { this.busy = false; }
}

export function randomId(prefix) {
  const b = crypto.getRandomValues(new Uint8Array(8));
  return prefix + [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}
