// A step's log as byte ranges: fetched in chunks with `Range`, a bounded cache of them, newline
// counts per chunk (so any line's number is known without keeping the log), and search. Nothing
// here holds more than CACHE_CHUNKS chunks, whatever the log's size.
export const CHUNK = 1 << 20;
const CACHE_CHUNKS = 24;
const COUNT_READ = 4 * CHUNK; // the server answers at most 4 MiB a request
const NEWLINE = 10;

function countNewlines(bytes, from = 0, to = bytes.length) {
  let n = 0;
  for (let i = bytes.indexOf(NEWLINE, from); i >= 0 && i < to; i = bytes.indexOf(NEWLINE, i + 1)) n++;
  return n;
}

export class LogStore {
  constructor(url) {
    this.url = url;
    this.total = 0;
    this.cache = new Map(); // chunk index -> Uint8Array, in use order
    this.pending = new Map();
    this.counts = []; // newlines in each chunk, for bytes below `counted`
    this.counted = 0;
    this.counting = null;
    this.onCounted = () => {};
  }

  async read(start, endExclusive) {
    const reply = await fetch(this.url, {
      credentials: "same-origin",
      headers: { Range: `bytes=${start}-${endExclusive - 1}` },
    });
    if (reply.status === 416) return new Uint8Array(0);
    if (!reply.ok) throw new Error(`log: ${reply.status} ${await reply.text()}`);
    const length = Number(reply.headers.get("X-Log-Length"));
    if (Number.isFinite(length) && length > this.total) this.total = length;
    return new Uint8Array(await reply.arrayBuffer());
  }

  async open() {
    await this.read(0, 1);
    return this.total;
  }

  async chunk(k) {
    const cached = this.cache.get(k);
    const expected = Math.min(CHUNK, this.total - k * CHUNK);
    if (cached && cached.length >= expected) {
      this.cache.delete(k);
      this.cache.set(k, cached);
      return cached;
    }
    if (!this.pending.has(k)) {
      const loading = this.read(k * CHUNK, (k + 1) * CHUNK).then((bytes) => {
        this.pending.delete(k);
        this.cache.set(k, bytes);
        while (this.cache.size > CACHE_CHUNKS) this.cache.delete(this.cache.keys().next().value);
        return bytes;
      }, (error) => { this.pending.delete(k); throw error; });
      this.pending.set(k, loading);
    }
    return this.pending.get(k);
  }

  // Live bytes at `offset` (the stream's own offset): cached chunks grow, counts follow.
  append(offset, bytes) {
    if (offset + bytes.length <= this.total) return;
    const skip = Math.max(0, this.total - offset);
    let pos = offset + skip;
    for (let i = skip; i < bytes.length;) {
      const k = Math.floor(pos / CHUNK);
      const room = (k + 1) * CHUNK - pos;
      const part = bytes.subarray(i, i + room);
      const cached = this.cache.get(k);
      if (cached && k * CHUNK + cached.length === pos) {
        const grown = new Uint8Array(cached.length + part.length);
        grown.set(cached);
        grown.set(part, cached.length);
        this.cache.set(k, grown);
      } else {
        this.cache.delete(k);
      }
      if (this.counted === pos) {
        this.counts[k] = (this.counts[k] || 0) + countNewlines(part);
        this.counted = pos + part.length;
      }
      pos += part.length;
      i += part.length;
    }
    this.total = Math.max(this.total, pos);
  }

  // Counts newlines from `counted` to the end, reading the log once (nothing of it is kept).
  countAll() {
    this.counting ||= (async () => {
      while (this.counted < this.total) {
        const start = this.counted;
        const bytes = await this.read(start, Math.min(this.total, start + COUNT_READ));
        if (!bytes.length || this.counted !== start) break;
        for (let at = 0; at < bytes.length;) {
          const k = Math.floor((start + at) / CHUNK);
          const end = Math.min(bytes.length, (k + 1) * CHUNK - start);
          this.counts[k] = (this.counts[k] || 0) + countNewlines(bytes, at, end);
          at = end;
        }
        this.counted = start + bytes.length;
      }
      this.counting = null;
      this.onCounted();
    })();
    return this.counting;
  }

