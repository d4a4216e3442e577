// The widget on its own: the offline form when nobody is available, keyboard access, and a
// phone-sized viewport.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

describe('widget UI', { timeout: 180000 }, () => {
  let hub, browser, page;

  before(async () => {
    hub = await H.startHub();
    browser = await H.launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => [page]);

  it('offers an offline form when nobody is online and shows the ticket number', step(async () => {
    page = await H.newPage(browser, { name: 'offline' });
    await H.openWidget(page, hub);
    assert.equal((await H.widgetState(page)).online, false);
    await page.getByTestId('sb-offline-form').waitFor();
    assert.equal(await page.getByTestId('sb-input').isVisible(), false, 'no chat composer while offline');
    await page.getByTestId('sb-offline-name').fill('Ann');
    await page.getByTestId('sb-offline-email').fill('ann@example.com');
    await page.getByTestId('sb-offline-text').fill('Please call me back about my subscription');
    await H.screenshot(page, 'widget-offline');
    await page.getByTestId('sb-offline-submit').click();
    await page.getByTestId('sb-ticket').waitFor();
    const ticketId = await page.getByTestId('sb-ticket-id').innerText();
    assert.match(ticketId, /^t_\d+$/);
    const ticket = await hub.api('GET', '/v1/tickets/' + ticketId);
    assert.equal(ticket.resolution, 'offline_message');
    assert.ok(JSON.stringify(ticket.transcript).includes('Please call me back'));
    await page.context().close();
  }));

  it('is keyboard accessible: launcher, focus in the composer, Esc closes', step(async () => {
    await hub.createAgent('alice', { name: 'Alice' }).then(async (token) => {
      // Someone available so the widget shows the chat composer.
      const agent = await H.newPage(browser, { name: 'alice' });
      await H.loginConsole(agent, hub, token);
      await H.setAvailable(agent);
    });
    page = await H.newPage(browser, { name: 'keyboard' });
    await page.goto(hub.url + '/demo');
    await page.waitForFunction(() => window.SwitchboardWidget?.state().connection === 'open');
    const launcher = page.getByTestId('sb-launcher');
    assert.equal(await launcher.getAttribute('aria-label'), 'Open chat');
    assert.equal(await launcher.getAttribute('aria-expanded'), 'false');
    // Reach the launcher with Tab like a keyboard user (it comes after the page's own links).
    await page.locator('body').click({ position: { x: 5, y: 300 } });
    await H.until(async () => {
      await page.keyboard.press('Tab');
      return page.evaluate(() => document.activeElement?.id === 'switchboard-widget' &&
        document.activeElement.shadowRoot.activeElement?.dataset.testid === 'sb-launcher');
    }, { timeout: 20000, interval: 0, what: 'Tab to reach the launcher' });
    await page.keyboard.press('Enter');
    await page.getByTestId('sb-panel').waitFor();
    assert.equal(await launcher.getAttribute('aria-expanded'), 'true');
    const focused = () => page.evaluate(() => document.getElementById('switchboard-widget').shadowRoot.activeElement?.dataset.testid);
    assert.equal(await focused(), 'sb-input', 'focus moves to the composer');
    await page.keyboard.type('typed with the keyboard');
    await page.keyboard.press('Enter');
    await page.locator('[data-testid=sb-msg]', { hasText: 'typed with the keyboard' }).waitFor();
    await page.keyboard.press('Escape');
    await page.getByTestId('sb-panel').waitFor({ state: 'hidden' });
    assert.equal(await focused(), 'sb-launcher', 'focus returns to the launcher');
    assert.ok(await page.getByTestId('sb-panel').getAttribute('aria-label'));
    assert.equal(await page.getByTestId('sb-close').getAttribute('aria-label'), 'Close chat window');
    await page.context().close();
  }));

  it('fills a phone-sized screen; the customer can end the chat', step(async () => {
    page = await H.newPage(browser, { name: 'phone', viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    await H.openWidget(page, hub);
    const box = await page.getByTestId('sb-panel').boundingBox();
    assert.ok(box.width >= 389 && box.height >= 800, `panel ${box.width}x${box.height}`);
    await H.widgetSend(page, 'Hello from my phone');
    await page.locator('[data-testid=sb-msg]', { hasText: 'Hello from my phone' }).waitFor();
    await H.screenshot(page, 'widget-phone');
    // The customer may end the chat (after saying yes); the rating form follows.
    await page.getByTestId('sb-end').click();
    await page.getByTestId('sb-end-confirm').click();
    await page.getByTestId('sb-system').filter({ hasText: 'Chat ended' }).waitFor();
    await page.getByTestId('sb-rating').waitFor();
    const convId = (await H.widgetState(page)).conversationId;
    const closed = (await H.storedEvents(hub, convId)).find((e) => e.kind === 'closed');
    assert.equal(closed.resolution, 'customer_left');
    assert.equal(closed.by.role, 'customer');
    await page.getByTestId('sb-close').click();
    await page.getByTestId('sb-launcher').waitFor();
  }));
});
