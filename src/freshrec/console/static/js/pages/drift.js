// Drift: each monitored signal's reference and current distributions, the detector's
// state, and the trainings drift triggered.
import { api } from "../api.js";
import { failure, h, num, table, when } from "../dom.js";

export default function drift(container) {
  container.append(h("h1", {}, "Drift"));
  const body = h("div");
  container.append(body);
  api("/v1/console/drift").then((answer) => {
    body.append(
      h("div", { class: "charts" }, answer.signals.map(signalCard)),
      h("h2", {}, "Trainings drift triggered"),
      table([
        { label: "version", value: (t) => t.version },
        { label: "trigger", value: (t) => t.trigger },
        { label: "started", value: (t) => when(t.started) },
      ], answer.trainings));
  }).catch((error) => body.append(failure(error)));
}

function signalCard(signal) {
  const { state, ...details } = signal.detector ?? {};
  const share = (counts) => {
    const total = counts.reduce((a, b) => a + b, 0) || 1;
    return counts.map((c) => c / total);
  };
  const reference = share(signal.reference?.counts ?? []);
  const current = share(signal.current?.counts ?? []);
  const widest = Math.max(...reference, ...current, 1e-9);
  const bins = signal.reference?.bins ?? signal.current?.bins ?? [];
  return h("div", { class: "chart", dataset: { signal: signal.name } },
    h("h3", {}, signal.name),
    h("p", { class: "row" },
      h("span", {}, `distance ${num(signal.distance, 3)}`),
      h("span", { class: "pill" }, `detector: ${state ?? "–"}`),
      h("span", { class: "muted" }, Object.entries(details)
        .filter(([, v]) => v === null || typeof v !== "object")
        .map(([k, v]) => `${k} ${num(v, 3)}`).join(" · "))),
    h("div", { class: "bars" }, bins.map((bin, i) => h("div", { class: "contrib" },
      h("span", {}, String(bin)),
      h("div", {},
        h("div", { class: "bar ref", style: { width: `${(100 * (reference[i] ?? 0)) / widest}%` } }),
        h("div", { class: "bar", style: { width: `${(100 * (current[i] ?? 0)) / widest}%` } })),
      h("span", { class: "muted" }, `${num(100 * (current[i] ?? 0), 1)}%`)))),
    h("p", { class: "muted" }, "grey: reference window · blue: current window"));
}
