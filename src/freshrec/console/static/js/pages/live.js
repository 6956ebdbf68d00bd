// Live: the service's throughput, latency, errors and learner lag, all workers merged,
// polled every few seconds; the last hour as charts.
import { api } from "../api.js";
import { timeChart } from "../charts.js";
import { failure, h, num, table } from "../dom.js";

const POLL_MS = 2000;
const MIN_BUCKETS = 30;
const TILES = [
  ["events_per_s", "events/s"], ["recommendations_per_s", "recommendations/s"],
  ["latency_p50_ms", "latency p50 (ms)"], ["latency_p99_ms", "latency p99 (ms)"],
  ["errors_per_s", "errors/s"], ["learner_lag", "learner lag (records)"],
  ["events_total", "events since start"], ["recommendations_total", "recommendations since start"],
];

export default function live(container) {
  const tiles = Object.fromEntries(TILES.map(([key]) => [key, h("div", { class: "value" }, "–")]));
  const status = h("p", { class: "muted" });
  const workers = h("div");
  const charts = [
    [timeChart("throughput (per second)", ["events/s", "recommendations/s"]),
     ["events_per_s", "recommendations_per_s"]],
    [timeChart("recommendation latency (ms)", ["p50", "p99"]),
     ["latency_p50_ms", "latency_p99_ms"]],
    [timeChart("errors/s and learner lag", ["errors/s", "learner lag"], { right: "learner lag" }),
     ["errors_per_s", "learner_lag"]],
  ];
  // The charts show every worker added up, or one worker alone.
  const shown = h("select", { id: "live-worker", onchange: () => refresh() },
                  h("option", { value: "" }, "all workers"));
  container.append(
    h("h1", {}, "Live"), status,
    h("div", { class: "tiles" }, TILES.map(([key, label]) => h("div",
      { class: "tile", dataset: { stat: key } }, h("div", { class: "label" }, label), tiles[key]))),
    h("h2", { class: "row" }, "Last hour (10-second buckets)", shown),
    h("div", { class: "charts" }, charts.map(([chart]) => chart.node)),
    h("h2", {}, "Workers"), workers);

  let asking = false;
  async function refresh() {
    if (asking) return;  // a slow answer: no pile of requests behind it
    asking = true;
    try {
      const answer = await api("/v1/console/live?minutes=60");
      for (const [key] of TILES) tiles[key].textContent = num(answer.now[key]);
      status.textContent = `updated ${new Date().toLocaleTimeString()} · every ${POLL_MS / 1000} s`;
      for (const w of answer.workers) {
        if (![...shown.options].some((o) => o.value === w.worker)) {
          shown.append(h("option", { value: w.worker }, `worker ${w.worker}`));
        }
      }
      const series = answer.per_worker[shown.value] ?? answer.series;
      const from = firstActive(series);
      const t = series.t.slice(from);
      for (const [chart, keys] of charts) {
        chart.update(t, keys.map((k) => series[k].slice(from)));
      }
      workers.replaceChildren(workerTable(answer));
    } catch (error) {
      status.replaceChildren(failure(error));
    } finally {
      asking = false;
    }
  }
  refresh();
  const timer = setInterval(refresh, POLL_MS);
  return () => { clearInterval(timer); for (const [chart] of charts) chart.destroy(); };
}

// Where the charts start: the hour, less the quiet buckets before anything happened (a
// service up for a minute would otherwise draw a spike at the right edge); 5 minutes at least.
function firstActive(series) {
  const keys = Object.keys(series).filter((k) => k !== "t");
  const active = series.t.findIndex((_, i) => keys.some((k) => series[k][i]));
  const least = Math.max(0, series.t.length - MIN_BUCKETS);
  return active < 0 ? least : Math.min(active, least);
}

function workerTable(answer) {
  const last = (worker, key) => {
    const values = answer.per_worker[worker.worker]?.[key] ?? [];
    return num(values[values.length - 1]);
  };
  return table([
    { label: "worker", value: (w) => w.worker },
    { label: "pid", value: (w) => (w.pid ? w.pid : "not serving"), num: true },
    { label: "leads", value: (w) => (w.leader ? "yes" : "") },
    { label: "applied position", value: (w) => num(w.applied), num: true },
    { label: "learner lag", value: (w) => num(w.lag), num: true },
    { label: "events/s", value: (w) => last(w, "events_per_s"), num: true },
    { label: "recommendations/s", value: (w) => last(w, "recommendations_per_s"), num: true },
    { label: "p99 (ms)", value: (w) => last(w, "latency_p99_ms"), num: true },
  ], answer.workers, (w) => ({ dataset: { worker: w.worker } }));
}
