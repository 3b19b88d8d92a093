// The view's state lives in the URL's fragment (`#/view?k=v&…`), so a link pasted in an incident
// channel opens the same view: range, filters, selection, replay position.

export function current() {
  const h = location.hash.replace(/^#\/?/, '');
  const [view, query] = h.split('?', 2);
  return { view: view || 'map', params: new URLSearchParams(query || '') };
}

export function href(view, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return '#/' + view + (s ? '?' + s : '');
}

/// Changes some parameters of the current view without a new history entry (and without
/// re-rendering: the view that calls it already shows the change).
export function patch(changes) {
  const { view, params } = current();
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === null || v === '' || v === false) params.delete(k);
    else params.set(k, String(v));
  }
  const s = params.toString();
  history.replaceState(null, '', '#/' + view + (s ? '?' + s : ''));
}

export function go(view, params) {
  location.hash = href(view, params);
}

export function num(params, k, dflt) {
  const v = params.get(k);
  if (v === null || v === '') return dflt;
  const n = Number(v);
  return Number.isFinite(n) ? n : dflt;
}
