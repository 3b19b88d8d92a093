// One transaction: the call stack with Pinpoint's columns (collapsible, exceptions highlighted,
// SQL and URLs in the argument column, clock skew flagged) and a timeline of its spans; a click
// on either shows the span's attributes, events and resource.
import * as api from './api.js';
import { el, clear, ms, when } from './dom.js';
import { patch } from './state.js';

const PAGE = 5000, MAX_ROWS = 20000;

export async function traceView(root, params) {
  const id = (params.get('id') || '').trim();
  const input = el('input', { id: 'tid', value: id, placeholder: 'trace id: 32 hex characters', maxlength: '32', class: 'mono wide' });
  const msg = el('p', { class: 'err', id: 'msg' });
  const body = el('div');
  clear(root, el('form', { class: 'toolbar', id: 'lookup', onsubmit: (ev) => { ev.preventDefault(); patch({ id: input.value.trim(), span: null }); traceView(root, new URLSearchParams({ id: input.value.trim() })); } },
    el('label', {}, 'Trace ', input), el('button', { text: 'Open' })), msg, body);
  if (!id) return;
  let tree, trace;
  try {
    [tree, trace] = await Promise.all([calltree(id), api.get('/api/traces/' + encodeURIComponent(id))]);
  } catch (e) {
    msg.textContent = e.message;
    return;
  }
  const spans = new Map(trace.spans.map((s) => [s.span_id, s]));
  const details = el('div', { class: 'details', id: 'span-details' });
  const show = (spanId) => {
    patch({ span: spanId });
    for (const tr of root.querySelectorAll('.selected')) tr.classList.remove('selected');
    for (const tr of root.querySelectorAll(`[data-span="${CSS.escape(spanId)}"]`)) tr.classList.add('selected');
    spanDetails(details, spans.get(spanId));
  };
  const a = tree.anomalies;
  const notes = [a.missing_parents && `${a.missing_parents} missing parents`, a.orphans && `${a.orphans} orphans`, a.skew_adjusted && `${a.skew_adjusted} spans moved for clock skew`,
    a.duplicate_ids && `${a.duplicate_ids} duplicate ids`, a.cycles_broken && `${a.cycles_broken} cycles broken`].filter(Boolean);
  clear(body,
    el('p', { class: 'summary' }, `started ${when(tree.start_ms, true)}, ${ms(tree.duration_ms)} ms, ${tree.span_count} spans, ${tree.rows.length} rows`,
      notes.length ? el('span', { class: 'warn', text: ' · ' + notes.join(', ') }) : null,
      tree.truncated ? el('span', { class: 'warn', text: ` · only the first ${MAX_ROWS} rows are shown` }) : null),
    el('h2', { text: 'Call stack' }), callStack(tree.rows, show),
    el('h2', { text: 'Timeline' }), gantt(tree, show),
    el('h2', { text: 'Span' }), details);
  const first = params.get('span') || (tree.rows[0] && tree.rows[0].span_id);
  if (first && spans.has(first)) show(first);
}

async function calltree(id) {
  let rows = [], offset = 0, head = null;
  for (;;) {
    const page = await api.get(`/api/traces/${encodeURIComponent(id)}/calltree`, { offset, limit: PAGE });
    head = head || page;
    rows = rows.concat(page.rows);
    if (page.next_offset === null || page.next_offset === undefined || rows.length >= MAX_ROWS) {
      return { ...head, rows, truncated: page.next_offset !== null && page.next_offset !== undefined };
    }
    offset = page.next_offset;
  }
}

