// The console's `?hub=` parameter (issue 15): the agent's token goes to the hub it names,
// so only the page's own origin (or one listed in the page's switchboard-allowed-hubs meta
// tag) is accepted. A link naming another host is ignored: the console logs in to its own
// origin and that host never hears from it.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { resolveHub } from '../../web-widget/console/hub.js';
import * as H from './harness.mjs';

describe('resolveHub', () => {
  const page = 'http://127.0.0.1:8080';
  it('uses the page origin without a parameter', () => {
    assert.deepEqual(resolveHub(null, page), { hub: page, refused: null });
    assert.deepEqual(resolveHub('', page), { hub: page, refused: null });
  });
  it('accepts the page origin itself', () => {
    assert.deepEqual(resolveHub('http://127.0.0.1:8080/', page), { hub: page, refused: null });
  });
  it('refuses any other origin, scheme or credentials', () => {
    for (const param of ['https://evil.example', 'http://127.0.0.1:8081', '//evil.example/x',
      'javascript:alert(1)', 'http://user:pw@127.0.0.1:8080', 'ftp://127.0.0.1:8080', 'http://[']) {
      const { hub, refused } = resolveHub(param, page);
      assert.equal(hub, page, param);
      assert.equal(refused, param, param);
    }
  });
  it('accepts an origin the operator allows', () => {
    const other = 'https://hub-b.example';
    assert.deepEqual(resolveHub(other + '/', page, [other]), { hub: other, refused: null });
    assert.equal(resolveHub('https://hub-c.example', page, [other]).hub, page);
  });
});

describe('console ?hub= in the browser', { timeout: 120000 }, () => {
  let hub, browser, page, trap;
  const requests = [];

  before(async () => {
    hub = await H.startHub();
    browser = await H.launchBrowser();
    // Stands in for an attacker's host: records every request (WebSocket upgrades too).
    trap = http.createServer((req, res) => { requests.push(`${req.method} ${req.url}`); res.writeHead(404); res.end(); });
    trap.on('upgrade', (req, socket) => { requests.push(`UPGRADE ${req.url}`); socket.destroy(); });
    await new Promise((resolve) => trap.listen(0, '127.0.0.1', resolve));
  });

  after(async () => {
    trap?.close();
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => [page]);

  it('never sends the token to another host', step(async () => {
    const token = await hub.createAgent('alice', { name: 'Alice' });
    page = await H.newPage(browser, { name: 'alice' });
    const evil = `http://127.0.0.1:${trap.address().port}`;
    await page.goto(`${hub.url}/console/?hub=${encodeURIComponent(evil)}`);
    await H.until(async () => /not allowed/.test(await page.getByTestId('login-error').innerText()), { what: 'the refused-hub notice' });
    await page.getByTestId('login-token').fill(token);
    await page.getByTestId('login-submit').click();
    await page.waitForFunction(() => window.SwitchboardConsole?.state().connection === 'open', null, { timeout: 15000 });
    const state = await H.consoleState(page);
    assert.equal(state.hub, hub.url);
    assert.equal(state.refusedHub, evil);
    await H.setAvailable(page); // REST and WebSocket both in use by now
    assert.deepEqual(requests, [], 'the other host was contacted');
  }));
});
