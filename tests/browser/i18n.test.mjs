// Languages: the widget's texts from data-locale or the browser's language (French,
// German, an unknown locale or a locale file that fails to load → English), Arabic laid
// out right to left and mirrored, times in the viewer's locale; the console's language
// picker (kept across reloads) and Arabic RTL; every table has every key of English.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import vm from 'node:vm';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import * as H from './harness.mjs';

const WIDGET = path.join(H.REPO, 'web-widget');

// ------------------------------------------------------------------ tables

// The placeholders of a text ("{name}"), or of each plural form.
const holes = (v) => [...new Set((typeof v === 'string' ? [v] : Object.values(v)).flatMap((s) => s.match(/\{\w+\}/g) || []))].sort();

function sameShape(en, table, where) {
  assert.deepEqual(Object.keys(table).sort(), Object.keys(en).sort(), `${where}: the keys of English`);
  for (const [k, v] of Object.entries(table)) {
    assert.ok(typeof v === 'string' || (v && typeof v.other === 'string'), `${where}.${k}: a text or plural forms with "other"`);
    assert.equal(typeof v === 'string', typeof en[k] === 'string', `${where}.${k}: plural forms where English has them`);
    // A form may leave the count out ("one minute"); it never adds a placeholder.
    for (const h of holes(v)) assert.ok(holes(en[k]).includes(h), `${where}.${k}: ${h} is not a placeholder of the English text`);
    if (typeof v === 'string') assert.deepEqual(holes(v), holes(en[k]), `${where}.${k}: the placeholders of English`);
  }
}

describe('locale tables', () => {
  it('the widget: every table has the keys and placeholders of the built-in English', () => {
    const src = readFileSync(path.join(WIDGET, 'widget.js'), 'utf8');
    const m = /\n {2}var EN = (\{[\s\S]*?\n {2}\});\n/.exec(src);
    assert.ok(m, 'widget.js defines var EN = {...};');
    const en = vm.runInNewContext('(' + m[1] + ')');
    const window = {};
    vm.runInNewContext(readFileSync(path.join(WIDGET, 'widget-locales.js'), 'utf8'), { window });
    const tables = window.SwitchboardLocales;
    assert.deepEqual(Object.keys(tables).sort(), ['ar', 'de', 'es', 'fr', 'pt']);
    for (const [lang, table] of Object.entries(tables)) sameShape(en, table, 'widget ' + lang);
    // Arabic has all six plural forms where a text is counted.
    for (const [k, v] of Object.entries(tables.ar)) if (typeof v === 'object') assert.deepEqual(Object.keys(v).sort(), ['few', 'many', 'one', 'other', 'two', 'zero'], 'ar.' + k);
  });

  it('the console: every table has the keys and placeholders of locales/en.js', async () => {
    const load = async (lang) => (await import(pathToFileURL(path.join(WIDGET, 'console', 'locales', lang + '.js')))).default;
    const en = await load('en');
    for (const lang of ['fr', 'de', 'es', 'pt', 'ar']) sameShape(en, await load(lang), 'console ' + lang);
  });
});

// ------------------------------------------------------------------ in the browser

