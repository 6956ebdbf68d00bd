// Small DOM helpers. Text goes in as text (never as HTML): records come from users.
import { ApiError, missingRoute } from "./api.js";

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    // Through the CSSOM: the page's policy forbids inline style attributes.
    else if (name === "style") Object.assign(node.style, value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// columns: [{label, value: row => text|Node, num: bool}]; rowAttrs: row => attributes.
export function table(columns, rows, rowAttrs = () => ({})) {
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : null },
                                                    c.label)))),
    h("tbody", {}, rows.length ? rows.map((row) => h("tr", rowAttrs(row), columns.map(
      (c) => h("td", { class: c.num ? "num" : null }, c.value(row)))))
      : h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, "nothing yet"))));
}

export function notice(text, kind = "") {
  return h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : null }, text);
}

// What a failed call means for the person looking at the page.
export function failure(error) {
  if (error instanceof ApiError && error.status === 403) {
    return notice(`This needs an admin key: ${error.message}`, "error");
  }
  if (missingRoute(error)) {
    return notice(`This service has no ${error.path.split("?")[0]} (an older version?)`,
                  "error");
  }
  return notice(error.message ?? String(error), "error");
}

export function num(value, digits = 2) {
  if (value === undefined || value === null || Number.isNaN(value)) return "–";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value) && Math.abs(value) >= 1000) return value.toLocaleString("en");
  return Number.isInteger(value) ? String(value) : value.toFixed(digits);
}

export function when(seconds) {
  if (!seconds) return "–";
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19);
}

export function interval(stat) {
  if (!stat) return "–";
  return `${num(stat.value, 3)} [${num(stat.low, 3)}, ${num(stat.high, 3)}]`;
}

const dialog = () => document.getElementById("confirm");

// A yes/no question in a modal; resolves true when confirmed.
export function confirmAction(message) {
  const box = dialog();
  document.getElementById("confirm-message").textContent = message;
  box.returnValue = "";
  box.showModal();
  return new Promise((resolve) => {
    box.addEventListener("close", () => resolve(box.returnValue === "ok"), { once: true });
  });
}

// A button that needs an admin key: disabled, saying why, for a read key.
export function adminButton(ctx, label, onclick, attrs = {}) {
  return h("button", {
    type: "button", ...attrs, onclick,
    disabled: !ctx.admin || attrs.disabled,
    title: ctx.admin ? attrs.title : "needs an admin key",
  }, label);
}
