// The log on screen: only the lines in view are in the page. The scrollbar maps to byte
// offsets (a huge log has more lines than a browser can lay out), each render reads the few
// chunks it needs from the LogStore, and the view follows the end while it is at the bottom.
import { segments } from "./ansi.js";
import { el } from "./util.js";

const ROW_PX = 18;
const MAX_SPACER_PX = 8_000_000; // below every browser's element height limit
const MAX_LINE_BYTES = 4096; // longer lines are cut on screen (the raw log has them whole)
const GUESS_LINE_BYTES = 60;

export class LogView {
  constructor(store) {
    this.store = store;
    this.top = 0; // byte offset of the first line shown
    this.atBottom = false;
    this.query = "";
    this.target = null; // the line number the address names (#L123)
    this.spacer = el("div", { class: "spacer" });
    this.lines = el("div", { class: "log-lines", id: "log-lines" });
    this.node = el("div", { class: "log-view", id: "log", tabindex: 0 }, this.spacer, this.lines);
    this.decoder = new TextDecoder();
    this.rendering = null;
    this.again = false;
    this.ignoreScroll = -1;
    this.node.addEventListener("scroll", () => this.onScroll());
    new ResizeObserver(() => this.render()).observe(this.node);
  }

  estimatedRows() {
    const store = this.store;
    if (store.fullyCounted) return store.newlines() + 1;
    return Math.max(1, Math.ceil(store.total / GUESS_LINE_BYTES));
  }

  layout() {
    const height = Math.min(MAX_SPACER_PX, this.estimatedRows() * ROW_PX);
    this.spacer.style.height = `${Math.max(height, this.node.clientHeight)}px`;
  }

  maxScroll() {
    return Math.max(0, this.node.scrollHeight - this.node.clientHeight);
  }

  async onScroll() {
    if (Math.abs(this.node.scrollTop - this.ignoreScroll) < 1) return;
    const max = this.maxScroll();
    this.atBottom = max > 0 && this.node.scrollTop >= max - 2;
    if (max <= 0) this.top = 0;
    else if (!this.atBottom) {
      const offset = Math.floor((this.node.scrollTop / max) * this.store.total);
      this.top = await this.store.lineStart(offset);
    }
    this.render();
  }

  scrollToOffset(offset) {
    const max = this.maxScroll();
    this.ignoreScroll = this.store.total ? Math.round((offset / this.store.total) * max) : 0;
    this.node.scrollTop = this.ignoreScroll;
    this.ignoreScroll = this.node.scrollTop;
  }

  async jumpToEnd() {
    this.atBottom = true;
    this.layout();
    this.ignoreScroll = this.maxScroll();
    this.node.scrollTop = this.ignoreScroll;
    await this.render();
  }

  async jumpToTop() {
    this.atBottom = false;
    this.top = 0;
    this.scrollToOffset(0);
    await this.render();
  }

  async showOffset(offset) {
    this.atBottom = false;
    this.top = await this.store.lineStart(offset);
    this.scrollToOffset(this.top);
    await this.render();
  }

  rows() {
    return Math.ceil(this.node.clientHeight / ROW_PX) + 1;
  }

  // Renders once at a time; a render asked for meanwhile runs after it, with the newest state.
  render() {
    if (this.rendering) {
      this.again = true;
      return this.rendering;
    }
    this.rendering = this.draw().catch((error) => console.warn("log render", error)).finally(() => {
      this.rendering = null;
      if (this.again) {
        this.again = false;
        this.render();
      }
    });
    return this.rendering;
  }

  async draw() {
    this.layout();
    const rows = this.rows();
    const store = this.store;
    // A log that fits on screen is shown whole, whatever line was asked for.
    if (store.fullyCounted && this.estimatedRows() <= rows - 1) this.top = 0;
    else if (this.atBottom) {
      const end = store.total;
      const lastStart = await store.lineStart(end > 0 && (await store.bytes(end - 1, end))[0] === 10 ? end - 1 : end);
      this.top = await store.linesBack(lastStart, rows - 2);
      this.ignoreScroll = this.maxScroll();
      this.node.scrollTop = this.ignoreScroll;
    }
    const found = [];
    for (let pos = this.top; found.length < rows && pos < store.total;) {
      const end = await store.newlineFrom(pos);
      found.push([pos, end]);
      pos = end + 1;
    }
    let number = await store.lineNumber(this.top);
    const nodes = [];
    for (const [start, end] of found) {
      const bytes = await store.bytes(start, Math.min(end, start + MAX_LINE_BYTES));
      const text = this.decoder.decode(bytes) + (end - start > MAX_LINE_BYTES ? " …" : "");
      nodes.push(this.line(number, text, start));
      if (number !== null) number++;
    }
    this.lines.style.top = `${this.node.scrollTop}px`;
    this.lines.style.height = `${this.node.clientHeight}px`;
    this.lines.replaceChildren(...nodes);
    this.node.dataset.top = String(this.top);
    this.node.dataset.total = String(store.total);
  }

  line(number, text, start) {
    const label = number === null ? "…" : String(number);
    const attrs = { class: "log-line", "data-offset": start };
    if (number !== null) {
      attrs.id = `L${number}`;
      attrs["data-line"] = number;
      if (number === this.target) attrs.class += " target";
    }
    const body = el("span", { class: "tx" }, ...segments(text).flatMap((part) => this.marked(part)));
    return el("div", attrs, el("a", { class: "ln", href: number === null ? undefined : `#L${number}` }, label), body);
  }

  marked({ text, cls }) {
    const wrap = (t) => (cls ? el("span", { class: cls }, t) : document.createTextNode(t));
    if (!this.query) return [wrap(text)];
    const out = [];
    const lower = text.toLowerCase();
    const q = this.query.toLowerCase();
    let last = 0;
    for (let at = lower.indexOf(q); at >= 0; at = lower.indexOf(q, at + q.length)) {
      if (at > last) out.push(wrap(text.slice(last, at)));
      out.push(el("mark", { class: `hit ${cls}` }, text.slice(at, at + q.length)));
      last = at + q.length;
    }
    if (last < text.length) out.push(wrap(text.slice(last)));
    return out;
  }
}
