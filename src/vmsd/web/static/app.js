// The console's entry point: sign-in, the navigation bar and a hash router
//   #/              live grid (the first page)
//   #/camera/ID     one camera: live, timeline, review, masks
//   #/evidence      holds and exports
//   #/oversight     audit, function checks, retention, recorder status

import { renderCamera } from "./camera.js";
import { renderLive } from "./cameras.js";
import { renderEvidence } from "./evidence.js";
import { renderOversight } from "./oversight.js";
import { can, forget, login, logout, restore, session } from "./session.js";
import { errorBox, h, say } from "./ui.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

let cleanup = null;

function mayOversee() {
  return can("audit.read") || can("reports.read");
}

function renderNav() {
  const links = [["#/", "Live"]];
  if (can("holds.view") || can("export.create")) links.push(["#/evidence", "Evidence"]);
  if (mayOversee()) links.push(["#/oversight", "Oversight"]);
  const here = location.hash.split("?")[0] || "#/";
  nav.replaceChildren(
    ...links.map(([href, label]) => h("a", { href, class: here === href ? "current" : "", "aria-current": here === href ? "page" : false }, label)),
  );
  const s = session();
  const out = h("button", { type: "button", class: "quiet" }, "Sign out");
  out.addEventListener("click", async () => {
    try {
      await logout();
    } catch (error) {
      say(main, errorBox(error, "Signing out"));
      return;
    }
    route();
  });
  who.replaceChildren(h("span", { class: "principal" }, s.principal), h("span", { class: "role" }, s.role), out);
}

function renderLogin(message) {
  nav.replaceChildren();
  who.replaceChildren();
  const token = h("input", {
    type: "password",
    id: "token",
    name: "token",
    autocomplete: "off",
    required: true,
    placeholder: "your vmsd token",
  });
  const messages = h("div", { class: "messages" }, message ? errorBox(message) : null);
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "login" },
    h("h1", {}, "vmsd console"),
    h("p", { class: "hint" }, "Paste your token once; this browser then keeps a session until you sign out or it times out."),
    h("label", { class: "field" }, h("span", { class: "label" }, "Token"), token),
    submit,
    messages,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    say(messages, null);
    try {
      await login(token.value.trim());
      token.value = "";
      if (location.hash.startsWith("#/login")) location.hash = "#/";
      route();
    } catch (error) {
      say(messages, errorBox(error, "Sign-in failed"));
    } finally {
      submit.disabled = false;
    }
  });
  main.replaceChildren(form);
  token.focus();
}

async function route() {
  if (cleanup) {
    const done = cleanup;
    cleanup = null;
    done();
  }
  if (!session()) {
    renderLogin();
    return;
  }
  renderNav();
  const [path, search] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(search || "");
  const parts = path.split("/").filter(Boolean);
  try {
    if (parts[0] === "camera" && parts[1]) cleanup = (await renderCamera(main, decodeURIComponent(parts[1]))) || null;
    else if (parts[0] === "evidence") await renderEvidence(main, params);
    else if (parts[0] === "oversight") {
      if (mayOversee()) renderOversight(main);
      else main.replaceChildren(errorBox("Your role may not see the oversight pages."));
    } else await renderLive(main, params);
  } catch (error) {
    main.replaceChildren(errorBox(error, "This page failed"));
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("vmsd:signed-out", (event) => {
  if (!session()) return; // already showing the sign-in (several tiles may say so at once)
  forget();
  if (cleanup) cleanup();
  cleanup = null;
  renderLogin(`Your session has ended (${event.detail}). Sign in again.`);
});
// The live tiles remove themselves (and close their sockets) when the page changes: they are
// replaced with the rest of <main>.

async function boot() {
  try {
    await restore();
  } catch (error) {
    main.replaceChildren(errorBox(error, "Asking the recorder for this browser's session"));
    return;
  }
  route();
}

boot();
