// `/`: the builds, newest first, kept current without a reload.
import { apiJson, badge, duration, el, every, when } from "./util.js";

const REFRESH_MS = 1500;
const LIMIT = 100;

function row(build) {
  return el("tr", { "data-build": build.id },
    el("td", {}, el("a", { href: `/builds/${build.id}` }, `#${build.id}`)),
    el("td", {}, el("a", { href: `/builds/${build.id}` }, build.name)),
    el("td", {}, badge(build.status), build.error
      ? el("div", { class: "error", title: build.error }, build.error.split("\n")[0]) : ""),
    el("td", { class: "muted" }, [build.branch, build.tag, build.event].filter(Boolean).join(" · ")),
    el("td", { class: "muted" }, build.started_by || ""),
    el("td", { class: "muted" }, when(build.created_at_ms)),
    el("td", { class: "muted" }, duration(build.created_at_ms, build.finished_at_ms)));
}

export async function buildsPage(main, me, signal) {
  const body = el("tbody", { id: "builds" });
  const empty = el("p", { class: "muted", hidden: true }, "No builds yet: conveyor run PIPELINE.yml starts one.");
  main.replaceChildren(el("h1", {}, "Builds"),
    el("div", { class: "panel" }, el("table", {},
      el("thead", {}, el("tr", {}, ...["Build", "Pipeline", "Status", "Trigger", "By", "Created", "Duration"].map((h) => el("th", {}, h)))),
      body)), empty);
  const refresh = async () => {
    const builds = await apiJson(`/builds?limit=${LIMIT}`);
    body.replaceChildren(...builds.map(row));
    empty.hidden = builds.length > 0;
  };
  await refresh();
  every(REFRESH_MS, refresh, signal);
}
