// Never lose a message: the network drops while the customer types (the test closes the
// page's socket), and the hub goes silent without closing anything (SIGSTOP). Each message
// must arrive exactly once after the widget reconnects by itself.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

describe('widget resilience', { timeout: 300000 }, () => {
  let hub, browser, agent, cust, convId;

  before(async () => {
    hub = await H.startHub();
    browser = await H.launchBrowser();
    const token = await hub.createAgent('alice', { name: 'Alice' });
    ({ agent, cust, convId } = await H.startChat(hub, browser, token, { first: 'Hello from a shaky network' }));
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const pages = [];
  const step = H.stepper(() => hub, () => [cust, agent, ...pages]);

  async function countStored(text) {
    const events = await H.storedEvents(hub, convId);
    return events.filter((e) => e.kind === 'message' && e.text === text).length;
  }

  async function arrivesOnce(text) {
    await agent.locator('[data-testid=msg][data-role=customer]', { hasText: text }).waitFor({ timeout: 30000 });
    await H.until(async () => (await H.widgetState(cust)).pending === 0, { what: 'widget outbox empty', timeout: 30000 });
    await cust.locator(`[data-testid=sb-msg][data-role=customer][data-seq]`, { hasText: text }).waitFor();
    assert.equal(await countStored(text), 1, `"${text}" stored once`);
    assert.equal(await agent.locator('[data-testid=msg]', { hasText: text }).count(), 1, `"${text}" shown once to the agent`);
    assert.equal(await cust.locator('[data-testid=sb-msg]', { hasText: text }).count(), 1, `"${text}" shown once to the customer`);
  }

  it('a message typed while the socket is down is sent after reconnect, once', step(async () => {
    const dropped = await H.dropSockets(cust);
    assert.equal(dropped, 1);
    await H.widgetSend(cust, 'typed while offline');
    await cust.locator('[data-testid=sb-msg][data-state=sending]', { hasText: 'typed while offline' }).waitFor();
    await H.screenshot(cust, 'widget-sending');
    await arrivesOnce('typed while offline');
  }));

  it('a message whose ack is lost is resent with its client_msg_id and stored once', step(async () => {
    await cust.getByTestId('sb-input').fill('ack lost in transit');
    // Send, then cut the socket in the same task: the frame leaves, the ack cannot come back.
    await cust.evaluate(() => {
      const root = document.getElementById('switchboard-widget').shadowRoot;
      root.querySelector('[data-testid=sb-send]').click();
      for (const s of window.__sockets) if (s.readyState <= 1) s.close();
    });
    await arrivesOnce('ack lost in transit');
  }));

  it('a silent hub (SIGSTOP) is noticed by ping within 30 s and the widget recovers', step(async () => {
    await H.until(async () => (await H.widgetState(cust)).connection === 'open', { what: 'widget connected' });
    const t0 = Date.now();
    hub.pause();
    cust.consoleLog.push(`[test] hub paused at ${new Date(t0).toISOString()}`);
    let noticed;
    try {
      await H.widgetSend(cust, 'written while the hub is frozen');
      await H.until(async () => (await H.widgetState(cust)).connection !== 'open', { timeout: 35000, interval: 200, what: 'widget to notice the silent socket' });
      noticed = Date.now() - t0;
      cust.consoleLog.push(`[test] noticed after ${noticed} ms`);
      await H.screenshot(cust, 'widget-reconnecting');
      assert.ok(noticed <= 30000, `noticed after ${noticed} ms`);
      assert.match(await cust.getByTestId('sb-conn').innerText(), /Reconnecting|Connecting/);
    } finally {
      hub.resume();
    }
    await H.until(async () => (await H.widgetState(cust)).connection === 'open', { timeout: 45000, interval: 200, what: 'widget to reconnect after SIGCONT' });
    await arrivesOnce('written while the hub is frozen');
    // The console recovered too: the agent's reply reaches the customer.
    await H.until(async () => (await H.consoleState(agent)).connection === 'open', { timeout: 45000, what: 'console reconnected' });
    await H.consoleSend(agent, 'Still here after the freeze');
    await cust.locator('[data-testid=sb-msg][data-role=agent]', { hasText: 'Still here after the freeze' }).waitFor({ timeout: 20000 });
    assert.equal(await cust.locator('[data-testid=sb-msg]', { hasText: 'Still here after the freeze' }).count(), 1);
    console.log(`# silent socket noticed after ${noticed} ms`);
  }));

  it('the sessionStorage outbox survives a reload while offline', step(async () => {
    // Refuse the socket endpoint so the message cannot leave, then reload the page.
    let blocked = true;
    await cust.context().routeWebSocket(/\/v1\/customer\/ws/, (ws) => { if (blocked) ws.close(); else ws.connectToServer(); });
    await H.dropSockets(cust);
    await H.until(async () => (await H.widgetState(cust)).connection !== 'open', { what: 'widget disconnected' });
    await H.widgetSend(cust, 'kept across a reload');
    await H.until(async () => (await H.widgetState(cust)).pending === 1, { what: 'message pending' });
    await cust.reload();
    await cust.waitForFunction(() => window.SwitchboardWidget, null, { timeout: 10000 });
    assert.equal((await H.widgetState(cust)).pending, 1, 'the message came back from sessionStorage');
    blocked = false;
    await cust.getByTestId('sb-launcher').click();
    await arrivesOnce('kept across a reload');
  }));

  it('a first message (start) whose ack is lost opens exactly one conversation', step(async () => {
    const fresh = await H.newPage(browser, { name: 'fresh' });
    pages.push(fresh);
    await H.openWidget(fresh, hub);
    await fresh.getByTestId('sb-input').fill('first words, ack lost');
    await fresh.evaluate(() => {
      const root = document.getElementById('switchboard-widget').shadowRoot;
      root.querySelector('[data-testid=sb-send]').click();
      for (const s of window.__sockets) if (s.readyState <= 1) s.close();
    });
    await H.until(async () => {
      const st = await H.widgetState(fresh);
      return st.connection === 'open' && st.synced && st.pending === 0 && st.conversationId;
    }, { timeout: 30000, what: 'the start settled' });
    const st = await H.widgetState(fresh);
    const events = await H.storedEvents(hub, st.conversationId);
    assert.equal(events.filter((e) => e.kind === 'message' && e.text === 'first words, ack lost').length, 1);
    const open = (await hub.api('GET', '/v1/conversations')).conversations.filter((c) => c.customer.id === st.visitorId);
    assert.equal(open.length, 1, 'one conversation for the visitor');
    assert.equal(await fresh.locator('[data-testid=sb-msg]', { hasText: 'first words, ack lost' }).count(), 1);
  }));
});
