// Business hours (issue 18): the demo widget's topic ("general") is out of hours, so
// even with an agent available the widget shows the topic's out-of-hours message above
// its offline form, and leaving a message gives a ticket. The topic is open all day
// every day except holidays on yesterday, today and tomorrow (UTC): closed now by the
// real clock, whatever the hour the test runs at.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

const MESSAGE = "We're closed; we answer from 9:00 (Paris time).";
const DAY_MS = 86400000;
const day = (offset) => new Date(Date.now() + offset * DAY_MS).toISOString().slice(0, 10);
const ALL_DAY = '["00:00-24:00"]';
const TOPICS = `
[[topic]]
name = "general"
default = true
hours = { time_zone = "UTC", weekly = { mon = ${ALL_DAY}, tue = ${ALL_DAY}, wed = ${ALL_DAY}, thu = ${ALL_DAY}, fri = ${ALL_DAY}, sat = ${ALL_DAY}, sun = ${ALL_DAY} }, holidays = ["${day(-1)}", "${day(0)}", "${day(1)}"], message = "${MESSAGE}" }

[[topic]]
name = "billing"
`;

describe('business hours', { timeout: 120000 }, () => {
  let hub, browser;
  const pages = [];

  before(async () => {
    hub = await H.startHub({ topics: TOPICS });
    browser = await H.launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => pages);

  it('shows the out-of-hours message and the offline form, and takes a message', step(async () => {
    // An agent is available: only the hours make the topic offline.
    const token = await hub.createAgent('alice', { name: 'Alice' });
    const agent = await H.newPage(browser, { name: 'alice' });
    pages.push(agent);
    await H.loginConsole(agent, hub, token);
    await H.setAvailable(agent);

    const cust = await H.newPage(browser, { name: 'customer' });
    pages.push(cust);
    await H.openWidget(cust, hub);
    assert.equal((await H.widgetState(cust)).online, false);
    const form = cust.getByTestId('sb-offline-form');
    await form.waitFor({ timeout: 15000 });
    assert.equal(await cust.getByTestId('sb-offline-hours').innerText(), MESSAGE);
    assert.match(await form.innerText(), /closed right now/);
    assert.equal(await cust.getByTestId('sb-input').isVisible(), false, 'no chat composer while closed');
    await cust.getByTestId('sb-offline-email').fill('ann@example.com');
    await cust.getByTestId('sb-offline-text').fill('Please call me back');
    await H.screenshot(cust, 'widget-out-of-hours');
    await cust.getByTestId('sb-offline-submit').click();
    await cust.getByTestId('sb-ticket').waitFor();
    const ticketId = await cust.getByTestId('sb-ticket-id').innerText();
    assert.match(ticketId, /^t_\d+$/);
    const ticket = await hub.api('GET', `/v1/tickets/${ticketId}`);
    assert.equal(JSON.stringify(ticket).includes('Please call me back'), true, JSON.stringify(ticket));
  }));
});
