// Users: look a user up: their recent history, and their current recommendations with
// score and source, and why each is there (the rankers' feature contributions).
import { api, enc, missingRoute, query } from "../api.js";
import { failure, h, num, table, when } from "../dom.js";

const REFRESH_MS = 5000;

export default function users(container, ctx, user) {
  const input = h("input", { name: "user", placeholder: "user id", required: true, value: user });
  const k = h("input", { name: "k", type: "number", min: 1, max: 100, value: 10 });
  const body = h("div");
  container.append(h("h1", {}, "Users"),
    h("form", { class: "inline", id: "user-lookup", onsubmit: (event) => {
      event.preventDefault();
      location.hash = `#/users/${enc(input.value.trim())}`;
    } }, h("label", {}, "user", input), h("label", {}, "k", k),
    h("button", { type: "submit" }, "Look up")), body);
  if (!user) return undefined;
  // Looked again every few seconds: what changed since the last look is marked.
  const seen = { items: null };
  show(body, user, Number(k.value), seen);
  const timer = setInterval(() => show(body, user, Number(k.value), seen), REFRESH_MS);
  return () => clearInterval(timer);
}

async function show(body, user, k, seen) {
  let answer;
  let explained = true;
  try {
    answer = await api(`/v1/users/${enc(user)}/explain${query({ k })}`);
  } catch (error) {
    if (!missingRoute(error)) {
      body.replaceChildren(failure(error));
      return;
    }
    // A service without the explain endpoint: the plain answer, without the reasons.
    explained = false;
    try {
      const plain = await api(`/v1/users/${enc(user)}/recommendations${query({ k })}`);
      answer = { user, model_version: plain.model, history: null, recommendations: plain.items };
    } catch (inner) {
      body.replaceChildren(failure(inner));
      return;
    }
  }
  const before = seen.items;
  seen.items = new Set(answer.recommendations.map((r) => r.id));
  const fresh = (r) => before !== null && !before.has(r.id);
  body.replaceChildren(
    h("p", { class: "muted" }, `model ${answer.model_version} · looked at `
      + `${new Date().toLocaleTimeString()}, again every ${REFRESH_MS / 1000} s · `
      + "highlighted: new since the last look"),
    h("h2", {}, "Recommendations now"),
    explained ? "" : h("p", { class: "muted" }, "(this service does not explain them)"),
    table([
      { label: "#", value: (r) => answer.recommendations.indexOf(r) + 1, num: true },
      { label: "item", value: (r) => h("a", { href: `#/items/${enc(r.id)}` }, r.id) },
      { label: "score", value: (r) => num(r.score, 4), num: true },
      { label: "source", value: (r) => r.source },
      { label: "why (feature contributions)", value: (r) => contributions(r.contributions) },
    ], answer.recommendations,
    (r) => ({ dataset: { item: r.id }, class: fresh(r) ? "fresh" : null })),
    h("h2", {}, "Recent history"),
    answer.history === null ? h("p", { class: "muted" }, "not available") : table([
      { label: "when", value: (e) => when(e.timestamp) },
      { label: "type", value: (e) => e.type },
      { label: "item", value: (e) => h("a", { href: `#/items/${enc(e.item)}` }, e.item) },
    ], answer.history));
}

function contributions(values) {
  if (!values) return "–";
  const entries = Object.entries(values).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))
    .slice(0, 6);
  const widest = Math.max(...entries.map(([, v]) => Math.abs(v)), 1e-9);
  return h("div", { class: "bars" }, entries.map(([name, value]) => h("div", { class: "contrib" },
    h("span", {}, name),
    h("div", { class: `bar ${value < 0 ? "neg" : ""}`,
               style: { width: `${(100 * Math.abs(value)) / widest}%` } }),
    h("span", { class: "num" }, num(value, 3)))));
}
