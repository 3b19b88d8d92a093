// The XLog: every transaction as a dot at its end time (x) and its elapsed, SQL, API or CPU time
// (y, linear or log), errors in vermillion on top. Dots go straight into an ImageData buffer, so
// half a million of them draw in a few milliseconds; the selection box lives on a second canvas
// and never redraws the dots. Dragging a box lists its transactions (sortable); a row opens the
// trace.
import * as api from './api.js';
import { el, clear, sortableTable, ms, when } from './dom.js';
import { C } from './colors.js';

export const Y_METRICS = [['elapsed_ms', 'elapsed'], ['sql_ms', 'SQL time'], ['api_ms', 'API time'], ['cpu_ms', 'CPU time']];
const L = 52, R = 10, T = 10, B = 22;
const rgba = (hex) => {
  const n = parseInt(hex.slice(1), 16);
  // ImageData is little-endian RGBA in a Uint32Array: 0xAABBGGRR.
  return (0xff << 24 | (n & 0xff) << 16 | (n >> 8 & 0xff) << 8 | n >> 16) >>> 0;
};
const OK = rgba(C.ok), ERR = rgba(C.error);

/// Filters shared by the scatter and the list, from the URL's parameters.
export function filtersOf(params) {
  const f = {};
  for (const k of ['xs', 'xe', 'xmin', 'xmax', 'xerr', 'xattr', 'xip', 'xuser']) if (params.get(k)) f[k] = params.get(k);
  return f;
}

function apiFilters(f) {
  const q = { service: f.xs, endpoint: f.xe, min_ms: f.xmin, max_ms: f.xmax, error: f.xerr ? 'true' : undefined, client_ip: f.xip, user_id: f.xuser };
  for (const pair of (f.xattr || '').split(/[,;]\s*/)) {
    const i = pair.indexOf('=');
    if (i > 0) q['attr.' + pair.slice(0, i).trim()] = pair.slice(i + 1).trim();
  }
  return q;
}

export function filterBar(f, services, onChange) {
  const sel = el('select', { 'aria-label': 'service' }, el('option', { value: '', text: 'all services' }),
    services.map((s) => el('option', { value: s, text: s })));
  sel.value = f.xs || '';
  const input = (k, ph, cls) => el('input', { value: f[k] || '', placeholder: ph, class: cls, 'aria-label': ph });
  const ins = { xe: input('xe', 'endpoint', 'mid'), xmin: input('xmin', 'min ms', 'short'), xmax: input('xmax', 'max ms', 'short'),
    xattr: input('xattr', 'attr key=value, …', 'mid'), xip: input('xip', 'client IP', 'mid'), xuser: input('xuser', 'user', 'mid') };
  const err = el('input', { type: 'checkbox', checked: !!f.xerr });
  const apply = () => {
    const next = { xs: sel.value };
    for (const [k, i] of Object.entries(ins)) next[k] = i.value.trim();
    next.xerr = err.checked ? '1' : '';
    onChange(next);
  };
  const form = el('form', { class: 'filters', onsubmit: (ev) => { ev.preventDefault(); apply(); } },
    sel, ins.xe, ins.xmin, '–', ins.xmax, el('label', {}, err, ' errors only'), ins.xattr, ins.xip, ins.xuser, el('button', { text: 'Filter' }));
  sel.addEventListener('change', apply);
  return form;
}

