// The query API: JSON in, JSON out, errors as `{"error":{"code","message"}}` turned into exceptions
// that carry the server's message. A server started with --query-token answers 401 until the
// requests carry it: the page then asks for the token once and keeps it in sessionStorage, which
// lives only as long as the tab (never in localStorage, never in the URL).
import { el } from './dom.js';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const KEY = 'rewind.query-token';

export async function get(path, params) {
  const q = params ? '?' + new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '')) : '';
  return request(path + q, { headers: { accept: 'application/json' } });
}

export async function post(path, body) {
  return request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
  });
}

async function request(url, init) {
  let refused = false;
  for (;;) {
    const token = sessionStorage.getItem(KEY);
    const headers = token ? { ...init.headers, authorization: 'Bearer ' + token } : init.headers;
    const r = await fetch(url, { ...init, headers });
    if (r.status !== 401) return answer(r);
    await askForToken(refused || token !== null);
    refused = true;
  }
}

let asking = null;

/// One prompt for however many requests are waiting on it.
function askForToken(wasRefused) {
  if (asking) return asking;
  asking = new Promise((resolve) => {
    const input = el('input', { type: 'password', id: 'token-input', autocomplete: 'off', 'aria-label': 'query token', class: 'mid' });
    const dialog = el('form', { class: 'token-prompt', id: 'token-prompt', role: 'dialog', 'aria-modal': 'true' },
      el('h3', { text: 'This Rewind asks for a query token' }),
      el('p', { class: wasRefused ? 'err' : 'hint', text: wasRefused ? 'The server refused the token given: check it and try again.' : 'The token given to the server with --query-token (or REWIND_QUERY_TOKEN). It is kept for this tab only.' }),
      input, ' ', el('button', { text: 'Use' }));
    dialog.addEventListener('submit', (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(KEY, input.value.trim());
      dialog.remove();
      asking = null;
      resolve();
    });
    document.body.append(dialog);
    input.focus();
  });
  return asking;
}

async function answer(r) {
  let d;
  try {
    d = await r.json();
  } catch {
    throw new ApiError(r.status, 'not_json', `${r.status} ${r.statusText}: the answer is not JSON`);
  }
  if (!r.ok) {
    const e = d && d.error ? d.error : { code: 'http_' + r.status, message: r.statusText };
    throw new ApiError(r.status, e.code, e.message);
  }
  return d;
}
