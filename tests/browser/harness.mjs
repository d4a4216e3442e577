// Test harness for the browser tests: a private redis-server and the real hub binary on free
// ports in a temp dir, agents created through the admin API, Debian's chromium driven by
// playwright-core, and helpers that wait for conditions (never sleeps).

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..', '..');
export const ARTIFACTS = path.join(REPO, 'test-artifacts');
const BIN = process.env.SWITCHBOARD_BIN
  || path.join(process.env.CARGO_TARGET_DIR || path.join(REPO, 'target'), 'debug', 'switchboard');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const ADMIN_TOKEN = 'browser-test-admin';

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `fn` until it returns a truthy value; throws with `what` after `timeout` ms. */
export async function until(fn, { timeout = 15000, interval = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) { last = err; }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? ': ' + last.message : ''}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

function redisPing(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => { buf += d; if (buf.includes('\r\n')) { s.destroy(); resolve(buf.startsWith('+PONG')); } });
    s.on('error', () => resolve(false));
    s.setTimeout(1000, () => { s.destroy(); resolve(false); });
  });
}

function waitExit(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } resolve(); }, ms);
    child.once('exit', () => { clearTimeout(t); resolve(); });
  });
}

const DEFAULT_TOPICS = `
[[topic]]
name = "general"
default = true
skills = []
priority = 0
offer_timeout_ms = 15000
transfer_timeout_ms = 20000

[[topic]]
name = "billing"
skills = ["billing"]
priority = 5
offer_timeout_ms = 15000
transfer_timeout_ms = 4000
`;

/**
 * Starts redis-server and the hub. Returns {url, wsUrl, hub (ChildProcess), createAgent, api,
 * pause, resume, stop, log}.
 */
export async function startHub({ topics = DEFAULT_TOPICS, extraConfig = '' } = {}) {
  if (!existsSync(BIN)) throw new Error(`hub binary not found at ${BIN}: run cargo build first`);
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-browser-'));
  const redisPort = await freePort();
  const redisLog = [];
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir,
    '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  redis.stdout.on('data', (d) => redisLog.push(String(d)));
  redis.stderr.on('data', (d) => redisLog.push(String(d)));
  await until(() => redisPing(redisPort), { timeout: 10000, what: 'redis-server' });

  const configPath = path.join(dir, 'routing.toml');
  writeFileSync(configPath, `admin_token = "${ADMIN_TOKEN}"
identity_secret = "browser-test-identity"
${extraConfig}
${topics}

[attachments.store]
kind = "local"
directory = ${JSON.stringify(path.join(dir, 'files'))}
`);
  const log = [];
  const hub = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--redis-url', `redis://127.0.0.1:${redisPort}/0`, '--config', configPath],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SWITCHBOARD_LOG: process.env.SWITCHBOARD_LOG || 'info' } });
  const url = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('hub did not print "listening on" within 30 s:\n' + log.join(''))), 30000);
    const onData = (d) => {
      const s = String(d);
      log.push(s);
      const m = /listening on (http:\/\/[^\s]+)/.exec(log.join(''));
      if (m) { clearTimeout(t); resolve(m[1].replace(/\/$/, '')); }
    };
    hub.stdout.on('data', onData);
    hub.stderr.on('data', onData);
    hub.once('exit', (code) => { clearTimeout(t); reject(new Error(`hub exited with ${code}:\n${log.join('')}`)); });
  });
  hub.stdout.removeAllListeners('data');
  hub.stderr.removeAllListeners('data');
  hub.stdout.on('data', (d) => log.push(String(d)));
  hub.stderr.on('data', (d) => log.push(String(d)));

  async function api(method, p, body, token = ADMIN_TOKEN) {
    const res = await fetch(url + p, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not json */ }
    if (!res.ok) throw new Error(`${method} ${p} -> ${res.status} ${text}`);
    return json;
  }

  let paused = false;
  return {
    url,
    dir,
    hub,
    log,
    api,
    async createAgent(id, opts = {}) {
      const body = { id, name: opts.name || id[0].toUpperCase() + id.slice(1), skills: opts.skills || {}, capacity: opts.capacity ?? 3,
        supervisor: !!opts.supervisor, auto_accept: !!opts.auto_accept };
      const res = await api('POST', '/v1/agents', body);
      return res.token;
    },
    pause() { paused = true; process.kill(hub.pid, 'SIGSTOP'); },
    resume() { paused = false; process.kill(hub.pid, 'SIGCONT'); },
    async stop() {
      if (paused) try { process.kill(hub.pid, 'SIGCONT'); } catch { /* gone */ }
      try { hub.kill('SIGTERM'); } catch { /* gone */ }
      await waitExit(hub, 5000);
      try { redis.kill('SIGTERM'); } catch { /* gone */ }
      await waitExit(redis, 5000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

// Keeps every WebSocket a page opens in window.__sockets, so a test can drop the network
// under the page (close the socket from outside) without a hook in the product code.
const TRACK_SOCKETS = () => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.__sockets.push(this); }
  };
};

