// Translations: every string the dashboard shows lives in i18n.json, keyed
// the same in English ("en") and Simplified Chinese ("zh-CN"). The Go tests
// check that both languages have every key and that every key used here,
// in app.js and in index.html exists.

export const LANGS = ['en', 'zh-CN'];
const STORE_KEY = 'racklift.lang';

let dict = { en: {}, 'zh-CN': {} };
let lang = 'en';

// loadI18n fetches the dictionary and picks the saved or browser language.
export async function loadI18n() {
  const res = await fetch('i18n.json', { cache: 'no-cache' });
  if (!res.ok) throw new Error('i18n.json: ' + res.status);
  dict = await res.json();
  let want = null;
  try { want = localStorage.getItem(STORE_KEY); } catch { /* storage blocked */ }
  if (!LANGS.includes(want)) {
    want = (navigator.language || '').toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
  }
  setLang(want, false);
}

export function getLang() { return lang; }

// setLang switches the language, remembers it and relabels the static page.
export function setLang(l, save = true) {
  if (!LANGS.includes(l)) return;
  lang = l;
  if (save) {
    try { localStorage.setItem(STORE_KEY, l); } catch { /* storage blocked */ }
  }
  document.documentElement.lang = l;
  translatePage(document);
}

// t returns the string for key with {name} placeholders filled from params.
export function t(key, params) {
  let s = dict[lang]?.[key] ?? dict.en?.[key] ?? key;
  if (params) {
    s = s.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
  }
  return s;
}

// translatePage sets the text of [data-i18n] elements and the attributes
// named by data-i18n-placeholder, data-i18n-aria-label and data-i18n-title.
export function translatePage(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const [data, attr] of [['i18nPlaceholder', 'placeholder'], ['i18nAriaLabel', 'aria-label'], ['i18nTitle', 'title']]) {
    const sel = '[data-' + data.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()) + ']';
    for (const el of root.querySelectorAll(sel)) el.setAttribute(attr, t(el.dataset[data]));
  }
  document.title = t('app.title');
}
