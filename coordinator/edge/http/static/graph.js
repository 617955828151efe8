// The pipeline as an SVG graph: jobs as nodes in columns by depth (the longest chain of
// `needs` before them), `needs` as edges, each node coloured by its state.
import { duration, jobTimes, svg } from "./util.js";

const NODE_W = 190;
const NODE_H = 54;
const GAP_X = 70;
const GAP_Y = 18;
const PAD = 8;
const COLOURS = {
  succeeded: "var(--ok)", failed: "var(--bad)", running: "var(--run)", canceled: "var(--idle)",
  skipped: "var(--idle)", queued: "var(--wait)", waiting: "var(--wait)", waiting_for_approval: "var(--wait)",
};

export function depths(jobs) {
  const byName = new Map(jobs.map((j) => [j.name, j]));
  const depth = new Map();
  const visit = (name, seen) => {
    if (depth.has(name)) return depth.get(name);
    if (seen.has(name)) return 0; // a cycle cannot pass validation; never loop on one
    seen.add(name);
    const needs = (byName.get(name)?.needs || []).filter((n) => byName.has(n));
    const d = needs.length ? 1 + Math.max(...needs.map((n) => visit(n, seen))) : 0;
    depth.set(name, d);
    return d;
  };
  jobs.forEach((j) => visit(j.name, new Set()));
  return depth;
}

export function renderGraph(build) {
  const depth = depths(build.jobs);
  const columns = [];
  for (const job of build.jobs) {
    const d = depth.get(job.name);
    (columns[d] ||= []).push(job);
  }
  const place = new Map();
  columns.forEach((column, x) => column.forEach((job, y) => {
    place.set(job.name, { x: PAD + x * (NODE_W + GAP_X), y: PAD + y * (NODE_H + GAP_Y) });
  }));
  const width = PAD * 2 + columns.length * NODE_W + Math.max(0, columns.length - 1) * GAP_X;
  const height = PAD * 2 + Math.max(1, ...columns.map((c) => c.length)) * (NODE_H + GAP_Y) - GAP_Y;
  const edges = [];
  for (const job of build.jobs) {
    const to = place.get(job.name);
    for (const need of job.needs || []) {
      const from = place.get(need);
      if (!from) continue;
      const x1 = from.x + NODE_W, y1 = from.y + NODE_H / 2, x2 = to.x, y2 = to.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      edges.push(svg("path", { class: "edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, "data-from": need, "data-to": job.name }));
    }
  }
  const nodes = build.jobs.map((job) => {
    const { x, y } = place.get(job.name);
    const { start, end } = jobTimes(job);
    const colour = COLOURS[job.status] || "var(--idle)";
    const detail = job.status === "running" || FINALISH.has(job.status)
      ? [job.status.replaceAll("_", " "), duration(start, end), job.attempts > 1 ? `${job.attempts} attempts` : ""].filter(Boolean).join(" · ")
      : (job.message || job.status.replaceAll("_", " "));
    return svg("a", { href: `/builds/${build.id}/jobs/${encodeURIComponent(job.name)}`, class: "node", "data-job": job.name, "data-status": job.status },
      svg("title", {}, `${job.name}: ${job.message || job.status}`),
      svg("rect", { x, y, width: NODE_W, height: NODE_H, rx: 8, stroke: colour }),
      svg("rect", { x, y, width: 6, height: NODE_H, rx: 3, fill: colour, stroke: colour }),
      svg("text", { x: x + 16, y: y + 22 }, clip(job.name, 22)),
      svg("text", { x: x + 16, y: y + 41, class: "sub" }, clip(detail, 30)));
  });
  return svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "pipeline graph" }, ...edges, ...nodes);
}

const FINALISH = new Set(["succeeded", "failed", "canceled"]);

function clip(text, chars) {
  return text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
}
