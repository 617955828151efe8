// `/builds/ID/jobs/NAME`: a job's step logs, live, with line links and search; any size of log
// (only what is on screen is read and laid out).
import { LogStore } from "./logstore.js";
import { LogView } from "./logview.js";
import { apiJson, badge, duration, el, every, jobTimes } from "./util.js";

const JOB_REFRESH_MS = 2000;

function defaultStep(job) {
  const running = job.steps.findIndex((s) => s.status === "running");
  if (running >= 0) return running;
  for (let i = job.steps.length - 1; i >= 0; i--) if (job.steps[i].log_bytes > 0) return i;
  return 0;
}

function decode(b64) {
  const raw = atob(b64);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

export async function logPage(main, me, signal, buildId, name) {
  const jobPath = `/builds/${buildId}/jobs/${encodeURIComponent(name)}`;
  const head = el("h1", {}, name);
  const note = el("p", { class: "muted", id: "log-note" });
  const bar = el("div", { class: "log-bar" });
  const box = el("div", { class: "panel" }, bar);
  main.replaceChildren(el("p", {}, el("a", { href: `/builds/${buildId}` }, `← build #${buildId}`)), head, note, box);
  const chosen = new URLSearchParams(location.search).get("step");
  let job = await apiJson(jobPath);
  let step = chosen === null ? null : Number(chosen);
  let opened = null;

  const showHead = () => {
    const { start, end } = jobTimes(job);
    head.replaceChildren(`${name} `, badge(job.status), el("span", { class: "muted" }, ` ${duration(start, end)}`));
    const waiting = !job.steps.length || job.status === "queued" || job.status === "waiting";
    note.textContent = waiting ? job.message || `${job.status}` : job.message || "";
  };
  const open = async (index) => {
    if (opened) opened.close();
    opened = openStep(box, bar, job, buildId, name, index, signal, async () => {
      job = await apiJson(jobPath);
      showHead();
      const next = defaultStep(job);
      if (step === null && next !== index && job.steps[next]?.status === "running") await open(next);
    });
  };
  showHead();
  if (job.steps.length) await open(step ?? defaultStep(job));
  every(JOB_REFRESH_MS, async () => {
    const hadSteps = job.steps.length > 0;
    job = await apiJson(jobPath);
    showHead();
    if (!hadSteps && job.steps.length) await open(step ?? defaultStep(job));
  }, signal);
}

function openStep(box, bar, job, buildId, name, index, signal, onEnd) {
  const url = `/api/v1/builds/${buildId}/jobs/${encodeURIComponent(name)}/steps/${index}/log`;
  const store = new LogStore(url);
  const view = new LogView(store);
  const search = el("input", { type: "search", placeholder: "Search the log (Enter: next)", id: "log-search" });
  const status = el("span", { class: "muted", id: "log-status" });
  const tabs = el("span", { class: "tabs" }, ...job.steps.map((s, i) =>
    el("a", { href: `?step=${i}`, class: i === index ? "on" : "" }, s.name || `step ${i + 1}`)));
  bar.replaceChildren(tabs, el("span", { class: "spacer" }), search, status,
    el("button", { id: "log-top", onclick: () => view.jumpToTop() }, "Top"),
    el("button", { id: "log-end", onclick: () => view.jumpToEnd() }, "End"),
    el("a", { href: url, download: `${name}-${index}.log` }, "raw"));
  box.replaceChildren(bar, view.node);
  const counted = () => {
    status.textContent = `${(store.total / 1e6).toFixed(store.total < 1e6 ? 3 : 1)} MB${store.fullyCounted ? ` · ${store.newlines().toLocaleString()} lines` : ""}`;
  };
  store.onCounted = () => { counted(); view.render(); goToHash(view); };
  wireSearch(search, status, store, view, signal);
  let source = null;
  const start = async () => {
    await store.open();
    counted();
    const wanted = lineFromHash();
    if (wanted === null) await view.jumpToEnd();
    else await view.render();
    store.countAll();
    source = new EventSource(`${url}/live?offset=${store.total}`);
    source.addEventListener("log", (event) => {
      const { offset, data_b64: data } = JSON.parse(event.data);
      store.append(offset, decode(data));
      counted();
      if (view.atBottom) view.render();
      else view.layout();
    });
    source.addEventListener("end", () => { source.close(); onEnd(); });
    source.addEventListener("error", (event) => { if (event.data) status.textContent = JSON.parse(event.data).error; });
  };
  signal.addEventListener("abort", () => source?.close());
  window.addEventListener("hashchange", () => goToHash(view));
  start().catch((error) => { status.textContent = `log: ${error.message}`; });
  return { close: () => source?.close() };
}

function lineFromHash() {
  const found = location.hash.match(/^#L(\d+)$/);
  return found ? Number(found[1]) : null;
}

async function goToHash(view) {
  const wanted = lineFromHash();
  if (wanted === null || wanted === view.target || !view.store.fullyCounted) return;
  const start = await view.store.startOfLine(wanted);
  if (start === null) return;
  view.target = wanted;
  await view.showOffset(start);
}

function wireSearch(input, status, store, view, signal) {
  let running = null;
  let from = 0;
  input.addEventListener("input", () => { view.query = input.value; from = view.top; view.render(); });
  input.addEventListener("keydown", async (event) => {
    if (event.key !== "Enter" || !input.value) return;
    running?.abort();
    const mine = (running = new AbortController());
    signal.addEventListener("abort", () => mine.abort());
    status.textContent = "searching…";
    const at = await store.search(input.value, from, (offset) => {
      status.textContent = `searching… ${Math.round((offset / Math.max(1, store.total)) * 100)}%`;
    }, mine.signal);
    if (mine.signal.aborted) return;
    if (at === null) {
      status.textContent = from > 0 ? "no more matches (Enter again: from the top)" : "no match";
      from = 0;
      return;
    }
    const lineStart = await store.lineStart(at);
    from = (await store.newlineFrom(at)) + 1;
    await view.showOffset(lineStart);
    const number = await store.lineNumber(lineStart);
    status.textContent = number === null ? "found" : `found on line ${number.toLocaleString()}`;
  });
}