  get fullyCounted() {
    return this.counted >= this.total;
  }

  newlines() {
    return this.counts.reduce((a, b) => a + (b || 0), 0);
  }

  // The number (from 1) of the line starting at `start`, or null while counts are missing.
  async lineNumber(start) {
    const k = Math.floor(start / CHUNK);
    if (this.counted < k * CHUNK) return null;
    let before = 0;
    for (let i = 0; i < k; i++) before += this.counts[i] || 0;
    const bytes = await this.chunk(k);
    return before + countNewlines(bytes, 0, start - k * CHUNK) + 1;
  }

  // Byte offset of the first newline at or after `pos` (or the log's end).
  async newlineFrom(pos) {
    for (let k = Math.floor(pos / CHUNK); k * CHUNK < this.total; k++) {
      const bytes = await this.chunk(k);
      const at = bytes.indexOf(NEWLINE, Math.max(0, pos - k * CHUNK));
      if (at >= 0) return k * CHUNK + at;
    }
    return this.total;
  }

  // The start of the line holding byte `pos` (looking back at most two chunks).
  async lineStart(pos) {
    if (pos <= 0) return 0;
    const floor = Math.max(0, (Math.floor((pos - 1) / CHUNK) - 2) * CHUNK);
    for (let k = Math.floor((pos - 1) / CHUNK); k * CHUNK >= floor && k >= 0; k--) {
      const bytes = await this.chunk(k);
      const at = bytes.lastIndexOf(NEWLINE, pos - 1 - k * CHUNK);
      if (at >= 0) return k * CHUNK + at + 1;
      pos = k * CHUNK;
    }
    return floor;
  }

  // The start of the line `n` lines before the one starting at `start`.
  async linesBack(start, n) {
    let pos = start;
    for (let i = 0; i < n && pos > 0; i++) pos = await this.lineStart(pos - 1);
    return pos;
  }

  async bytes(start, end) {
    const parts = [];
    for (let k = Math.floor(start / CHUNK); k * CHUNK < end; k++) {
      const bytes = await this.chunk(k);
      parts.push(bytes.subarray(Math.max(0, start - k * CHUNK), Math.min(bytes.length, end - k * CHUNK)));
    }
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const part of parts) { out.set(part, at); at += part.length; }
    return out;
  }

  // The start of line `n` (from 1), once counted; null past the end.
  async startOfLine(n) {
    if (n <= 1) return 0;
    let seen = 0;
    for (let k = 0; k * CHUNK < this.counted; k++) {
      const here = this.counts[k] || 0;
      if (seen + here >= n - 1) {
        const bytes = await this.chunk(k);
        let at = -1;
        for (let i = seen; i < n - 1; i++) at = bytes.indexOf(NEWLINE, at + 1);
        return k * CHUNK + at + 1;
      }
      seen += here;
    }
    return null;
  }

  // The first byte offset at or after `from` where `query` occurs (ASCII letters in any case),
  // reading forward without filling the cache; null if none. `progress(offset)` as it reads.
  async search(query, from, progress, signal) {
    const latin = new TextDecoder("latin1");
    const needle = latin.decode(new TextEncoder().encode(query)).toLowerCase();
    const overlap = needle.length - 1;
    for (let start = from; start < this.total && !signal.aborted; start += COUNT_READ - overlap) {
      const text = latin.decode(await this.read(start, Math.min(this.total, start + COUNT_READ))).toLowerCase();
      const at = text.indexOf(needle);
      if (at >= 0) return start + at;
      progress(start + text.length);
      if (text.length < COUNT_READ) break;
    }
    return null;
  }
}
