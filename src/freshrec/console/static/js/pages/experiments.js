// Experiments: the A/B tests, each arm's online numbers with confidence intervals and the
// sequential test's decision; start one, stop one (and promote its winner).
import { api, enc } from "../api.js";
import { adminButton, confirmAction, failure, h, interval, notice, num, table, when } from "../dom.js";

const METRICS = ["ctr", "hit_rate", "purchases_per_user"];

export default function experiments(container, ctx, id) {
  const message = h("div");
  const body = h("div");
  container.append(h("h1", {}, "Experiments"), message, body);
  if (id) showOne(body, message, ctx, id);
  else showAll(body, message, ctx);
}

async function showAll(body, message, ctx) {
  const shadows = h("div", { id: "shadows" });
  let answer;
  try {
    answer = await api("/v1/experiments");
  } catch (error) {
    body.replaceChildren(failure(error));
    return;
  }
  body.replaceChildren(
    table([
      { label: "experiment", value: (e) => h("a", { href: `#/experiments/${enc(e.id)}` },
                                             e.name || e.id) },
      { label: "status", value: (e) => h("span", { class: "pill" }, e.status) },
      { label: "started", value: (e) => when(e.started) },
      { label: "metric", value: (e) => e.metric },
      { label: "arms", value: (e) => e.arms.map((a) => `${a.name} (${a.model}, ${a.share})`)
        .join(" · ") },
      { label: "decision", value: (e) => e.test?.decision ?? "–" },
    ], answer.experiments, (e) => ({ dataset: { experiment: e.id } })),
    h("h2", {}, "Start an experiment"), startForm(ctx, message),
    h("h2", {}, "Shadow models (answer a sample of requests unseen, scored beside the champion)"),
    shadows);
  api("/v1/shadow").then((found) => shadows.replaceChildren(table([
    { label: "shadow", value: (e) => e.name },
    { label: "status", value: (e) => h("span", { class: "pill" }, e.status) },
    { label: "started", value: (e) => when(e.started) },
    { label: "sample", value: (e) => num(e.sample), num: true },
    ...[0, 1].map((i) => ({
      label: i === 0 ? "champion: hit rate" : "shadow: hit rate",
      value: (e) => (e.arms[i] ? `${e.arms[i].model} · ${interval(e.arms[i].hit_rate)}` : "–"),
    })),
    { label: "decision", value: (e) => e.test?.decision ?? "–" },
  ], found.shadows)))
    .catch((error) => shadows.replaceChildren(failure(error)));
}

function armRow(name, model, share) {
  return h("div", { class: "row arm" },
    h("input", { name: "arm-name", value: name, placeholder: "arm name", required: true }),
    h("input", { name: "arm-model", value: model, placeholder: "champion or a version id",
                 required: true }),
    h("input", { name: "arm-share", type: "number", step: "any", min: "0", max: "1",
                 value: share, required: true }));
}

function startForm(ctx, message) {
  const arms = h("div", { class: "bars" }, armRow("control", "champion", 0.5),
                 armRow("candidate", "", 0.5));
  const name = h("input", { name: "name", required: true, placeholder: "what is tested" });
  const metric = h("select", { name: "metric" }, METRICS.map((m) => h("option", { value: m }, m)));
  const alpha = h("input", { name: "alpha", type: "number", step: "any", min: "0.001",
                             max: "0.5", value: "0.05" });
  const form = h("form", { id: "experiment-start", class: "card", onsubmit: async (event) => {
    event.preventDefault();
    const body = {
      name: name.value.trim(), metric: metric.value, alpha: Number(alpha.value),
      arms: [...arms.querySelectorAll(".arm")].map((row) => ({
        name: row.querySelector("[name=arm-name]").value.trim(),
        model: row.querySelector("[name=arm-model]").value.trim(),
        share: Number(row.querySelector("[name=arm-share]").value),
      })),
    };
    try {
      const started = await api("/v1/experiments", { method: "POST", body });
      location.hash = `#/experiments/${enc(started.id)}`;
    } catch (error) {
      message.replaceChildren(failure(error));
    }
  } },
  h("div", { class: "row" }, h("label", {}, "name ", name), h("label", {}, "metric ", metric),
    h("label", {}, "alpha ", alpha)),
  h("p", { class: "muted" }, "arms: name, model (\"champion\" or a version id), share of users"),
  arms,
  h("p", { class: "row" },
    h("button", { type: "button", class: "quiet",
                  onclick: () => arms.append(armRow("", "", 0)) }, "Add an arm"),
    adminButton(ctx, "Start", undefined, { type: "submit", id: "experiment-start-button" })));
  return form;
}

async function showOne(body, message, ctx, id) {
  let e;
  try {
    e = await api(`/v1/experiments/${enc(id)}`);
  } catch (error) {
    body.replaceChildren(failure(error));
    return;
  }
  const promote = h("input", { type: "checkbox", id: "promote-winner" });
  const stop = async () => {
    const question = promote.checked ? `Stop "${e.name}" and promote its winner?`
      : `Stop "${e.name}"? Every user goes back to the champion.`;
    if (!(await confirmAction(question))) return;
    try {
      await api(`/v1/experiments/${enc(id)}/stop`, { method: "POST",
                                                    body: { promote_winner: promote.checked } });
      message.replaceChildren(notice(`stopped ${e.name}`, "ok"));
    } catch (error) {
      message.replaceChildren(failure(error));
    }
    showOne(body, message, ctx, id);
  };
  const test = e.test ?? {};
  body.replaceChildren(
    h("p", { class: "row" }, h("a", { href: "#/experiments" }, "all experiments"),
      h("strong", {}, e.name), h("span", { class: "pill", id: "experiment-status" }, e.status),
      h("span", { class: "muted" }, `started ${when(e.started)}`
        + (e.stopped ? ` · stopped ${when(e.stopped)}` : "")
        + ` · metric ${e.metric} · alpha ${e.alpha}`)),
    table([
      { label: "arm", value: (a) => a.name },
      { label: "model", value: (a) => a.model },
      { label: "share", value: (a) => num(a.share), num: true },
      { label: "users", value: (a) => num(a.users), num: true },
      { label: "requests", value: (a) => num(a.requests), num: true },
      { label: "impressions", value: (a) => num(a.impressions), num: true },
      { label: "clicks", value: (a) => num(a.clicks), num: true },
      { label: "click-through [95%]", value: (a) => interval(a.ctr) },
      { label: "hit rate", value: (a) => interval(a.hit_rate) },
      { label: "purchases per user", value: (a) => interval(a.purchases_per_user) },
    ], e.arms, (a) => ({ dataset: { arm: a.name } })),
    h("h2", {}, "Always-valid sequential test"),
    h("p", { id: "experiment-decision" }, h("strong", {}, test.decision ?? "–"),
      ` · difference ${num(test.difference, 4)} [${num(test.low, 4)}, ${num(test.high, 4)}]`
      + ` · p ${num(test.p_value, 4)}`),
    e.status === "running" ? h("p", { class: "row" },
      h("label", {}, promote, " promote the winner"),
      adminButton(ctx, "Stop the experiment", stop, { id: "experiment-stop", class: "danger" }))
      : "");
}
