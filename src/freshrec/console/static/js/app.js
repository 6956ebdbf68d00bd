// The console's shell: login, navigation between pages, the key's scope.
import { api, ApiError, session } from "./api.js";
import { h } from "./dom.js";
import live from "./pages/live.js";
import quality from "./pages/quality.js";
import drift from "./pages/drift.js";
import models from "./pages/models.js";
import quarantine from "./pages/quarantine.js";
import users from "./pages/users.js";
import items from "./pages/items.js";
import experiments from "./pages/experiments.js";

const PAGES = { live, quality, drift, models, quarantine, users, items, experiments };
const $ = (id) => document.getElementById(id);
let ctx = null;
let leave = null;

function showLogin(message = "") {
  leave?.();
  leave = null;
  ctx = null;
  $("shell").hidden = true;
  $("page").replaceChildren();
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("key-input").focus();
}

async function logIn(key) {
  try {
    const who = await api("/v1/console/session", { key });
    session.set(key);
    ctx = { admin: who.admin, scopes: who.scopes };
    $("who").textContent = `${who.name || who.prefix} · ${who.admin ? "admin" : "read"}`;
    $("login").hidden = true;
    $("shell").hidden = false;
    if (!location.hash.startsWith("#/")) location.hash = "#/live";
    route();
  } catch (error) {
    session.clear();
    const why = error instanceof ApiError && error.status === 403
      ? `this key cannot read: ${error.message}` : `refused: ${error.message}`;
    showLogin(why);
  }
}

function route() {
  if (!ctx) return;
  const [name, ...rest] = location.hash.replace(/^#\//, "").split("/");
  const page = PAGES[name] ?? live;
  leave?.();
  for (const link of $("nav").querySelectorAll("a")) {
    link.classList.toggle("active", link.getAttribute("href") === `#/${name}`);
  }
  const container = h("div", { id: `page-${name in PAGES ? name : "live"}` });
  $("page").replaceChildren(container);
  document.title = `freshrec · ${name}`;
  leave = page(container, ctx, rest.map(decodeURIComponent).join("/")) ?? null;
}

// `freshrec demo` prints a link with the key in the fragment: never sent to the server,
// taken into this tab's storage and removed from the address bar at once.
// `&page=users/u1` opens that page. Whether there was one.
function keyFromFragment() {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (!fragment.has("key")) return false;
  session.set(fragment.get("key"));
  history.replaceState(null, "", `${location.pathname}#/${fragment.get("page") ?? "live"}`);
  return true;
}

function start() {
  keyFromFragment();
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    logIn($("key-input").value.trim());
  });
  $("logout").addEventListener("click", () => { session.clear(); showLogin(); });
  window.addEventListener("hashchange", () => {
    if (keyFromFragment()) logIn(session.key()); else route();
  });
  window.addEventListener("freshrec:unauthorized",
                          (event) => { session.clear(); showLogin(`refused: ${event.detail}`); });
  const key = session.key();
  if (key) logIn(key); else showLogin();
}

start();
