// Who is signed in and what they may do, as the server said in its session answer.

import { api, setCsrf } from "./api.js";

let current = null;

/** The session answer ({principal, role, csrf, permissions, masked, …}) or null when signed out. */
export function session() {
  return current;
}

function adopt(answer) {
  current = answer;
  setCsrf(answer ? answer.csrf : "");
  return current;
}

/** Ask the server whether this browser has a session (after a reload); null when it has not. */
export async function restore() {
  // Signed out, expired or ended: the server answers {"principal": null}.
  const answer = await api("GET", "/api/v1/session");
  return adopt(answer && answer.principal ? answer : null);
}

export async function login(token) {
  return adopt(await api("POST", "/api/v1/session", { token }));
}

export async function logout() {
  try {
    await api("DELETE", "/api/v1/session");
  } finally {
    adopt(null);
  }
}

export function forget() {
  adopt(null);
}

/**
 * May the principal do `permission` (a name like "audit.read", as in docs/grpc.md "Roles")?
 * Only the server decides; this hides what it would refuse anyway.
 */
export function can(permission) {
  if (!current) return false;
  const granted = current.permissions;
  return Array.isArray(granted) ? granted.includes(permission) : false;
}

/** Must this principal see privacy masks drawn over video? */
export function masked() {
  return Boolean(current && current.masked);
}
