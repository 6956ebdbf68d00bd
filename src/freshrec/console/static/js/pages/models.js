// Models: every version with its lineage and the gate's numbers; promote, roll back and
// pin (admin, each asking to confirm first).
import { api, enc } from "../api.js";
import { adminButton, confirmAction, failure, h, notice, num, table, when } from "../dom.js";

// The gate's two sets of numbers side by side: metric, candidate, champion.
export function metricsCell(gate) {
  if (!gate?.candidate) return "–";
  const names = Object.keys(gate.candidate);
  return h("table", { class: "metrics" },
    h("thead", {}, h("tr", {}, h("th", {}, "metric"), h("th", { class: "num" }, "candidate"),
                     h("th", { class: "num" }, "champion"))),
    h("tbody", {}, names.map((name) => h("tr", {},
    h("td", {}, name), h("td", { class: "num" }, num(gate.candidate[name], 4)),
    h("td", { class: "num muted" }, num(gate.champion?.[name], 4))))));
}

export default function models(container, ctx) {
  const message = h("div");
  const body = h("div");
  container.append(h("h1", {}, "Models"), message, body);

  async function act(question, path, done) {
    if (!(await confirmAction(question))) return;
    try {
      const version = await api(path, { method: "POST" });
      message.replaceChildren(notice(done(version), "ok"));
    } catch (error) {
      message.replaceChildren(failure(error));
    }
    load();
  }

  async function load() {
    let answer;
    try {
      answer = await api("/v1/models?limit=100");
    } catch (error) {
      body.replaceChildren(failure(error));
      return;
    }
    body.replaceChildren(
      h("p", { class: "row" },
        h("span", {}, "serving: ", h("strong", { id: "serving-model" }, answer.serving)),
        adminButton(ctx, "Roll back to the previous champion", () => act(
          "Roll back to the previous champion? It serves the next request.",
          "/v1/models/rollback", (v) => `rolled back: ${v.id} is the champion`),
        { id: "rollback", class: "danger" })),
      table([
        { label: "version", value: (v) => v.id },
        { label: "status", value: (v) => h("span", { class: `pill ${v.status}` },
                                           v.status + (v.pinned ? " · pinned" : "")) },
        { label: "created", value: (v) => when(v.created) },
        { label: "lineage", value: (v) => h("div", {},
          h("div", {}, `dataset ${v.dataset.id ?? v.dataset.content_hash.slice(0, 10)} · `
                       + `positions ${v.dataset.start_position}–${v.dataset.end_position} · `
                       + `${num(v.dataset.events)} events`),
          h("div", { class: "muted" }, `parent ${v.parent ?? "–"} · code ${v.code_version}`)) },
        { label: "trained for", value: (v) => v.trigger ?? "–" },
        { label: "gate", value: (v) => h("div", {}, h("strong", {}, v.decision ?? ""),
                                         h("div", {}, v.gate?.reason ?? v.notes ?? "–")) },
        { label: "candidate vs champion", value: (v) => metricsCell(v.gate) },
        { label: "", value: (v) => h("div", { class: "row" },
          adminButton(ctx, "Promote", () => act(`Make ${v.id} the champion now?`,
            `/v1/models/${enc(v.id)}/promote`, (m) => `${m.id} is the champion`),
          { disabled: v.status === "champion" || Boolean(v.revoked), dataset: { promote: v.id } }),
          adminButton(ctx, v.pinned ? "Unpin" : "Pin", () => act(
            v.pinned ? `Unpin ${v.id}?` : `Pin ${v.id}: no automatic training replaces it?`,
            `/v1/models/${enc(v.id)}/${v.pinned ? "unpin" : "pin"}`,
            (m) => `${m.id} ${m.pinned ? "pinned" : "unpinned"}`),
          { class: "quiet", dataset: { pin: v.id } })) },
      ], answer.models, (v) => ({ dataset: { version: v.id } })));
  }
  load();
}
