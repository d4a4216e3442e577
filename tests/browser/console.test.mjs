// The console's own features: a verified customer (identity signed by the site) with details,
// declining an offer, canned responses with the `/` shortcut, several conversations in tabs
// with unread badges, and a bad token refused at login.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import * as H from './harness.mjs';

const IDENTITY_SECRET = 'browser-test-identity'; // as written by the harness config

// A customer's site on another origin, embedding the widget from the hub with data-hub.
function shopSite(hubUrl, attrs) {
  const data = Object.entries(attrs).map(([k, v]) => `data-${k}="${v}"`).join(' ');
  const body = `<!doctype html><html><head><meta charset="utf-8"><title>Shop account</title><link rel="icon" href="data:,"></head>
<body><h1>Your account</h1><script src="${hubUrl}/widget.js" data-hub="${hubUrl}" ${data} async></script></body></html>`;
  const server = http.createServer((req, res) => { res.writeHead(200, { 'Content-Type': 'text/html' }); res.end(body); });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('agent console', { timeout: 240000 }, () => {
  let hub, browser, agent, alice, ann, bo, site;

  before(async () => {
    hub = await H.startHub({ extraConfig: `
[[canned_responses]]
shortcut = "refund"
text = "Your refund is on its way."

[[canned_responses]]
shortcut = "thanks"
text = "Thanks for your patience!"
` });
    browser = await H.launchBrowser();
  });

  after(async () => {
    site?.close();
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => [ann, bo, alice, agent]);

  it('refuses a bad token at login', step(async () => {
    alice = await H.newPage(browser, { name: 'alice' });
    await alice.goto(hub.url + '/console/');
    await alice.getByTestId('login-token').fill('not-a-token');
    await alice.getByTestId('login-submit').click();
    await H.until(async () => /not accepted/.test(await alice.getByTestId('login-error').innerText()), { what: 'login error' });
    await H.screenshot(alice, 'console-login');
  }));

  it('a verified customer: offer, decline, offered elsewhere, details', step(async () => {
    const token = await hub.createAgent('alice', { name: 'Alice' });
    const carolToken = await hub.createAgent('carol', { name: 'Carol' });
    await H.loginConsole(alice, hub, token);
    await H.setAvailable(alice);

    ann = await H.newPage(browser, { name: 'ann' });
    const signature = createHmac('sha256', IDENTITY_SECRET).update('u42').digest('hex');
    site = await shopSite(hub.url, { topic: 'general', 'user-id': 'u42', name: 'Ann Example', email: 'ann@example.com', signature });
    await H.openWidget(ann, { url: `http://127.0.0.1:${site.address().port}` }, { path: '/account' });
    await H.widgetSend(ann, 'Where is my invoice?');

    const offer = alice.getByTestId('offer');
    await offer.waitFor({ timeout: 20000 });
    assert.match(await offer.innerText(), /Ann Example/);
    assert.match(await offer.innerText(), /verified/);
    await alice.getByTestId('offer-decline').click();
    await offer.waitFor({ state: 'detached' });
    // Declined: the router offers it elsewhere, to Carol once she is available.
    agent = await H.newPage(browser, { name: 'carol' });
    await H.loginConsole(agent, hub, carolToken);
    await H.setAvailable(agent);
    await agent.getByTestId('offer').filter({ hasText: 'Ann Example' }).waitFor({ timeout: 20000 });
    await agent.getByTestId('offer-accept').click();
    await agent.locator('[data-testid=msg][data-role=customer]', { hasText: 'invoice' }).waitFor();

    await H.until(async () => (await agent.getByTestId('detail-email').innerText()) === 'ann@example.com', { what: 'customer email in details' });
    // The contract's signature covers the user id only: the name beside it is not verified.
    assert.equal(await agent.getByTestId('detail-verified').innerText(), 'user id only');
    assert.equal(await agent.getByTestId('detail-name').innerText(), 'Ann Example');
    assert.equal(await agent.getByTestId('conv-verified').innerText(), 'id verified');
  }));

  it('canned responses with the / shortcut', step(async () => {
    const input = agent.getByTestId('composer-input');
    await input.fill('/ref');
    await agent.getByTestId('canned-list').waitFor();
    assert.equal(await agent.getByTestId('canned-item').count(), 1);
    await H.screenshot(agent, 'console-canned');
    await input.press('Enter');
    assert.equal(await input.inputValue(), 'Your refund is on its way.');
    await input.press('Enter');
    await ann.locator('[data-testid=sb-msg][data-role=agent]', { hasText: 'Your refund is on its way.' }).waitFor();
  }));

  it('several conversations in tabs with unread badges', step(async () => {
    await alice.getByTestId('status-away').click(); // Bo's chat goes to Carol
    await alice.waitForFunction(() => window.SwitchboardConsole.state().status === 'away');
    bo = await H.newPage(browser, { name: 'bo' });
    await H.openWidget(bo, hub);
    await H.widgetSend(bo, 'Second customer here');
    await agent.getByTestId('offer').waitFor({ timeout: 20000 });
    await agent.getByTestId('offer-accept').click();
    await agent.locator('[data-testid=msg][data-role=customer]', { hasText: 'Second customer here' }).waitFor();
    assert.equal(await agent.getByTestId('tab').count(), 2);

    // Ann writes while Bo's conversation is open: Ann's tab shows an unread badge.
    await H.widgetSend(ann, 'Hello? Still there?');
    const annTab = agent.getByTestId('tab').filter({ hasText: 'Ann Example' });
    await H.until(async () => (await annTab.getByTestId('tab-unread').innerText()) === '1', { what: 'unread badge on the other tab' });
    await H.screenshot(agent, 'console-tabs');
    await annTab.click();
    await agent.locator('[data-testid=msg][data-role=customer]', { hasText: 'Still there?' }).waitFor();
    await H.until(async () => (await annTab.getByTestId('tab-unread').innerText()) === '', { what: 'badge cleared' });
    // Ann sees that the agent read it.
    await ann.locator('[data-testid=sb-msg][data-state=read]', { hasText: 'Still there?' }).waitFor();
  }));

  it('a console reload resumes every conversation, each message once', step(async () => {
    const before = await agent.getByTestId('msg').allInnerTexts();
    await agent.reload();
    await agent.waitForFunction(() => window.SwitchboardConsole?.state().connection === 'open', null, { timeout: 15000 });
    await H.until(async () => (await agent.getByTestId('tab').count()) === 2, { what: 'both tabs back' });
    const annTab = agent.getByTestId('tab').filter({ hasText: 'Ann Example' });
    await annTab.click();
    await agent.locator('[data-testid=msg]', { hasText: 'Still there?' }).waitFor();
    const texts = (await agent.getByTestId('msg').allInnerTexts()).map((t) => t.split('\n')[0]);
    assert.deepEqual(texts, before.map((t) => t.split('\n')[0]));
    await H.consoleSend(agent, 'Back after a reload');
    await ann.locator('[data-testid=sb-msg][data-role=agent]', { hasText: 'Back after a reload' }).waitFor();
  }));
});
