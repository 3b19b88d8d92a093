// The SQL console: read-only SQL over `spans`, `xlog`, `nodes` and `links` (POST /api/sql),
// a few example queries, the result as a table and the server's error as it is.
import * as api from './api.js';
import { el, clear } from './dom.js';
import { patch } from './state.js';

const SHOWN = 5000;

const EXAMPLES = [
  ['Error rate and p99 per service, last hour',
    "SELECT service, count(*) AS calls, avg(CASE WHEN error THEN 1.0 ELSE 0.0 END) AS error_rate,\n       approx_percentile_cont(elapsed_ms, 0.99) AS p99_ms\nFROM xlog\nWHERE \"end\" >= now() - INTERVAL '1 hour'\nGROUP BY service ORDER BY p99_ms DESC"],
  ['Errors per minute, last hour',
    "SELECT date_trunc('minute', \"end\") AS minute, count(*) FILTER (WHERE error) AS errors, count(*) AS calls\nFROM xlog\nWHERE \"end\" >= now() - INTERVAL '1 hour'\nGROUP BY 1 ORDER BY 1"],
  ['Slowest SQL statements, last hour',
    "SELECT coalesce(attr(attributes, 'db.query.text'), attr(attributes, 'db.statement')) AS statement,\n       count(*) AS calls, round(avg(duration_ms), 2) AS avg_ms, round(max(duration_ms), 2) AS max_ms\nFROM spans\nWHERE start >= now() - INTERVAL '1 hour' AND kind = 'client'\n  AND coalesce(attr(attributes, 'db.system.name'), attr(attributes, 'db.system')) IS NOT NULL\nGROUP BY 1 ORDER BY avg_ms DESC LIMIT 20"],
  ['Links with errors, last hour',
    "SELECT source, target, sum(count) AS calls, sum(errors) AS errors\nFROM links\nWHERE time >= now() - INTERVAL '1 hour'\nGROUP BY source, target ORDER BY errors DESC"],
  ['Tables and columns', 'SELECT table_name, column_name, data_type FROM information_schema.columns ORDER BY table_name'],
];

export function sqlView(root, params) {
  const text = el('textarea', { id: 'sql-text', rows: '8', spellcheck: 'false', 'aria-label': 'SQL' });
  text.value = params.get('q') || EXAMPLES[0][1];
  const out = el('div', { id: 'sql-out' });
  const run = async () => {
    patch({ q: text.value });
    clear(out, el('p', { class: 'hint', text: 'running…' }));
    const t0 = performance.now();
    try {
      const d = await api.post('/api/sql', { sql: text.value });
      const took = Math.round(performance.now() - t0);
      // The server answers up to --sql-max-rows (100,000 by default); a page of that many rows
      // would take the tab seconds to lay out, so the table shows the first SHOWN.
      const shown = d.rows.slice(0, SHOWN);
      const info = `${d.rows.length.toLocaleString('en-US')} rows in ${took} ms` + (shown.length < d.rows.length ? `; the first ${SHOWN.toLocaleString('en-US')} shown (use LIMIT, or the API for all)` : '');
      clear(out, el('p', { class: 'hint', id: 'sql-info', text: info }),
        el('div', { class: 'scroll' }, el('table', { class: 'grid', id: 'sql-result' },
          el('thead', {}, el('tr', {}, d.columns.map((c, i) => el('th', { text: c, title: d.types ? d.types[i] : '' })))),
          el('tbody', {}, shown.map((r) => el('tr', {}, r.map((v) => el('td', {
            class: typeof v === 'number' ? 'num' : undefined,
            text: v === null ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : v,
          }))))))));
    } catch (e) {
      clear(out, el('pre', { class: 'err', id: 'sql-error', text: `${e.code}: ${e.message}` }));
    }
  };
  text.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); run(); } });
  const examples = el('select', { 'aria-label': 'examples' }, el('option', { value: '', text: 'examples…' }), EXAMPLES.map(([t], i) => el('option', { value: String(i), text: t })));
  examples.addEventListener('change', () => { if (examples.value !== '') { text.value = EXAMPLES[Number(examples.value)][1]; examples.value = ''; run(); } });
  clear(root, el('div', { class: 'toolbar' }, examples, el('button', { type: 'button', id: 'sql-run', text: 'Run (Ctrl+Enter)', onclick: run }),
    el('span', { class: 'hint', text: 'read-only; tables spans, xlog, nodes, links; see the README for columns' })), text, out);
  if (params.get('q')) run();
}
