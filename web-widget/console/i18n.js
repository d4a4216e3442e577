// The console's languages: the chosen locale, its texts (`t`), and dates, times and
// numbers formatted for it. The choice: the language picked in the console (kept in
// localStorage), else the first of the browser's languages with a table, else English.
// English (locales/en.js) is the reference; another table is loaded before any module
// that imports this one runs (top-level await), and a key it lacks shows the English
// text. Texts from the hub are never passed through here. See docs/languages.md.

import en from './locales/en.js';

/** The languages with a table, by their own names (the picker's options). */
export const LANGUAGES = { en: 'English', fr: 'Français', de: 'Deutsch', es: 'Español', pt: 'Português', ar: 'العربية' };
const RTL = new Set(['ar']);
const KEY = 'switchboard.console.locale';

function saved() {
  try { return localStorage.getItem(KEY); } catch { return null; }
}

const primary = (tag) => String(tag || '').trim().replace(/_/g, '-').split('-')[0].toLowerCase();
function validTag(tag) {
  try { return Intl.getCanonicalLocales(String(tag).replace(/_/g, '-'))[0]; } catch { return null; }
}

// {lang: a table's code, tag: the BCP 47 tag formats follow}. A language picked in the
// console formats as the browser does when the browser speaks it too (pt → pt-BR).
function choose() {
  const browser = (navigator.languages?.length ? navigator.languages : [navigator.language]).filter(Boolean);
  const pick = saved();
  if (pick && LANGUAGES[pick]) {
    const same = browser.find((b) => primary(b) === pick);
    return { lang: pick, tag: (same && validTag(same)) || pick };
  }
  for (const b of browser) {
    const lang = primary(b);
    if (LANGUAGES[lang]) return { lang, tag: validTag(b) || lang };
  }
  return { lang: 'en', tag: 'en' };
}

let chosen = choose();
let table = en;
if (chosen.lang !== 'en') {
  try {
    table = (await import(`./locales/${chosen.lang}.js`)).default;
  } catch (err) {
    console.warn('switchboard console: no texts for', chosen.lang, err);
    chosen = { lang: 'en', tag: 'en' };
  }
}

/** The language in use (a key of LANGUAGES), its BCP 47 tag, and its direction. */
export const locale = chosen.lang;
export const localeTag = chosen.tag;
export const dir = RTL.has(locale) ? 'rtl' : 'ltr';
/** The language picked in the console, or null (the browser's is followed). */
export const pickedLocale = LANGUAGES[saved()] ? saved() : null;

const plural = new Intl.PluralRules(localeTag);
const numbers = new Map();

/** A number in the locale's digits and separators, with `digits` decimals if given. */
export function num(n, digits) {
  const k = digits ?? -1;
  if (!numbers.has(k)) numbers.set(k, new Intl.NumberFormat(localeTag, digits == null ? {} : { minimumFractionDigits: digits, maximumFractionDigits: digits }));
  return numbers.get(k).format(n);
}

/** Whether the table (or English) has `key`. */
export function has(key) { return key in table || key in en; }

/**
 * The text for `key`, its `{name}` placeholders filled from `params` (numbers formatted
 * for the locale). An entry that is an object of plural forms is chosen by `params.n`.
 * In a right-to-left language the values are isolated (U+2068…U+2069), so a Latin name or
 * id inside an Arabic sentence keeps its place.
 */
export function t(key, params) {
  let s = table[key] ?? en[key] ?? key;
  if (typeof s === 'object') s = s[plural.select(params?.n ?? 0)] ?? s.other;
  if (!params) return s;
  return s.replace(/\{(\w+)\}/g, (m, k) => {
    const v = params[k];
    if (v == null) return m;
    if (typeof v === 'number') return num(v);
    return dir === 'rtl' ? `\u2068${v}\u2069` : String(v);
  });
}

/** A hub code (a resolution, a reason, a state) in words when the table knows it. */
export function code(prefix, value) {
  return value != null && has(prefix + value) ? t(prefix + value) : value;
}

/**
 * The text for `key` as DOM pieces: strings, with each parameter that is a Node put in
 * its place (e.g. a countdown span inside a sentence).
 */
export function tNodes(key, params) {
  const nodes = [];
  const marks = {};
  let i = 0;
  for (const [k, v] of Object.entries(params)) if (v instanceof Node) { marks[k] = `\u0000${i++}\u0000`; nodes.push(v); }
  const text = t(key, { ...params, ...marks });
  return text.split(/\u0000(\d+)\u0000/).map((part, j) => (j % 2 ? nodes[+part] : part)).filter((p) => p !== '');
}

const formats = new Map();
function format(opts) {
  const k = JSON.stringify(opts);
  if (!formats.has(k)) formats.set(k, new Intl.DateTimeFormat(localeTag, opts));
  return formats.get(k);
}
const valid = (ts) => ts != null && ts !== '' && !Number.isNaN(new Date(ts).getTime());

/** Hours and minutes ("14:05", "2:05 PM"). */
export function time(ts) { return valid(ts) ? format({ hour: '2-digit', minute: '2-digit' }).format(new Date(ts)) : ''; }
/** Hours, minutes and seconds. */
export function timeSec(ts) { return valid(ts) ? format({ timeStyle: 'medium' }).format(new Date(ts)) : ''; }
/** A date and a time. */
export function dateTime(ts) { return valid(ts) ? format({ dateStyle: 'short', timeStyle: 'medium' }).format(new Date(ts)) : ''; }
/** A date and a time, shorter ("3 Mar 2026, 14:05"). */
export function dateTimeShort(ts) { return valid(ts) ? format({ dateStyle: 'medium', timeStyle: 'short' }).format(new Date(ts)) : ''; }
/** A date, or a date and hour, of a UTC report bucket. */
export function bucketLabel(ms, hourly) {
  const opts = hourly ? { month: '2-digit', day: '2-digit', hour: '2-digit', timeZone: 'UTC' } : { month: '2-digit', day: '2-digit', timeZone: 'UTC' };
  return format(opts).format(new Date(ms));
}

/** Keeps the language picked (null: follow the browser) and reloads the page in it. */
export function setLocale(lang) {
  try {
    if (lang && LANGUAGES[lang]) localStorage.setItem(KEY, lang); else localStorage.removeItem(KEY);
  } catch { /* storage blocked: this page only */ }
  location.reload();
}

/**
 * Puts the texts into the page's static markup: `data-i18n="key"` sets the element's
 * text; `data-i18n-attr="placeholder:key;aria-label:key2"` sets attributes. Sets the
 * document's lang and dir.
 */
export function translatePage(root = document) {
  document.documentElement.lang = localeTag;
  document.documentElement.dir = dir;
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':').map((x) => x.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
}

/** Fills a language picker (a <select>): the browser's language, then each table. */
export function setupPicker(select) {
  select.replaceChildren(
    new Option(t('lang.auto'), ''),
    ...Object.entries(LANGUAGES).map(([code, name]) => {
      const o = new Option(name, code);
      o.lang = code;
      return o;
    }),
  );
  select.value = pickedLocale || '';
  select.addEventListener('change', () => setLocale(select.value || null));
}
