// Time-series charts over the vendored uPlot (see docs/dependencies.md).
import uPlot from "../vendor/uplot/uPlot.esm.js";
import { h } from "./dom.js";

const COLOURS = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2"];

// A chart of `names` against time; `update(t, columns)` redraws. The series named `right`
// gets its own axis on the right (a count beside rates).
export function timeChart(title, names, { height = 180, right = null } = {}) {
  const holder = h("div");
  const box = h("div", { class: "chart", dataset: { chart: title } }, h("h3", {}, title), holder);
  let plot = null;
  const options = (width) => ({
    width, height,
    scales: { x: { time: true } },
    axes: [{}, { size: 55 },
           ...(right ? [{ scale: "right", side: 1, size: 55, grid: { show: false } }] : [])],
    series: [{}, ...names.map((name, i) => ({
      label: name, stroke: COLOURS[i % COLOURS.length], width: 1.5,
      scale: name === right ? "right" : "y",
    }))],
    legend: { live: false },
  });
  return {
    node: box,
    update(t, columns) {
      const data = [t, ...columns];
      if (plot === null && t.length < 2) {
        // One point gives uPlot no time range (it would draw years of empty axis).
        holder.replaceChildren(h("p", { class: "muted" }, "not enough points yet"));
        return;
      }
      if (plot === null) {
        holder.replaceChildren();
        plot = new uPlot(options(Math.max(300, holder.clientWidth || 400)), data, holder);
      } else {
        plot.setData(data);
      }
    },
    destroy() { plot?.destroy(); },
  };
}
