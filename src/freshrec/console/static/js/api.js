// Every data call of the console: the key from this tab's sessionStorage as a bearer token.
const KEY = "freshrec.key";

export const session = {
  key: () => sessionStorage.getItem(KEY),
  set: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.status = status;
    this.path = path;
  }
}

export async function api(path, { method = "GET", body, key = session.key() } = {}) {
  const headers = { Authorization: `Bearer ${key ?? ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let answer;
  try {
    answer = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, `the service did not answer (${error.message})`, path);
  }
  let data = null;
  try { data = await answer.json(); } catch { /* a body that is not JSON */ }
  if (answer.status === 401 && key === session.key()) {
    // The key was revoked (or never valid): back to the login form, showing why.
    window.dispatchEvent(new CustomEvent("freshrec:unauthorized",
                                         { detail: data?.error ?? "key refused" }));
  }
  if (!answer.ok) {
    throw new ApiError(answer.status, data?.error ?? `${answer.status} ${answer.statusText}`,
                       path);
  }
  return data;
}

// A query string from an object, leaving out empty values.
export function query(params) {
  const kept = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return kept.length ? `?${new URLSearchParams(kept)}` : "";
}

export const enc = encodeURIComponent;

// Whether a failed call means this service lacks the route (an older or partial build):
// an unknown path is a 404 "Not Found", or a 405 where a wider route matches it.
export function missingRoute(error) {
  return error instanceof ApiError
    && ((error.status === 404 && error.message === "Not Found") || error.status === 405);
}
