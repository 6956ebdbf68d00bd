// Quality: online hit rate and click-through over time, by model version (beside the
// offline gate's numbers of each) and by candidate source.
import { api } from "../api.js";
import { timeChart } from "../charts.js";
import { failure, h, num, table } from "../dom.js";
import { metricsCell } from "./models.js";

export default function quality(container) {
  container.append(h("h1", {}, "Quality"));
  const chart = timeChart("online quality", ["hit rate", "click-through"]);
  const body = h("div");
  container.append(h("div", { class: "charts" }, chart.node), body);
  api("/v1/console/quality").then((answer) => {
    chart.update(answer.series.t, [answer.series.hit_rate, answer.series.ctr]);
    body.append(
      h("h2", {}, "By model version (online, and the offline gate's numbers)"),
      table([
        { label: "version", value: (v) => v.version },
        { label: "requests", value: (v) => num(v.requests), num: true },
        { label: "hit rate", value: (v) => num(v.hit_rate, 3), num: true },
        { label: "click-through", value: (v) => num(v.ctr, 3), num: true },
        { label: "gate", value: (v) => v.gate?.decision ?? "–" },
        { label: "gate: candidate vs champion", value: (v) => metricsCell(v.gate) },
      ], answer.by_version),
      h("h2", {}, "By source"),
      table([
        { label: "source", value: (s) => s.source },
        { label: "shown", value: (s) => num(s.shown), num: true },
        { label: "clicks", value: (s) => num(s.clicks), num: true },
        { label: "click-through", value: (s) => num(s.ctr, 3), num: true },
        { label: "hit rate", value: (s) => num(s.hit_rate, 3), num: true },
      ], answer.by_source));
  }).catch((error) => body.append(failure(error)));
  return () => chart.destroy();
}
