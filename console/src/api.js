// Calls to the gateway's admin API with the console session's cookie (sent by the browser, HttpOnly) and, on
// writes, its CSRF token. The admin token itself is only ever sent once, to sign in.

let csrf = "";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET") headers["x-csrf-token"] = csrf;
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!r.ok) {
    const message = (data && data.error && data.error.message) || `${r.status} ${r.statusText}`;
    throw new ApiError(r.status, message);
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body ?? {});
export const patch = (path, body) => call("PATCH", path, body);

/** Whether the browser holds a live session (and remember its CSRF token). */
export async function resume() {
  try {
    const s = await get("/admin/session");
    csrf = s.csrf;
    return true;
  } catch (e) {
    if (e.status === 401) return false;
    throw e;
  }
}

export async function signIn(token) {
  const s = await post("/admin/session", { token });
  csrf = s.csrf;
}

export async function signOut() {
  await call("DELETE", "/admin/session");
  csrf = "";
}

/** A query string from the set fields of `params`. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}
