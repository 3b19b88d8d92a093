// The server map drawn as SVG: a node per service, database, cache, queue, external peer and the
// users, a link per caller → callee labelled with its calls and errors and coloured by its health.
// Pan by dragging, zoom with the wheel. `setFigures` recolours the links for one second or step
// of a replay without laying the map out again.
import { svg, int, ms } from './dom.js';
import { C, KIND, health } from './colors.js';
import { layered, COL, ROW } from './layout.js';

const W = 170, H = 56;
const key = (s, t) => JSON.stringify([s, t]);

function icon(kind) {
  const k = KIND[kind] || KIND.external;
  const a = { fill: 'none', stroke: k.stroke, 'stroke-width': 1.6 };
  switch (kind) {
    case 'database':
      return svg('g', { class: 'icon' }, svg('ellipse', { ...a, cx: 14, cy: 9, rx: 8, ry: 3 }),
        svg('path', { ...a, d: 'M6 9v12c0 2 16 2 16 0V9' }), svg('path', { ...a, d: 'M6 15c0 2 16 2 16 0' }));
    case 'cache':
      return svg('g', { class: 'icon' }, svg('path', { ...a, d: 'M16 5l-7 11h6l-3 9 8-12h-6z' }));
    case 'queue':
      return svg('g', { class: 'icon' }, ...[7, 13, 19].map((y) => svg('rect', { ...a, x: 6, y, width: 16, height: 4 })));
    case 'user':
      return svg('g', { class: 'icon' }, svg('circle', { ...a, cx: 14, cy: 9, r: 4 }), svg('path', { ...a, d: 'M6 24c0-6 16-6 16 0' }));
    case 'server':
      return svg('g', { class: 'icon' }, svg('rect', { ...a, x: 6, y: 6, width: 16, height: 7 }),
        svg('rect', { ...a, x: 6, y: 15, width: 16, height: 7 }), svg('circle', { cx: 9, cy: 9.5, r: 1, fill: k.stroke }));
    default:
      return svg('g', { class: 'icon' }, svg('circle', { ...a, cx: 14, cy: 14, r: 8 }),
        svg('path', { ...a, d: 'M6 14h16M14 6c4 4 4 12 0 16M14 6c-4 4-4 12 0 16' }));
  }
}

/// The curve of a link: left to right through its placeholders, or, for a call back to an earlier
/// rank (a cycle), an arc below both nodes.
function route(a, b, self, via) {
  if (self) return `M${a.x + W / 2} ${a.y} c 40 -60 80 -20 ${W / 2 - 6} ${H / 2 - 6}`;
  if (b.x <= a.x) {
    const x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y + H;
    return `M${x1} ${y1} C${x1} ${y1 + 60} ${x2} ${y2 + 60} ${x2} ${y2}`;
  }
  const pts = [[a.x + W, a.y + H / 2]];
  for (const p of via) pts.push([p.x, p.y + H / 2], [p.x + W, p.y + H / 2]);
  pts.push([b.x, b.y + H / 2]);
  let d = `M${pts[0][0]} ${pts[0][1]}`;
  for (let i = 1; i < pts.length; i++) {
    const [x0, y0] = pts[i - 1], [x1, y1] = pts[i];
    // Odd segments cross between ranks (curved); even ones run through a placeholder (straight).
    if (i % 2 === 0) d += ` L${x1} ${y1}`;
    else {
      const bend = (x1 - x0) / 2;
      d += ` C${x0 + bend} ${y0} ${x1 - bend} ${y1} ${x1} ${y1}`;
    }
  }
  return d;
}

const DASH = { error: '7 4', 'some-errors': '7 4', slow: '2 3' };

