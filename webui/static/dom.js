// Small DOM helpers. Text is only ever inserted as text nodes or
// textContent, never as HTML, so nothing from the API can inject markup.

// h builds an element: h('td', {class: 'x', 'aria-label': 'y'}, child...).
// Attribute values and string children are set as text. Keys starting with
// "on" add event listeners.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// setText changes an element's text only when it differs (no needless
// layout work on the once-a-second refresh).
export function setText(el, s) {
  if (el.textContent !== s) el.textContent = s;
}

// setAttr changes an attribute only when it differs.
export function setAttr(el, name, v) {
  const s = String(v);
  if (el.getAttribute(name) !== s) el.setAttribute(name, s);
}

const SVG_NS = 'http://www.w3.org/2000/svg';

// Shapes (16×16) so that a phase is told apart by shape and text as well
// as by colour.
const SHAPES = {
  planned: [['circle', { cx: 8, cy: 8, r: 5.5, fill: 'none', 'stroke-width': 2 }]],
  bmc: [['rect', { x: 3, y: 3, width: 10, height: 10, rx: 1 }]],
  boot: [['path', { d: 'M4 2 L14 8 L4 14 Z' }]],
  install: [['path', { d: 'M8 1.5 V10 M4 6.5 L8 10.5 L12 6.5 M2.5 14 H13.5', fill: 'none', 'stroke-width': 2.2 }]],
  firstboot: [['path', { d: 'M8 1 L15 8 L8 15 L1 8 Z' }]],
  ready: [['path', { d: 'M2 8.5 L6.2 12.5 L14 3.5', fill: 'none', 'stroke-width': 2.6 }]],
  failed: [['path', { d: 'M3 3 L13 13 M13 3 L3 13', fill: 'none', 'stroke-width': 2.8 }]],
  warning: [['path', { d: 'M8 1.5 L15 14 H1 Z', fill: 'none', 'stroke-width': 1.8 }], ['path', { d: 'M8 6 V10 M8 11.6 V12.8', fill: 'none', 'stroke-width': 1.8 }]],
};

// icon returns an SVG shape for a phase group or status; it is decorative
// (aria-hidden): a text label always goes with it.
export function icon(kind) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('class', 'icon icon-' + kind);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const [tag, attrs] of SHAPES[kind] || SHAPES.planned) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (attrs.fill === 'none') el.setAttribute('stroke', 'currentColor');
    else el.setAttribute('fill', 'currentColor');
    el.setAttribute('stroke-linecap', 'round');
    el.setAttribute('stroke-linejoin', 'round');
    svg.append(el);
  }
  return svg;
}
