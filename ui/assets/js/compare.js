// Two windows side by side: each one's map, and every node and link with its change, most
// changed first (the API's score: traffic ratio, error-rate points and p99 ratio together).
import * as api from './api.js';
import { el, clear, ms, pct, when, sortableTable } from './dom.js';
import { num, patch } from './state.js';
import { serverMap } from './map.js';
import { local, nowMs } from './timepicker.js';


export async function compareView(root, params) {
  const now = nowMs();
  const w = {
    b_to: num(params, 'b_to', now), b_from: num(params, 'b_from', now - 900000),
  };
  w.a_to = num(params, 'a_to', w.b_from);
  w.a_from = num(params, 'a_from', w.a_to - (w.b_to - w.b_from));
  const ins = Object.fromEntries(Object.entries(w).map(([k, v]) => [k, el('input', { type: 'datetime-local', step: '1', value: local(v), 'aria-label': k })]));
  const body = el('div');
  clear(root, el('form', { class: 'toolbar', onsubmit: (ev) => {
    ev.preventDefault();
    const next = Object.fromEntries(Object.entries(ins).map(([k, i]) => [k, new Date(i.value).getTime()]));
    patch(next);
    compareView(root, new URLSearchParams(Object.entries(next)));
  } }, 'A ', ins.a_from, '→', ins.a_to, el('span', { class: 'sep' }), 'B ', ins.b_from, '→', ins.b_to, el('button', { text: 'Compare' })), body);
  clear(body, el('p', { class: 'hint', text: 'loading…' }));
  let d, ma, mb;
  try {
    [d, ma, mb] = await Promise.all([
      api.get('/api/compare', w),
      api.get('/api/servermap', { from: w.a_from, to: w.a_to }),
      api.get('/api/servermap', { from: w.b_from, to: w.b_to }),
    ]);
  } catch (e) {
    clear(body, el('p', { class: 'err', text: e.message }));
    return;
  }
  // Both maps laid out over the union of nodes and links, so the same node sits in the same place.
  const union = (x, y) => ({
    nodes: [...new Map([...x.nodes, ...y.nodes].map((n) => [n.name, { name: n.name, kind: n.kind }])).values()],
    links: [...new Map([...x.links, ...y.links].map((l) => [l.source + '\u0000' + l.target, { source: l.source, target: l.target }])).values()],
  });
  const u = union(ma, mb);
  const pane = (title, m, id) => {
    const drawn = serverMap(u, {});
    drawn.setFigures(m.links, m.nodes);
    return { drawn, el: el('div', { class: 'compare-pane' }, el('h3', { text: title }), el('div', { class: 'map-box small', id }, drawn.el)) };
  };
  const A = pane(`A: ${when(w.a_from, true)} → ${when(w.a_to)}`, ma, 'map-a');
  const B = pane(`B: ${when(w.b_from, true)} → ${when(w.b_to)}`, mb, 'map-b');
  const rows = [...d.nodes.map((n) => ({ ...n, subject: n.name, type: 'node' })), ...d.links.map((l) => ({ ...l, subject: `${l.source} → ${l.target}`, type: 'link' }))];
  const side = (k, f) => (r) => (r[k] ? f(r[k]) : null);
  const num0 = (v) => (v === null || v === undefined ? -1 : v);
  const table = sortableTable([
    { name: 'subject', get: (r) => r.subject },
    { name: 'type', get: (r) => r.type },
    { name: 'status', get: (r) => r.status },
    { name: 'A calls/s', get: (r) => num0(side('a', (x) => x.per_second)(r)), fmt: (v) => (v < 0 ? '' : v.toFixed(1)), num: true },
    { name: 'B calls/s', get: (r) => num0(side('b', (x) => x.per_second)(r)), fmt: (v) => (v < 0 ? '' : v.toFixed(1)), num: true },
    { name: 'A errors', get: (r) => num0(side('a', (x) => x.error_rate)(r)), fmt: (v) => (v < 0 ? '' : pct(v)), num: true },
    { name: 'B errors', get: (r) => num0(side('b', (x) => x.error_rate)(r)), fmt: (v) => (v < 0 ? '' : pct(v)), num: true },
    { name: 'A p99', get: (r) => num0(side('a', (x) => x.p99_ms)(r)), fmt: (v) => (v < 0 ? '' : ms(v)), num: true },
    { name: 'B p99', get: (r) => num0(side('b', (x) => x.p99_ms)(r)), fmt: (v) => (v < 0 ? '' : ms(v)), num: true },
    { name: 'p99 ×', get: (r) => (r.change && r.change.p99_ratio) || 0, fmt: (v) => (v ? v.toFixed(2) : ''), num: true },
    { name: 'score', get: (r) => (r.change && r.change.score) || 0, fmt: (v) => v.toFixed(2), num: true },
    { name: 'explained by', get: (r) => (r.change && r.change.explained_by) || '' },
  ], rows, { id: 'changes', sort: { col: 10, desc: true } });
  clear(body, el('div', { class: 'compare-grid' }, A.el, B.el), el('h2', { text: 'Changes, most changed first' }), table);
  A.drawn.mounted();
  B.drawn.mounted();
}
