// A full queue (issue 15): when `max_waiting` chats already wait in the topic, the hub
// answers `start` with `unavailable` / reason `queue_full`, and the widget shows its
// offline form with what the visitor typed, instead of a place in an endless queue.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

const ONE_WAITING = `
[[topic]]
name = "general"
default = true
skills = []
priority = 0
offer_timeout_ms = 60000
max_waiting = 1
`;

describe('queue full', { timeout: 120000 }, () => {
  let hub, browser;
  const pages = [];

  before(async () => {
    hub = await H.startHub({ topics: ONE_WAITING });
    browser = await H.launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => pages);

  it('turns a start over the cap into the offline form', step(async () => {
    // Someone is available (so the widget offers a chat), but does not accept.
    const token = await hub.createAgent('alice', { name: 'Alice' });
    const agent = await H.newPage(browser, { name: 'alice' });
    pages.push(agent);
    await H.loginConsole(agent, hub, token);
    await H.setAvailable(agent);

    const first = await H.newPage(browser, { name: 'first' });
    pages.push(first);
    await H.openWidget(first, hub);
    await H.widgetSend(first, 'I am first in line');
    await H.until(async () => {
      const stats = await hub.api('GET', '/v1/stats');
      return JSON.stringify(stats).includes('"waiting":1');
    }, { what: 'one chat waiting' });

    const late = await H.newPage(browser, { name: 'late' });
    pages.push(late);
    await H.openWidget(late, hub);
    assert.equal((await H.widgetState(late)).online, true);
    await H.widgetSend(late, 'Anyone there?');
    await late.getByTestId('sb-offline-form').waitFor({ timeout: 15000 });
    assert.equal(await late.getByTestId('sb-offline-text').inputValue(), 'Anyone there?');
    await late.getByTestId('sb-offline-email').fill('late@example.com');
    await H.screenshot(late, 'widget-queue-full');
    await late.getByTestId('sb-offline-submit').click();
    await late.getByTestId('sb-ticket').waitFor();
    assert.match(await late.getByTestId('sb-ticket-id').innerText(), /^t_\d+$/);
  }));
});
