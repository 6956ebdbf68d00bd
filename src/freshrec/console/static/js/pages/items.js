// Items: look an item up: its catalog record, its similar items, its trend.
import { api, enc, missingRoute, query } from "../api.js";
import { timeChart } from "../charts.js";
import { failure, h, num, table } from "../dom.js";

export default function items(container, ctx, item) {
  const input = h("input", { name: "item", placeholder: "item id", required: true, value: item });
  const body = h("div");
  let chart = null;
  container.append(h("h1", {}, "Items"),
    h("form", { class: "inline", id: "item-lookup", onsubmit: (event) => {
      event.preventDefault();
      location.hash = `#/items/${enc(input.value.trim())}`;
    } }, h("label", {}, "item", input), h("button", { type: "submit" }, "Look up")), body);
  if (item) {
    chart = timeChart("events on this item", ["events"]);
    show(body, item, chart);
  }
  return () => chart?.destroy();
}

async function show(body, item, chart) {
  let answer;
  try {
    answer = await api(`/v1/items/${enc(item)}/insight`);
  } catch (error) {
    if (!missingRoute(error)) {
      body.replaceChildren(failure(error));
      return;
    }
    try {  // a service without the insight endpoint: the similar items only
      const similar = await api(`/v1/items/${enc(item)}/similar${query({ k: 10 })}`);
      answer = { item: null, similar: similar.items, trend: null };
    } catch (inner) {
      body.replaceChildren(failure(inner));
      return;
    }
  }
  body.replaceChildren(
    h("h2", {}, "Trend (events per day)"),
    answer.trend ? h("div", { class: "charts" }, chart.node)
      : h("p", { class: "muted" }, "not available"),
    h("h2", {}, "Similar items"),
    table([
      { label: "item", value: (r) => h("a", { href: `#/items/${enc(r.id)}` }, r.id) },
      { label: "score", value: (r) => num(r.score, 4), num: true },
      { label: "source", value: (r) => r.source },
    ], answer.similar, (r) => ({ dataset: { item: r.id } })),
    h("h2", {}, "Catalog record"),
    answer.item ? h("pre", { class: "card" }, JSON.stringify(answer.item, null, 2))
      : h("p", { class: "muted" }, "not available"));
  if (answer.trend) chart.update(answer.trend.t, [answer.trend.count]);
}
