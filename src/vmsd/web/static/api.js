// The JSON API client: one fetch wrapper that sends the CSRF token on every mutation and turns
// the API's {"error": {"kind", "message"}} answers into ApiError with those words.

export class ApiError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.kind = kind;
  }
}

const MUTATIONS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

// The session's CSRF token lives in memory only (never in storage a script on another page
// could read); a reload asks GET /api/v1/session for it again.
let csrfToken = "";

export function setCsrf(token) {
  csrfToken = token || "";
}

/** Query string from an object, leaving out empty values. */
export function query(params) {
  const usable = Object.entries(params || {}).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return usable.length ? `?${new URLSearchParams(usable).toString()}` : "";
}

/**
 * Call the API: `await api("POST", "/api/v1/holds", {...})`.
 * Resolves with the decoded JSON (or null for an empty answer); rejects with ApiError naming
 * the server's kind and message, or with a plain error for a network failure.
 * A 401 on anything but the session itself tells the app (event "vmsd:signed-out") to show
 * the login page.
 */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (MUTATIONS.has(method) && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new Error(`the recorder did not answer (${error.message}); is it running and reachable?`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    const kind = error.kind || `http_${response.status}`;
    const message = error.message || `${response.status} ${response.statusText || "error"}`.trim();
    if (response.status === 401 && !path.startsWith("/api/v1/session")) {
      window.dispatchEvent(new CustomEvent("vmsd:signed-out", { detail: message }));
    }
    throw new ApiError(response.status, kind, message);
  }
  return data;
}