/** A new isolated browser context and page. */
export async function newPage(browser, { viewport = { width: 1280, height: 800 }, name = 'page', ...opts } = {}) {
  const context = await browser.newContext({ viewport, ...opts });
  await context.addInitScript(TRACK_SOCKETS);
  const page = await context.newPage();
  page.consoleLog = [];
  page.on('console', (m) => page.consoleLog.push(`[${name}] ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => page.consoleLog.push(`[${name}] pageerror: ${e.message}`));
  // WebSocket frames, for the diagnostics of a failing test.
  page.on('websocket', (ws) => {
    const tag = `[${name}] ws ${new URL(ws.url()).pathname}`;
    const t0 = Date.now();
    const stamp = () => `+${((Date.now() - t0) / 1000).toFixed(1)}s`;
    const clip = (p) => String(p).slice(0, 300);
    ws.on('framesent', (f) => page.consoleLog.push(`${tag} ${stamp()} > ${clip(f.payload)}`));
    ws.on('framereceived', (f) => page.consoleLog.push(`${tag} ${stamp()} < ${clip(f.payload)}`));
    ws.on('close', () => page.consoleLog.push(`${tag} ${stamp()} closed`));
  });
  return page;
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, name + '.png'), animations: 'disabled' });
}

/** Closes every open WebSocket of a page, as a network drop would. */
export async function dropSockets(page) {
  return page.evaluate(() => {
    let n = 0;
    for (const s of window.__sockets) if (s.readyState <= 1) { s.close(); n++; }
    return n;
  });
}

// --------------------------------------------------------------- page objects

export async function openWidget(page, hub, { path: p = '/demo' } = {}) {
  await page.goto(hub.url + p);
  await page.waitForFunction(() => window.SwitchboardWidget && window.SwitchboardWidget.state().connection === 'open', null, { timeout: 15000 });
  await page.getByTestId('sb-launcher').click();
  await page.getByTestId('sb-panel').waitFor({ state: 'visible' });
}

export function widgetState(page) { return page.evaluate(() => window.SwitchboardWidget.state()); }

export async function widgetSend(page, text) {
  const input = page.getByTestId('sb-input');
  await input.fill(text);
  await input.press('Enter');
}

export async function loginConsole(page, hub, token, { hash = '' } = {}) {
  await page.goto(hub.url + '/console/' + hash);
  await page.getByTestId('login-token').fill(token);
  await page.getByTestId('login-submit').click();
  await page.waitForFunction(() => window.SwitchboardConsole && window.SwitchboardConsole.state().connection === 'open', null, { timeout: 15000 });
}

export async function setAvailable(page) {
  await page.getByTestId('status-available').click();
  await page.waitForFunction(() => window.SwitchboardConsole.state().status === 'available', null, { timeout: 10000 });
}

export function consoleState(page) { return page.evaluate(() => window.SwitchboardConsole.state()); }

export async function consoleSend(page, text) {
  const input = page.getByTestId('composer-input');
  await input.fill(text);
  await input.press('Enter');
}

/** Wraps the steps of one scenario: after a failing step (whose diagnostics are printed),
 *  the later steps are skipped instead of timing out one by one. */
export function stepper(getHub, getPages) {
  let broken = false;
  return (fn) => async (t) => {
    if (broken) { t.skip('an earlier step failed'); return; }
    try { await fn(t); } catch (err) { broken = true; console.log(diagnostics(getHub(), getPages())); throw err; }
    if (process.env.SB_DIAG) console.log(diagnostics(getHub(), getPages()));
  };
}

/** Dumps page console logs and the hub log tail when a test fails. */
export function diagnostics(hub, pages) {
  const out = [];
  for (const p of pages) if (p && p.consoleLog) out.push(...p.consoleLog.slice(-60));
  if (hub) out.push('--- hub log (tail) ---', hub.log.join('').split('\n').slice(-60).join('\n'));
  return out.join('\n');
}

/** Customer page with an open widget and an agent console page (available), chatting:
 *  the customer wrote `first`, the agent accepted the offer. */
export async function startChat(hub, browser, agentToken, { first = 'Hello, I need help', customerName = 'customer', agentName = 'agent', viewport } = {}) {
  const agent = await newPage(browser, { name: agentName });
  await loginConsole(agent, hub, agentToken);
  await setAvailable(agent);
  const cust = await newPage(browser, { name: customerName, viewport: viewport || { width: 1100, height: 760 } });
  await openWidget(cust, hub);
  await widgetSend(cust, first);
  const offer = agent.getByTestId('offer');
  await offer.waitFor({ timeout: 20000 });
  const convId = await offer.getAttribute('data-conversation-id');
  await agent.getByTestId('offer-accept').click();
  await agent.locator('[data-testid=msg][data-role=customer]', { hasText: first }).waitFor();
  await cust.getByTestId('sb-system').filter({ hasText: 'joined' }).waitFor();
  return { agent, cust, convId };
}

/** The conversation's stored events, from the admin API. */
export async function storedEvents(hub, convId) {
  const body = await hub.api('GET', '/v1/conversations/' + encodeURIComponent(convId));
  return body.events;
}
