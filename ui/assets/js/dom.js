// Building the page. Every value from the store goes in as text (textContent or a text node):
// nothing is ever parsed as HTML, so a span named `<script>` shows as those characters.

export function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = String(v);
    else if (k === 'title') e.title = String(v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'value') e.value = v;
    else if (k === 'checked') e.checked = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  append(e, children);
  return e;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'text') e.textContent = String(v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.setAttribute('class', v);
    else e.setAttribute(k, String(v));
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(e, ...children) {
  e.replaceChildren();
  append(e, children);
  return e;
}

/// A table whose columns sort on a click of their header. `cols`: [{name, get, fmt?, num?}].
export function sortableTable(cols, rows, { onRow, id, sort } = {}) {
  let by = sort ? sort.col : null, desc = sort ? sort.desc : true;
  const tbody = el('tbody');
  const heads = cols.map((c, i) => el('th', {
    class: c.num ? 'num sortable' : 'sortable',
    text: c.name,
    onclick: () => { desc = by === i ? !desc : true; by = i; fill(); },
  }));
  const table = el('table', { class: 'grid', id }, el('thead', {}, el('tr', {}, heads)), tbody);
  function fill() {
    const sorted = rows.slice();
    if (by !== null) {
      const get = cols[by].get;
      sorted.sort((a, b) => {
        const x = get(a), y = get(b);
        const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
        return desc ? -c : c;
      });
    }
    heads.forEach((h, i) => { h.dataset.sort = i === by ? (desc ? 'desc' : 'asc') : ''; });
    tbody.replaceChildren(...sorted.map((r) => {
      const tr = el('tr', { onclick: onRow ? () => onRow(r, tr) : undefined },
        cols.map((c) => el('td', { class: c.num ? 'num' : c.cls ? c.cls(r) : undefined, text: (c.fmt || String)(c.get(r)) })));
      if (onRow) tr.classList.add('clickable');
      return tr;
    }));
  }
  fill();
  return table;
}

export const ms = (v) => (v === null || v === undefined || Number.isNaN(v) ? '' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
export const int = (v) => (v === null || v === undefined ? '' : Math.round(v).toLocaleString('en-US'));
export const pct = (v) => (v === null || v === undefined ? '' : (v * 100).toFixed(1) + '%');

/// Local wall-clock time with seconds, and the date when it is not today's.
export function when(msSinceEpoch, withDate) {
  const d = new Date(msSinceEpoch);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  const t = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  const today = new Date().toDateString() === d.toDateString();
  return withDate || !today ? `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${t}` : t;
}

export function span(seconds) {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(seconds % 3600 ? 1 : 0)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}