function callStack(rows, show) {
  const tbody = el('tbody');
  const trs = rows.map((r, i) => {
    const hasKids = i + 1 < rows.length && rows[i + 1].depth > r.depth;
    const toggle = hasKids ? el('button', { type: 'button', class: 'toggle', text: '▾', 'aria-label': 'collapse' }) : el('span', { class: 'toggle' });
    const method = el('td', { class: 'method' }, toggle, r.type !== 'span' ? el('span', { class: 'tag', text: r.type === 'missing_parent' ? 'missing' : r.type }) : null, r.name);
    method.style.paddingLeft = 4 + r.depth * 14 + 'px';
    const bar = el('div', { class: 'pctbar' });
    bar.style.width = Math.max(0, Math.min(100, r.exec_pct || 0)) + '%';
    const flags = [...(r.flags || [])];
    const skew = r.skew_ms ? el('span', { class: 'warn', title: `moved ${ms(r.skew_ms)} ms to fit inside its parent (clock skew)`, text: ' ⚠ skew' }) : null;
    const arg = r.exception ? `${r.exception.type}: ${r.exception.message}` : r.argument;
    const tr = el('tr', { class: [r.error ? 'error' : '', r.type === 'exception' ? 'exception' : '', r.type !== 'span' ? 'event' : ''].join(' ').trim() || undefined, dataset: { depth: r.depth, span: r.span_id || '' } },
      method,
      el('td', { class: 'arg', title: arg, text: arg }),
      el('td', { class: 'num', text: ms(r.start_ms) }),
      el('td', { class: 'num', text: ms(r.gap_ms) }),
      el('td', { class: 'num', text: ms(r.exec_ms) }),
      el('td', { class: 'num pct' }, bar, el('span', { text: r.type === 'span' ? (r.exec_pct || 0).toFixed(0) + '%' : '' })),
      el('td', { class: 'num', text: r.type === 'span' ? ms(r.self_ms) : '' }),
      el('td', { text: r.service }),
      el('td', { text: r.instance }),
      el('td', { text: r.kind }),
      el('td', { class: r.error ? 'err' : '' }, r.status, skew, flags.filter((f) => f !== 'skew_adjusted').length ? el('span', { class: 'warn', text: ' ' + flags.filter((f) => f !== 'skew_adjusted').join(', ') }) : null));
    if (r.span_id) tr.addEventListener('click', (ev) => { if (!ev.target.classList.contains('toggle')) show(r.span_id); });
    if (hasKids) {
      toggle.addEventListener('click', () => {
        const closing = toggle.textContent === '▾';
        toggle.textContent = closing ? '▸' : '▾';
        toggle.setAttribute('aria-label', closing ? 'expand' : 'collapse');
        // Hide (or show again, honouring inner collapsed rows) every row below it.
        let hiddenBelow = Infinity;
        for (let j = i + 1; j < rows.length && rows[j].depth > r.depth; j++) {
          if (closing) { trs[j].hidden = true; continue; }
          if (rows[j].depth > hiddenBelow) continue;
          hiddenBelow = Infinity;
          trs[j].hidden = false;
          const t = trs[j].querySelector('button.toggle');
          if (t && t.textContent === '▸') hiddenBelow = rows[j].depth;
        }
      });
    }
    return tr;
  });
  tbody.append(...trs);
  return el('div', { class: 'scroll' }, el('table', { class: 'grid calltree', id: 'calltree' },
    el('thead', {}, el('tr', {}, ['method', 'argument', 'start ms', 'gap', 'exec', 'exec %', 'self', 'service', 'instance', 'kind', 'status'].map((t) => el('th', { text: t })))), tbody));
}

function gantt(tree, show) {
  const total = Math.max(tree.duration_ms, 1e-3);
  const rows = tree.rows.filter((r) => r.type === 'span').slice(0, 5000);
  const box = el('div', { class: 'gantt', id: 'gantt' });
  for (const r of rows) {
    const bar = el('div', { class: 'gbar' + (r.error ? ' error' : '') + (r.kind === 'client' || r.kind === 'producer' ? ' out' : ''), title: `${r.service}: ${r.name}, ${ms(r.exec_ms)} ms` });
    bar.style.left = (r.start_ms / total) * 100 + '%';
    bar.style.width = Math.max(0.15, (r.exec_ms / total) * 100) + '%';
    const label = el('div', { class: 'glabel', title: r.name }, el('span', { class: 'gsvc', text: r.service }), ' ', r.name);
    label.style.paddingLeft = r.depth * 8 + 'px';
    const row = el('div', { class: 'grow-row', dataset: { span: r.span_id } }, label, el('div', { class: 'gtrack' }, bar), el('div', { class: 'gms', text: ms(r.exec_ms) }));
    row.addEventListener('click', () => show(r.span_id));
    box.append(row);
  }
  return box;
}

function kvTable(obj) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return el('p', { class: 'hint', text: 'none' });
  return el('table', { class: 'grid compact kv' }, entries.map(([k, v]) => el('tr', {}, el('th', { text: k }), el('td', { text: typeof v === 'string' ? v : JSON.stringify(v) }))));
}

function spanDetails(box, s) {
  if (!s) { clear(box); return; }
  clear(box,
    el('h3', { text: `${s.service}: ${s.name}` }),
    kvTable({ span_id: s.span_id, parent_span_id: s.parent_span_id || '', kind: s.kind_name, start: when(s.start_ms, true) + ` (${s.start_unix_nano} ns)`, duration_ms: s.duration_ms,
      status: s.status.name + (s.status.message ? ': ' + s.status.message : ''), scope: s.scope ? `${s.scope.name} ${s.scope.version || ''}` : '' }),
    el('h4', { text: 'Attributes' }), kvTable(s.attributes),
    el('h4', { text: `Events (${s.events.length})` }),
    s.events.length ? el('table', { class: 'grid compact' }, s.events.map((e) => el('tr', { class: e.name === 'exception' ? 'exception' : undefined },
      el('td', { class: 'num', text: ms(e.time_ms !== undefined ? e.time_ms - s.start_ms : 0) }), el('td', { text: e.name }), el('td', {}, kvTable(e.attributes))))) : el('p', { class: 'hint', text: 'none' }),
    el('h4', { text: 'Resource' }), kvTable(s.resource && s.resource.attributes));
}