export function scatter({ width, height = 320, y = 'elapsed_ms', scale = 'lin', onBox, onDot }) {
  const dpr = 1; // one device pixel per dot column keeps the buffer small; CSS scales it
  const wrap = el('div', { class: 'xlog-wrap' });
  wrap.style.width = width + 'px';
  wrap.style.height = height + 'px';
  const dots = el('canvas', { class: 'xlog-dots', width: width * dpr, height: height * dpr, id: 'xlog', dataset: { points: '-1' } });
  const over = el('canvas', { class: 'xlog-over', width, height });
  wrap.append(dots, over);
  const dctx = dots.getContext('2d'), octx = over.getContext('2d');
  let d = null, view = null, px = null, py = null, cursor = Infinity;

  function axes() {
    dctx.fillStyle = '#fff';
    dctx.fillRect(0, 0, L - 1, height);
    dctx.fillRect(0, height - B + 1, width, B);
    dctx.strokeStyle = '#999';
    dctx.beginPath();
    dctx.moveTo(L - 0.5, T);
    dctx.lineTo(L - 0.5, height - B + 0.5);
    dctx.lineTo(width - R, height - B + 0.5);
    dctx.stroke();
    dctx.fillStyle = '#555';
    dctx.font = '11px system-ui, sans-serif';
    dctx.textAlign = 'right';
    const ticks = view.scale === 'log'
      ? [0.1, 1, 10, 100, 1000, 10000, 100000].filter((v) => v >= view.yMin && v <= view.yMax)
      : [0, 0.25, 0.5, 0.75, 1].map((k) => k * view.yMax);
    for (const v of ticks) {
      const yy = Y(v);
      dctx.fillText(v >= 1000 ? v / 1000 + ' s' : +v.toPrecision(3) + ' ms', L - 4, yy + 4);
      dctx.fillRect(L - 3, Math.round(yy), 3, 1);
    }
    for (let k = 0; k <= 4; k++) {
      const t = view.from + (k / 4) * (view.to - view.from);
      dctx.textAlign = k === 0 ? 'left' : k === 4 ? 'right' : 'center';
      dctx.fillText(when(t), L + (k / 4) * (width - L - R), height - 6);
    }
    dctx.textAlign = 'left';
  }
  const X = (t) => L + ((t - view.from) / (view.to - view.from)) * (width - L - R);
  function Y(v) {
    const h = height - T - B;
    if (view.scale === 'log') {
      const lo = Math.log10(view.yMin), hi = Math.log10(view.yMax);
      return height - B - ((Math.log10(Math.max(v, view.yMin)) - lo) / (hi - lo)) * h;
    }
    return height - B - Math.min(v / view.yMax, 1) * h;
  }
  function project() {
    const n = d.count;
    px = new Int32Array(n);
    py = new Int32Array(n);
    const ys = d[view.y];
    for (let i = 0; i < n; i++) {
      px[i] = Math.min(width - R - 1, Math.max(L, Math.round(X(d.end_ms[i]))));
      py[i] = Math.round(Math.min(height - B - 1, Math.max(T, Y(ys[i]))));
    }
  }
  function draw() {
    const t0 = performance.now();
    dctx.clearRect(0, 0, width, height);
    if (!d) return;
    const img = dctx.createImageData(width, height);
    const buf = new Uint32Array(img.data.buffer);
    const n = d.count, end = d.end_ms, err = d.error;
    for (const pass of [false, true]) {
      const color = pass ? ERR : OK;
      for (let i = 0; i < n; i++) {
        if (err[i] !== pass || end[i] > cursor) continue;
        const o = py[i] * width + px[i];
        buf[o] = color;
        buf[o + 1] = color;
        buf[o + width] = color;
        buf[o + width + 1] = color;
      }
    }
    dctx.putImageData(img, 0, 0);
    axes();
    const took = performance.now() - t0;
    dots.dataset.drawMs = took.toFixed(2);
  }
  function setData(data, v) {
    d = data;
    const ys = Float64Array.from(d[v.y] || []).sort();
    const top = ys.length ? ys[Math.floor((ys.length - 1) * 0.999)] : 1;
    const yMax = v.scale === 'log' ? Math.max(10, (ys[ys.length - 1] || 1) * 1.5) : Math.max(1, top * 1.1);
    view = { ...v, yMax, yMin: 0.1 };
    project();
    draw();
    dots.dataset.points = String(d.count);
    dots.dataset.services = [...new Set(d.service)].sort().join(',');
  }
  function setCursor(t) {
    cursor = t;
    if (d) draw();
  }

  let drag = null;
  const at = (ev) => { const b = over.getBoundingClientRect(); return [ev.clientX - b.left, ev.clientY - b.top]; };
  over.addEventListener('pointerdown', (ev) => { const [x, yy] = at(ev); drag = { x0: x, y0: yy, x1: x, y1: yy }; over.setPointerCapture(ev.pointerId); });
  over.addEventListener('pointermove', (ev) => {
    if (!drag) return;
    [drag.x1, drag.y1] = at(ev);
    octx.clearRect(0, 0, width, height);
    octx.strokeStyle = C.ink;
    octx.setLineDash([4, 3]);
    octx.strokeRect(drag.x0 + 0.5, drag.y0 + 0.5, drag.x1 - drag.x0, drag.y1 - drag.y0);
  });
  over.addEventListener('pointerup', () => {
    if (!drag || !view) { drag = null; return; }
    const b = drag;
    drag = null;
    octx.clearRect(0, 0, width, height);
    const inv = (x) => view.from + ((x - L) / (width - L - R)) * (view.to - view.from);
    const unY = (yy) => {
      const h = height - T - B, k = (height - B - yy) / h;
      if (view.scale === 'log') return Math.pow(10, Math.log10(view.yMin) + k * (Math.log10(view.yMax) - Math.log10(view.yMin)));
      return Math.max(0, k * view.yMax);
    };
    if (Math.abs(b.x1 - b.x0) < 3 && Math.abs(b.y1 - b.y0) < 3) {
      // A click: the nearest dot within a few pixels opens its trace.
      let best = -1, bd = 37;
      for (let i = 0; i < d.count; i++) {
        if (d.end_ms[i] > cursor) continue;
        const dx = px[i] - b.x0, dy = py[i] - b.y0, dd = dx * dx + dy * dy;
        if (dd < bd) { bd = dd; best = i; }
      }
      if (best >= 0 && onDot) onDot(d.trace_id[best]);
      return;
    }
    const [xa, xb] = [Math.max(L, Math.min(b.x0, b.x1)), Math.min(width - R, Math.max(b.x0, b.x1))];
    const [ya, yb] = [Math.min(b.y0, b.y1), Math.max(b.y0, b.y1)];
    const from = Math.floor(inv(xa)), to = Math.max(Math.ceil(inv(xb)), Math.floor(inv(xa)) + 1);
    // A box reaching the top takes everything above; one reaching the axis takes everything below.
    const lo = yb >= height - B - 1 ? 0 : unY(yb), hi = ya <= T + 1 ? null : unY(ya);
    onBox && onBox({ from, to: Math.min(to, cursor === Infinity ? to : Math.ceil(cursor)), lo, hi });
  });
  function showBox(box) {
    octx.clearRect(0, 0, width, height);
    if (!box || !view) return;
    const x0 = X(box.from), x1 = X(box.to);
    const y0 = box.hi === null ? T : Y(box.hi), y1 = box.lo ? Y(box.lo) : height - B;
    octx.strokeStyle = C.ink;
    octx.setLineDash([4, 3]);
    octx.strokeRect(x0 + 0.5, y0 + 0.5, x1 - x0, y1 - y0);
  }
  return { el: wrap, setData, setCursor, showBox, get data() { return d; } };
}