export function serverMap(map, { onSelect, selected, slowMs } = {}) {
  const names = map.nodes.map((n) => n.name);
  const { at, routes, width, height } = layered(names, map.links.map((l) => [l.source, l.target]));
  const root = svg('svg', { class: 'map', role: 'img', 'aria-label': 'server map' });
  const defs = svg('defs', {}, ...[['ok', C.ok], ['slow', C.slow], ['error', C.error], ['idle', C.idle], ['some-errors', C.slow]].map(([n, c]) =>
    svg('marker', { id: 'arrow-' + n, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' },
      svg('path', { d: 'M0 0L10 5L0 10z', fill: c }))));
  const world = svg('g', { class: 'world' });
  root.append(defs, world);
  const linksG = svg('g', { class: 'links' }), nodesG = svg('g', { class: 'nodes' });
  world.append(linksG, nodesG);

  const linkEls = new Map();
  for (const l of map.links) {
    const a = at.get(l.source), b = at.get(l.target);
    if (!a || !b) continue;
    const d = route(a, b, l.source === l.target, routes.get(key(l.source, l.target)) || []);
    const path = svg('path', { d, class: 'edge' });
    const hit = svg('path', { d, class: 'edge-hit' });
    const label = svg('text', { class: 'edge-label', 'text-anchor': 'middle' });
    const title = svg('title');
    const g = svg('g', { class: 'link', tabindex: 0, role: 'button', 'data-source': l.source, 'data-target': l.target }, title, hit, path, label);
    g.addEventListener('click', (ev) => { ev.stopPropagation(); onSelect && onSelect({ link: [l.source, l.target] }); });
    g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') onSelect && onSelect({ link: [l.source, l.target] }); });
    linksG.append(g);
    linkEls.set(key(l.source, l.target), { g, path, label, title, l });
  }
  // Labels sit on the curve's middle, once it is in the document and has a length.
  const placeLabels = () => {
    for (const { path, label } of linkEls.values()) {
      const len = path.getTotalLength();
      if (!len) continue;
      const p = path.getPointAtLength(len / 2);
      label.setAttribute('x', p.x);
      label.setAttribute('y', p.y - 5);
    }
  };

  const nodeEls = new Map();
  for (const n of map.nodes) {
    const p = at.get(n.name);
    const k = KIND[n.kind] || KIND.external;
    const box = svg('rect', { class: 'node-box', width: W, height: H, rx: n.kind === 'user' ? 24 : 6, fill: k.fill, stroke: k.stroke });
    const name = svg('text', { class: 'node-name', x: 32, y: 20 });
    name.textContent = n.name.length > 20 ? n.name.slice(0, 19) + '…' : n.name;
    const sub = svg('text', { class: 'node-sub', x: 32, y: 35 });
    const sub2 = svg('text', { class: 'node-sub', x: 32, y: 48 });
    const title = svg('title', { text: `${n.name} (${k.label})` });
    const g = svg('g', { class: 'node', transform: `translate(${p.x},${p.y})`, tabindex: 0, role: 'button', 'data-name': n.name, 'data-kind': n.kind },
      title, box, svg('g', { transform: 'translate(2,10)' }, icon(n.kind)), name, sub, sub2);
    g.addEventListener('click', (ev) => { ev.stopPropagation(); onSelect && onSelect({ node: n.name }); });
    g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') onSelect && onSelect({ node: n.name }); });
    nodesG.append(g);
    nodeEls.set(n.name, { g, box, sub, sub2, n });
  }

  function paintLink(e, f) {
    const count = f ? f.count : 0;
    const h = health(count, f ? f.errors : 0, f ? f.slow : 0, f ? f.avg_ms : 0, slowMs);
    e.path.setAttribute('stroke', h.color);
    e.path.setAttribute('stroke-width', (1.2 + Math.min(5, Math.log10(1 + count))).toFixed(1));
    e.path.setAttribute('marker-end', `url(#arrow-${h.state})`);
    if (DASH[h.state]) e.path.setAttribute('stroke-dasharray', DASH[h.state]);
    else e.path.removeAttribute('stroke-dasharray');
    // The label stays short enough to sit between two ranks; the mean time is in the tooltip.
    e.label.textContent = !f ? '' : int(count) + (f.errors ? ` · ${int(f.errors)} err` : '');
    e.title.textContent = `${e.l.source} → ${e.l.target}: ` + (!f ? 'no calls' : `${int(count)} calls, ${int(f.errors)} errors` + (count && f.avg_ms !== undefined ? `, mean ${f.avg_ms.toFixed(1)} ms` : ''));
    e.label.setAttribute('fill', h.state === 'ok' || h.state === 'idle' ? C.ink : h.color);
    e.g.dataset.state = h.state;
    e.g.dataset.count = String(count);
    e.g.dataset.errors = String(f ? f.errors : 0);
  }
  function paintNode(e, f) {
    const h = health(f ? f.count : 0, f ? f.errors : 0, f ? f.slow : 0, f ? f.avg_ms : 0, slowMs);
    e.g.dataset.state = h.state;
    e.sub.textContent = !f || !f.count ? '' : `${int(f.count)}` + (f.errors ? ` · ${int(f.errors)} err` : '');
    e.sub2.textContent = f && f.count && f.p99_ms !== undefined ? `p99 ${ms(f.p99_ms)} ms` : '';
    e.box.setAttribute('stroke-width', h.state === 'error' ? 3 : 1.5);
    if (h.state === 'error' || h.state === 'slow') e.box.setAttribute('stroke', h.color);
    else e.box.setAttribute('stroke', (KIND[e.n.kind] || KIND.external).stroke);
  }

  /// Figures per link and node (`links`: [{source, target, count, errors, avg_ms, slow?}],
  /// `nodes`: [{name, count, errors, …}]); those absent show as idle.
  function setFigures(links, nodes) {
    const byKey = new Map(links.map((l) => [key(l.source, l.target), l]));
    for (const [k, e] of linkEls) paintLink(e, byKey.get(k));
    if (nodes) {
      const byName = new Map(nodes.map((n) => [n.name, n]));
      for (const [n, e] of nodeEls) paintNode(e, byName.get(n));
    }
  }
  setFigures(map.links, map.nodes);

  function select(sel) {
    for (const e of linkEls.values()) e.g.classList.remove('selected');
    for (const e of nodeEls.values()) e.g.classList.remove('selected');
    if (sel && sel.link) linkEls.get(key(...sel.link))?.g.classList.add('selected');
    if (sel && sel.node) nodeEls.get(sel.node)?.g.classList.add('selected');
  }
  select(selected);

  // Pan and zoom: one transform on the world group.
  let tx = 20, ty = 20, scale = 1;
  const apply = () => world.setAttribute('transform', `translate(${tx},${ty}) scale(${scale})`);
  function fit() {
    const r = root.getBoundingClientRect();
    if (!r.width) return;
    scale = Math.min(1.2, (r.width - 40) / width, (r.height - 40) / Math.max(height, H));
    tx = (r.width - width * scale) / 2 + (COL - W) * scale / 2;
    ty = (r.height - height * scale) / 2 + (ROW - H) * scale / 2;
    apply();
  }
  let drag = null, moved = false;
  root.addEventListener('pointerdown', (ev) => {
    if (ev.target.closest('.node, .link')) return;
    drag = { x: ev.clientX - tx, y: ev.clientY - ty };
    moved = false;
    root.setPointerCapture(ev.pointerId);
  });
  root.addEventListener('pointermove', (ev) => {
    if (!drag) return;
    tx = ev.clientX - drag.x;
    ty = ev.clientY - drag.y;
    moved = true;
    apply();
  });
  root.addEventListener('pointerup', () => { drag = null; });
  root.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    const r = root.getBoundingClientRect();
    const mx = ev.clientX - r.left, my = ev.clientY - r.top;
    const f = Math.exp(-ev.deltaY * 0.0015);
    const s = Math.min(4, Math.max(0.1, scale * f));
    tx = mx - (mx - tx) * (s / scale);
    ty = my - (my - ty) * (s / scale);
    scale = s;
    apply();
  }, { passive: false });
  root.addEventListener('click', () => { if (!moved && onSelect) onSelect(null); });

  /// Call once the SVG is in the document.
  function mounted() {
    fit();
    placeLabels();
  }
  return { el: root, setFigures, select, mounted, fit };
}

/// Per-node figures of a replay frame: services from the frame, the others from their callers.
export function frameNodes(frame) {
  const nodes = new Map(frame.services.map((s) => [s.name, { ...s }]));
  for (const l of frame.links) {
    if (nodes.has(l.target) && frame.services.some((s) => s.name === l.target)) continue;
    const n = nodes.get(l.target) || { name: l.target, count: 0, errors: 0 };
    n.count += l.count;
    n.errors += l.errors;
    nodes.set(l.target, n);
  }
  return [...nodes.values()];
}
