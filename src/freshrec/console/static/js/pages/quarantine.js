// Quarantine: the rejected records with their reasons and raw text, searchable, and the
// counts by reason over time.
import { api, query } from "../api.js";
import { timeChart } from "../charts.js";
import { failure, h, num, table, when } from "../dom.js";

const PAGE = 50;

export default function quarantine(container) {
  const reasons = h("div");
  let chart = null;
  const search = h("input", { name: "q", placeholder: "text in the record or reason" });
  const reason = h("select", { name: "reason" }, h("option", { value: "" }, "any reason"));
  const results = h("div", { id: "quarantine-results" });
  let offset = 0;
  const form = h("form", { class: "inline", id: "quarantine-search", onsubmit: (event) => {
    event.preventDefault();
    offset = 0;
    load();
  } }, h("label", {}, "search", search), h("label", {}, "reason", reason),
  h("button", { type: "submit" }, "Search"));
  container.append(h("h1", {}, "Quarantine"), reasons, form, results);

  api("/v1/quarantine/reasons").then((answer) => {
    reason.append(...answer.reasons.map((r) => h("option", { value: r.reason }, r.reason)));
    const names = Object.keys(answer.series).filter((k) => k !== "t");
    const byReason = chart = timeChart("rejections by reason (per bucket)", names);
    reasons.replaceChildren(
      table([{ label: "reason", value: (r) => r.reason },
             { label: "records", value: (r) => num(r.count), num: true }], answer.reasons),
      h("div", { class: "charts" }, byReason.node));
    byReason.update(answer.series.t, names.map((n) => answer.series[n]));
  }).catch((error) => reasons.replaceChildren(failure(error)));

  async function load() {
    try {
      const page = await api(`/v1/quarantine${query({
        q: search.value.trim(), reason: reason.value, limit: PAGE, offset })}`);
      results.replaceChildren(
        h("p", { class: "row" }, h("span", { id: "quarantine-total" }, `${num(page.total)} records`),
          h("button", { type: "button", class: "quiet", disabled: offset === 0,
                        onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, "newer"),
          h("button", { type: "button", class: "quiet", disabled: offset + PAGE >= page.total,
                        onclick: () => { offset += PAGE; load(); } }, "older")),
        table([
          { label: "id", value: (r) => r.id, num: true },
          { label: "kind", value: (r) => r.kind },
          { label: "when", value: (r) => when(r.created) },
          { label: "reason", value: (r) => r.reason },
          { label: "raw record", value: (r) => h("pre", {}, r.raw) },
        ], page.records));
    } catch (error) {
      results.replaceChildren(failure(error));
    }
  }
  load();
  return () => chart?.destroy();
}