/// Loads and draws the dots; an answer that arrives after a newer request was made is dropped.
export async function loadScatter(sc, { range, filters, y, scale, info }) {
  const q = { from: range.from, to: range.to, limit: 1000000, ...apiFilters(filters) };
  const t0 = performance.now();
  const g = (sc.loads = (sc.loads || 0) + 1);
  const d = await api.get('/api/xlog', q);
  if (g !== sc.loads) return null;
  sc.setData(d, { from: range.from, to: range.to, y, scale });
  const errors = d.error.reduce((n, e) => n + (e ? 1 : 0), 0);
  if (info) {
    info.textContent = `${d.count.toLocaleString('en-US')} transactions${d.truncated ? ' (the most recent; narrow the range for all)' : ''}, ${errors.toLocaleString('en-US')} errors · loaded in ${Math.round(performance.now() - t0)} ms`;
  }
  return d;
}

const COLS = [
  { name: 'start', get: (x) => x.start_ms, fmt: (v) => when(v, true) },
  { name: 'service', get: (x) => x.service },
  { name: 'endpoint', get: (x) => x.endpoint },
  { name: 'elapsed ms', get: (x) => x.elapsed_ms, fmt: ms, num: true },
  { name: 'SQL ms', get: (x) => x.sql_ms, fmt: ms, num: true },
  { name: 'API ms', get: (x) => x.api_ms, fmt: ms, num: true },
  { name: 'error', get: (x) => (x.error ? x.error_message || 'error' : ''), cls: (x) => (x.error ? 'err' : undefined) },
  { name: 'client IP', get: (x) => x.client_ip },
  { name: 'user', get: (x) => x.user_id },
  { name: 'trace id', get: (x) => x.trace_id, cls: () => 'mono' },
  { name: 'instance', get: (x) => x.instance },
];

/// The transactions inside a box: `box` {from, to, lo, hi} in ms and the Y metric's ms.
export async function loadList(box, { filters, y, target, onOpen }) {
  const q = { from: box.from, to: box.to, limit: 500, ...apiFilters(filters) };
  const name = y === 'elapsed_ms' ? 'ms' : y;
  if (box.lo) q['min_' + name] = box.lo.toFixed(3);
  if (box.hi !== null && box.hi !== undefined) q['max_' + name] = box.hi.toFixed(3);
  clear(target, el('p', { class: 'hint', text: 'loading…' }));
  // Only the latest box's answer is shown, whichever arrives last.
  const g = String(Number(target.dataset.gen || 0) + 1);
  target.dataset.gen = g;
  try {
    const d = await api.get('/api/transactions', q);
    if (target.dataset.gen !== g) return;
    const more = d.transactions.length === 500 ? ' (the first 500; narrow the box for the rest)' : '';
    clear(target, el('p', { class: 'hint', text: `${d.transactions.length} transactions${more}, ${when(box.from, true)} → ${when(box.to)}` }),
      sortableTable(COLS, d.transactions, { id: 'txlist', onRow: (x) => onOpen(x.trace_id), sort: { col: 3, desc: true } }));
  } catch (e) {
    if (target.dataset.gen === g) clear(target, el('p', { class: 'err', id: 'xmsg', text: e.message }));
  }
}
