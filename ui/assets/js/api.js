// The query API: JSON in, JSON out, errors as `{"error":{"code","message"}}` turned into exceptions
// that carry the server's message.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function get(path, params) {
  const q = params ? '?' + new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '')) : '';
  return answer(await fetch(path + q, { headers: { accept: 'application/json' } }));
}

export async function post(path, body) {
  return answer(await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
  }));
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