// A customer's site on another origin; `/?locale=xx` embeds the widget with data-locale.
function shopSite(hubUrl) {
  const server = http.createServer((req, res) => {
    const locale = new URL(req.url, 'http://shop').searchParams.get('locale');
    const attrs = `data-hub="${hubUrl}" data-topic="general"` + (locale ? ` data-locale="${locale}"` : '');
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Shop</title><link rel="icon" href="data:,"></head>
<body><h1>Shop</h1><script src="${hubUrl}/widget.js" ${attrs} async></script></body></html>`);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('languages in the browser', { timeout: 240000 }, () => {
  let hub, browser, site, shop, alice, fr, ar;
  const pages = [];

  before(async () => {
    hub = await H.startHub();
    browser = await H.launchBrowser();
    site = await shopSite(hub.url);
    shop = { url: `http://127.0.0.1:${site.address().port}` };
  });

  after(async () => {
    site?.close();
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => pages);
  const page = async (name, opts) => { const p = await H.newPage(browser, { name, ...opts }); pages.push(p); return p; };
  const text = (p, id) => p.getByTestId(id).innerText();

  it('widget: German from the browser language, nobody online (offline form, ticket)', step(async () => {
    const de = await page('de', { locale: 'de-DE' });
    await H.openWidget(de, shop, { path: '/' });
    const root = de.getByTestId('sb-root');
    assert.equal(await root.getAttribute('lang'), 'de-DE');
    assert.equal(await root.getAttribute('dir'), 'ltr');
    assert.equal((await H.widgetState(de)).locale, 'de');
    assert.equal(await text(de, 'sb-agent'), 'Chatten Sie mit uns');
    assert.equal(await de.getByTestId('sb-launcher').getAttribute('aria-label'), 'Chat schließen');
    const form = de.getByTestId('sb-offline-form');
    await form.waitFor();
    const said = await form.innerText();
    for (const s of ['Wir sind gerade nicht erreichbar', 'Hinterlassen Sie eine Nachricht', 'E-Mail', 'Nachricht senden']) assert.match(said, new RegExp(s), said);
    await de.getByTestId('sb-offline-email').fill('ute@example.de');
    await de.getByTestId('sb-offline-text').fill('Bitte rufen Sie mich zurück');
    await de.getByTestId('sb-offline-submit').click();
    await de.getByTestId('sb-ticket').waitFor();
    assert.match(await text(de, 'sb-ticket'), /^Danke, wir haben Ihre Nachricht erhalten\s+Ihre Ticketnummer lautet t_\d+\. Wir antworten Ihnen per E-Mail\.$/);
    await H.screenshot(de, 'i18n-widget-de');
  }));

  it('widget: an unknown data-locale, or a locale file that fails to load, gives English', step(async () => {
    const xx = await page('xx');
    await H.openWidget(xx, shop, { path: '/?locale=xx' });
    assert.equal((await H.widgetState(xx)).locale, 'en');
    assert.equal(await xx.getByTestId('sb-root').getAttribute('lang'), 'en-US'); // the browser's English
    assert.equal(await text(xx, 'sb-agent'), 'Chat with us');
    assert.match(await xx.getByTestId('sb-offline-form').innerText(), /We’re away right now/);

    const broken = await page('broken');
    await broken.route('**/widget-locales.js', (route) => route.abort());
    await H.openWidget(broken, shop, { path: '/?locale=fr' });
    assert.equal((await H.widgetState(broken)).locale, 'en');
    assert.equal(await broken.getByTestId('sb-root').getAttribute('lang'), 'en');
    assert.equal(await text(broken, 'sb-agent'), 'Chat with us');
    assert.equal(await broken.getByTestId('sb-send').innerText(), 'Send');
  }));

  it('widget: French from data-locale: texts, queue, times in French', step(async () => {
    const token = await hub.createAgent('alice', { name: 'Alice', capacity: 5 });
    alice = await page('alice');
    await H.loginConsole(alice, hub, token);
    await H.setAvailable(alice);

    fr = await page('fr');
    await H.openWidget(fr, shop, { path: '/?locale=fr-FR' });
    assert.equal((await H.widgetState(fr)).locale, 'fr');
    assert.equal(await fr.getByTestId('sb-root').getAttribute('lang'), 'fr-FR');
    assert.equal(await text(fr, 'sb-agent'), 'Discutez avec nous');
    assert.equal(await fr.getByTestId('sb-launcher').getAttribute('aria-label'), 'Fermer le chat');
    assert.equal(await fr.getByTestId('sb-input').getAttribute('placeholder'), 'Écrivez un message…');
    assert.equal(await fr.getByTestId('sb-send').innerText(), 'Envoyer');
    assert.equal(await text(fr, 'sb-conn'), 'Nous sommes en ligne');
    assert.match(await text(fr, 'sb-messages'), /Posez-nous vos questions/);

    await H.widgetSend(fr, 'Bonjour, ma commande est en retard');
    await H.until(async () => (await text(fr, 'sb-conn')) === 'En attente d’un conseiller', { what: 'waiting, in French' });
    await H.until(async () => /^(En attente du prochain conseiller disponible…|Vous êtes n° \d+ dans la file · .+)$/.test(await text(fr, 'sb-queue')),
      { what: 'the queue line in French' });
    // The customer's own message: "14:05 · Envoyé" (24-hour French time, not "02:05 PM · Sent").
    const meta = fr.locator('[data-testid=sb-msg][data-role=customer] .meta');
    await H.until(async () => /^\d{2}:\d{2} · (Envoyé|Lu)$/.test(await meta.innerText()), { what: 'a French time and state' });

    const offer = alice.getByTestId('offer');
    await offer.waitFor({ timeout: 20000 });
    await alice.getByTestId('offer-accept').click();
    await fr.getByTestId('sb-system').filter({ hasText: 'Alice a rejoint la discussion' }).waitFor();
    assert.equal(await text(fr, 'sb-conn'), 'En ligne');
    assert.equal(await fr.getByTestId('sb-end').innerText(), 'Terminer');
    await H.screenshot(fr, 'i18n-widget-fr');
  }));

  it('widget: Arabic is laid out right to left, mirrored', step(async () => {
    ar = await page('ar', { viewport: { width: 1100, height: 760 } });
    await H.openWidget(ar, shop, { path: '/?locale=ar' });
    const root = ar.getByTestId('sb-root');
    assert.equal(await root.getAttribute('dir'), 'rtl');
    assert.equal(await root.getAttribute('lang'), 'ar');
    assert.equal(await root.evaluate((el) => getComputedStyle(el).direction), 'rtl');
    assert.equal(await ar.getByTestId('sb-panel').evaluate((el) => getComputedStyle(el).direction), 'rtl');
    assert.equal(await text(ar, 'sb-agent'), 'تحدّث معنا');
    assert.equal(await ar.getByTestId('sb-input').getAttribute('placeholder'), 'اكتب رسالة…');
    assert.equal(await ar.getByTestId('sb-send').innerText(), 'إرسال');

    // The launcher and the panel sit in the bottom-left corner.
    const panel = await ar.getByTestId('sb-panel').boundingBox();
    const launcher = await ar.getByTestId('sb-launcher').boundingBox();
    assert.ok(panel.x < 100 && launcher.x < 100, `panel at x=${panel.x}, launcher at x=${launcher.x}`);

    await H.widgetSend(ar, 'مرحبًا، أين طلبي؟');
    const offer = alice.getByTestId('offer').filter({ hasText: 'أين طلبي' });
    await offer.waitFor({ timeout: 20000 });
    await offer.getByTestId('offer-accept').click();
    await alice.locator('[data-testid=msg][data-role=customer]', { hasText: 'أين طلبي' }).waitFor();
    await ar.getByTestId('sb-system').filter({ hasText: 'انضم' }).waitFor();
    await H.consoleSend(alice, 'Hello! Checking your order now.');
    await ar.locator('[data-testid=sb-msg][data-role=agent]', { hasText: 'Checking your order' }).waitFor();

    // Mirrored: the customer's own bubble on the left, the agent's on the right.
    const mine = await ar.locator('[data-testid=sb-msg][data-role=customer] .b').boundingBox();
    const theirs = await ar.locator('[data-testid=sb-msg][data-role=agent] .b').boundingBox();
    assert.ok(mine.x - panel.x < 40, `own bubble at the left edge (bubble x=${mine.x}, panel x=${panel.x})`);
    assert.ok(panel.x + panel.width - (theirs.x + theirs.width) < 40, 'agent bubble at the right edge');
    assert.ok(mine.x + mine.width / 2 < theirs.x + theirs.width / 2, 'own bubble left of the agent bubble');
    // Text from people keeps its own direction: the English reply runs left to right.
    assert.equal(await ar.locator('[data-testid=sb-msg][data-role=agent] .b').evaluate((el) => getComputedStyle(el).direction), 'ltr');
    // Times in Arabic ("٢:٠٥ م": the AM/PM marks ص / م), the state in Arabic.
    const meta = ar.locator('[data-testid=sb-msg][data-role=customer] .meta');
    await H.until(async () => /[صم].* · (أُرسلت|قُرئت)$/.test(await meta.innerText()), { what: 'an Arabic time and state' });
    await H.screenshot(ar, 'i18n-widget-ar');
  }));

  it('console: the language picker changes the texts, kept across a reload; Arabic is RTL', step(async () => {
    // Before signing in: the sign-in form in Spanish.
    const login = await page('login');
    await login.goto(hub.url + '/console/');
    await login.getByTestId('login-submit').waitFor();
    await Promise.all([login.waitForNavigation(), login.getByTestId('login-lang').selectOption('es')]);
    await H.until(async () => (await login.getByTestId('login-submit').innerText()) === 'Iniciar sesión', { what: 'Spanish sign-in' });
    assert.equal(await login.evaluate(() => document.documentElement.lang), 'es');
    assert.equal(await login.locator('label[for=login-token]').innerText(), 'Token de agente');

    // Signed in, mid-chat: German.
    await Promise.all([alice.waitForNavigation(), alice.getByTestId('lang').selectOption('de')]);
    await alice.waitForFunction(() => window.SwitchboardConsole?.state().connection === 'open', null, { timeout: 15000 });
    const german = async () => {
      assert.equal(await alice.evaluate(() => document.documentElement.lang), 'de');
      assert.equal(await alice.getByTestId('status-available').innerText(), 'Verfügbar');
      assert.equal(await alice.getByTestId('logout').innerText(), 'Abmelden');
      assert.equal(await alice.getByTestId('view-inbox').innerText(), 'Posteingang');
      assert.equal(await alice.getByTestId('lang').inputValue(), 'de');
    };
    await german();
    await alice.getByTestId('tab').first().click();
    await alice.getByTestId('close-open').waitFor();
    assert.equal(await alice.getByTestId('close-open').innerText(), 'Schließen');
    assert.equal(await alice.getByTestId('composer-send').innerText(), 'Senden');
    // Message times in German: "14:05", no AM/PM.
    const meta = alice.locator('[data-testid=msg][data-role=customer] .meta').first();
    await H.until(async () => /^.+ · \d{2}:\d{2}$/.test(await meta.innerText()), { what: 'a German time in the log' });
    await alice.reload();
    await alice.waitForFunction(() => window.SwitchboardConsole?.state().connection === 'open', null, { timeout: 15000 });
    await german();

    // Arabic: the page runs right to left, the side list on the right.
    await Promise.all([alice.waitForNavigation(), alice.getByTestId('lang').selectOption('ar')]);
    await alice.waitForFunction(() => window.SwitchboardConsole?.state().connection === 'open', null, { timeout: 15000 });
    assert.equal(await alice.evaluate(() => document.documentElement.dir), 'rtl');
    assert.equal(await alice.evaluate(() => getComputedStyle(document.body).direction), 'rtl');
    assert.equal(await alice.getByTestId('status-available').innerText(), 'متاح');
    assert.equal(await alice.getByTestId('view-inbox').innerText(), 'صندوق الوارد');
    const side = await alice.getByTestId('tabs').boundingBox();
    const conv = await alice.getByTestId('conv').boundingBox();
    assert.ok(side.x > conv.x, `the side list (x=${side.x}) right of the conversation (x=${conv.x})`);
    await alice.getByTestId('tab').first().click();
    await alice.getByTestId('composer-send').waitFor();
    assert.equal(await alice.getByTestId('composer-send').innerText(), 'إرسال');
    await H.screenshot(alice, 'i18n-console-ar');

    // Back to the browser's language (English).
    await Promise.all([alice.waitForNavigation(), alice.getByTestId('lang').selectOption('')]);
    await alice.waitForFunction(() => window.SwitchboardConsole?.state().connection === 'open', null, { timeout: 15000 });
    assert.equal(await alice.evaluate(() => document.documentElement.dir), 'ltr');
    assert.equal(await alice.getByTestId('status-available').innerText(), 'Available');
  }));
});
