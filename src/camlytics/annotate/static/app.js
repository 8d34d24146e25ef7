// camlytics annotate: keyboard-first labelling. Plain JS, no build step, no network beyond this server.
"use strict";

const PREFETCH_AHEAD = 8;     // images decoded ahead of the cursor, so a label keystroke never waits
const PREFETCH_BEHIND = 2;
const CACHE_MAX = 64;
const GRID_COLS = 6;
const GRID_SIZE = 24;
const POLL_MS = 3000;         // new frames from a running collector, labels from other tabs
const CLASS_COLORS = { open: "#e8a33d", closed: "#4c9be8" };
const PALETTE = ["#b07ee8", "#e86b6b", "#4fc1b0", "#d4c95a", "#e87fbf", "#8fd16a", "#c9925f"];

const S = {
  classes: [], annotator: "", dataset: "", order: "auto", roi: null,
  queue: [],            // records in labelling order (fixed for the session; new frames are appended)
  byId: new Map(),
  cursor: 0,
  mode: "single",       // "single" | "grid" | "roi"
  skipped: new Set(),
  problems: [],
  selection: new Set(), anchor: 0,
  undoSizes: [],        // records changed by each of this tab's label actions (a grid action undoes at once)
  pending: 0,           // label writes not yet acknowledged
  writes: Promise.resolve(),
  stopped: false,
  zoom: false,          // grid thumbnails show the region of interest instead of the whole frame
};
const cache = new Map(); // record id -> {img: HTMLImageElement, ready: Promise}
// Figures the browser test reads: keystroke-to-next-image times in ms.
window.camlytics = {
  state: S, switchTimes: [], pending: () => S.pending,
  current: () => (S.queue[S.cursor] ? S.queue[S.cursor].id : null),
  // Prefetched images decoded and ready (the browser test waits for this before timing keystrokes).
  prefetched: () => [...cache.values()].filter((e) => e.img.complete).length,
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- server calls
async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const resp = await fetch(path, opts);
  let data = null;
  try { data = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) throw new Error((data && data.error) || `${resp.status} ${resp.statusText}`);
  return data;
}

// Writes go one after another, so "label then undo" reaches the store in the order of the keys.
function enqueueWrite(fn) {
  S.pending++;
  const run = S.writes.then(fn).finally(() => { S.pending--; });
  S.writes = run.catch(() => {});
  return run;
}

function toast(msg, kind = "error") {
  const t = $("toast");
  t.textContent = msg; t.className = kind; t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, kind === "error" ? 6000 : 2000);
}

// ---------------------------------------------------------------- images
function imageUrl(id) { return `/api/image/${id}`; }

function cached(id) {
  let entry = cache.get(id);
  if (entry) { cache.delete(id); cache.set(id, entry); return entry; } // LRU: move to the end
  const img = new Image();
  img.alt = `frame ${id}`;
  img.draggable = false;
  img.src = imageUrl(id);
  // decode() resolves when the pixels are ready to paint; a failed load still shows the server's placeholder.
  entry = { img, ready: img.decode().then(() => true, () => false) };
  entry.ready.then((ok) => { if (!ok) refreshProblems(); });
  cache.set(id, entry);
  while (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value);
  return entry;
}

function prefetch() {
  for (let k = -PREFETCH_BEHIND; k <= PREFETCH_AHEAD; k++) {
    const r = S.queue[S.cursor + k];
    if (r) cached(r.id);
  }
}

// ---------------------------------------------------------------- rendering
function colorOf(label) {
  if (!label) return "#59606b";
  if (CLASS_COLORS[label]) return CLASS_COLORS[label];
  return PALETTE[Math.max(0, S.classes.indexOf(label)) % PALETTE.length];
}

function current() { return S.queue[S.cursor]; }
// Several datasets in one session (fleet annotate): each record brings its sensor's classes and ROI.
function classesOf(r) { return (r && r.classes) || S.classes; }
function roiOf(r) { return r && r.roi !== undefined ? r.roi : S.roi; }

// t0: performance.now() of the keystroke that led here; `what` names it in the timing log.
function showCurrent(t0, what = "move") {
  const r = current();
  const frame = $("frame");
  if (!r) {
    $("badge").textContent = "no images yet";
    $("badge").style.background = "#59606b";
    renderSide(); renderStrip(); return;
  }
  const entry = cached(r.id);
  const old = $("image");
  if (old !== entry.img) {
    // Swap in the prefetched, already decoded element: no network, no decode on the keystroke.
    entry.img.id = "image";
    frame.replaceChild(entry.img, old);
    old.id = "";
  }
  fitFrame();
  entry.ready.then(() => { if (current() === r) fitFrame(); });
  renderBadge(); renderSide(); renderStrip(); renderRoi();
  entry.ready.then(() => { if (current() === r) renderZoom(); });
  prefetch();
  if (t0 !== undefined) {
    entry.ready.then(() => requestAnimationFrame(() => {
      window.camlytics.switchTimes.push({ what, ms: performance.now() - t0 });
    }));
  }
}

// Scale the image to fill the stage while keeping its aspect ratio; overlays use % of the frame.
function fitFrame() {
  const img = $("image");
  const stage = $("stage");
  const w = img.naturalWidth || 640, h = img.naturalHeight || 360;
  const scale = Math.min((stage.clientWidth - 24) / w, (stage.clientHeight - 24) / h);
  img.style.width = `${Math.max(1, Math.floor(w * scale))}px`;
  img.style.height = `${Math.max(1, Math.floor(h * scale))}px`;
}

function renderBadge() {
  const r = current();
  const b = $("badge");
  if (!r) return;
  const skipped = !r.label && S.skipped.has(r.id);
  b.textContent = r.label ? r.label.toUpperCase() : skipped ? "skipped" : "unlabelled";
  b.style.background = r.label ? colorOf(r.label) : "transparent";
  b.className = "badge" + (r.label ? "" : " empty");
  $("position").textContent = `${S.cursor + 1} / ${S.queue.length}`;
  $("cap-time").textContent = r.time;
  $("cap-why").textContent = `${r.sensor ? r.sensor + " · " : ""}${r.sampler} · ${r.reason}`;
  const pred = $("cap-pred");
  pred.textContent = r.prediction ? `model: ${r.prediction} ${Math.round(100 * (r.confidence || 0))}%` : "";
  pred.style.color = colorOf(r.prediction);
}

function renderRoi() {
  const box = $("roi-box");
  const img = $("image");
  const roi = roiOf(current());
  if (!roi || !img.naturalWidth) { box.hidden = true; $("zoom-panel").hidden = true; return; }
  placeBox(box, roi, img.naturalWidth, img.naturalHeight);
  box.hidden = false;
  renderZoom();
}

// The door region of the current frame, enlarged in the side panel (the door is a small part of the view).
function renderZoom() {
  const panel = $("zoom-panel");
  const img = $("image");
  const roi = roiOf(current());
  if (!roi || !img.naturalWidth || !img.complete) { panel.hidden = true; return; }
  panel.hidden = false;
  const [x0, y0, x1, y1] = roi;
  const canvas = $("zoom");
  const scale = Math.min(canvas.width / (x1 - x0), canvas.height / (y1 - y0));
  const w = (x1 - x0) * scale, h = (y1 - y0) * scale;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#0c0d0f";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(img, x0, y0, x1 - x0, y1 - y0, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
}

// Show only the ROI of a thumbnail: scale and shift the image inside its 16:9 cell (all in %).
function zoomThumb(img, wrap, roi) {
  const [x0, y0, x1, y1] = roi;
  const rw = x1 - x0, rh = y1 - y0;
  const k = Math.min(1 / rw, (9 / 16) / rh); // cell widths per image pixel
  wrap.classList.add("zoomed");
  img.style.width = `${100 * img.naturalWidth * k}%`;
  img.style.height = "auto";
  img.style.left = `${100 * (0.5 - (x0 + rw / 2) * k)}%`;
  img.style.top = `${100 * (0.5 - (y0 + rh / 2) * k * (16 / 9))}%`;
}

function placeBox(el, [x0, y0, x1, y1], w, h) {
  el.style.left = `${(100 * x0) / w}%`;
  el.style.top = `${(100 * y0) / h}%`;
  el.style.width = `${(100 * (x1 - x0)) / w}%`;
  el.style.height = `${(100 * (y1 - y0)) / h}%`;
}

// Unix seconds as local "YYYY-MM-DD HH:MM:SS" (the store keeps the time of annotation).
function fmtWhen(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const d = new Date(Number(seconds) * 1000);
  if (isNaN(d)) return String(seconds);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function renderSide() {
  const r = S.mode === "grid" ? S.queue[S.cursor] : current();
  const info = $("info");
  info.replaceChildren();
  const add = (k, v, cls) => {
    if (v === null || v === undefined || v === "") return;
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    if (cls) dd.className = cls;
    info.append(dt, dd);
  };
  if (r) {
    add("time", r.time, "big");
    add("sensor", r.sensor);
    add("label", r.label || "—");
    if (r.label) add("by", `${r.annotator || "?"} · ${fmtWhen(r.labelled_at)}`);
    add("sampler", r.sampler);
    add("reason", r.reason);
    add("score", r.score === null ? null : r.score.toFixed(3));
    add("source", r.source);
    add("file", r.original_name);
    add("record", `#${r.id}`);
    const prob = S.problems.find((p) => p.id === r.id);
    if (prob) add("problem", prob.error, "bad");
  }
  const pred = $("prediction");
  if (r && r.prediction) {
    const pct = Math.round(100 * (r.confidence || 0));
    pred.className = "";
    pred.innerHTML = "";
    const name = document.createElement("div");
    name.className = "pred-name";
    name.textContent = `${r.prediction}  ${pct}%`;
    name.style.color = colorOf(r.prediction);
    const bar = document.createElement("div"); bar.className = "bar";
    const fill = document.createElement("div"); fill.className = "fill";
    fill.style.width = `${pct}%`; fill.style.background = colorOf(r.prediction);
    bar.append(fill);
    pred.append(name, bar);
    // Every class's probability when the model stored them (more than the top one).
    const probs = Object.entries(r.probs || {}).sort((a, b) => b[1] - a[1]);
    if (probs.length > 1) {
      const t = document.createElement("div"); t.className = "probs";
      for (const [c, v] of probs) {
        const row = document.createElement("div");
        row.textContent = `${c} ${(100 * v).toFixed(1)}%`;
        row.style.color = colorOf(c);
        t.append(row);
      }
      pred.append(t);
    }
    if (r.label && r.label !== r.prediction) {
      const d = document.createElement("div"); d.className = "bad small";
      d.textContent = `disagrees with the label (${r.label})`; pred.append(d);
    }
  } else {
    pred.className = "muted";
    pred.textContent = "no prediction stored";
  }
  renderProgress();
  renderKeys();
}

function renderProgress() {
  // The chips are the current frame's classes and keys; with several sensors, counted within its sensor.
  const here = S.mode === "grid" ? S.queue[S.cursor] : current();
  const classes = classesOf(here);
  const sensor = here ? here.sensor : undefined;
  const per = Object.fromEntries(classes.map((c) => [c, 0]));
  let labelled = 0;
  for (const r of S.queue) {
    if (!r.label) continue;
    labelled++;
    if (r.sensor === sensor) per[r.label] = (per[r.label] || 0) + 1;
  }
  const total = S.queue.length;
  $("progress-fill").style.width = total ? `${(100 * labelled) / total}%` : "0";
  $("progress-text").textContent = `${labelled} / ${total} labelled`;
  const cc = $("class-counts");
  cc.replaceChildren();
  classes.forEach((c, i) => {
    const chip = document.createElement("span");
    chip.className = "class-chip";
    chip.style.setProperty("--c", colorOf(c));
    chip.innerHTML = `<kbd></kbd><span class="name"></span><b></b>`;
    chip.querySelector("kbd").textContent = keyNameFor(c, i);
    chip.querySelector(".name").textContent = c;
    chip.querySelector("b").textContent = per[c] || 0;
    cc.append(chip);
  });
  $("mode").textContent = S.mode === "roi" ? "ROI tool" : S.mode;
  $("mode").className = `pill ${S.mode}`;
}

function keyNameFor(c, i) {
  const arrow = c === upClass() ? "↑ " : c === downClass() ? "↓ " : "";
  return `${arrow}${i + 1}`;
}

function renderStrip() {
  const canvas = $("strip");
  const w = canvas.clientWidth;
  if (canvas.width !== w) canvas.width = w;
  const ctx = canvas.getContext("2d");
  const n = S.queue.length;
  ctx.fillStyle = "#1b1d21";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!n) return;
  const cw = canvas.width / n;
  S.queue.forEach((r, i) => {
    ctx.fillStyle = r.label ? colorOf(r.label) : S.skipped.has(r.id) ? "#444a54" : "#30343b";
    ctx.fillRect(Math.floor(i * cw), 3, Math.max(1, Math.ceil(cw) - (cw > 3 ? 1 : 0)), canvas.height - 6);
  });
  // The cursor: a white outline around its cell (a bar when cells are thinner than a few pixels).
  ctx.strokeStyle = "#ffffff";
  ctx.lineWidth = 2;
  const x = Math.floor(S.cursor * cw);
  ctx.strokeRect(x, 1, Math.max(2, Math.ceil(cw) - 1), canvas.height - 2);
}

// The keys table; rebuilt only when what it says changes (the classes differ between sensors' frames).
function renderKeys() {
  const here = classesOf(S.mode === "grid" ? S.queue[S.cursor] : current());
  const rows = S.mode === "grid" ? [
    ["1 … " + here.length, `label the selection (${here.join(", ")})`],
    ["click", "select one"], ["Shift+click", "select a range"], ["Ctrl+click", "add / remove"],
    ["arrows", "move (Shift extends)"], ["Space", "select / unselect"], ["A", "select whole page"],
    ["Esc", "clear selection"], ["PgUp PgDn  [ ]", "previous / next page"], ["Z", "zoom to the ROI"],
    ["U  ⌫", "undo last action"], ["Enter", "open in single view"], ["G", "back to single view"], ["Q", "quit"],
  ] : [
    ["↑", upClass()], ["↓", downClass()], ["1 … " + here.length, here.join(", ")],
    ["← →", "previous / next"], ["Space", "skip"], ["U  ⌫", "undo last label"],
    ["N", "next unlabelled"], ["L", "last labelled"], ["G", "grid view"], ["R", "draw ROI"], ["Q", "quit"],
  ];
  const t = $("keys");
  const signature = JSON.stringify(rows);
  if (t.dataset.shown === signature) return;
  t.dataset.shown = signature;
  t.replaceChildren();
  for (const [k, what] of rows) {
    const tr = document.createElement("tr");
    const a = document.createElement("td"); const kbd = document.createElement("kbd"); kbd.textContent = k; a.append(kbd);
    const b = document.createElement("td"); b.textContent = what;
    tr.append(a, b); t.append(tr);
  }
}

function renderProblems() {
  const panel = $("problems-panel");
  panel.hidden = S.problems.length === 0;
  $("problem-count").textContent = S.problems.length;
  const ul = $("problems");
  ul.replaceChildren();
  for (const p of S.problems) {
    const li = document.createElement("li");
    li.textContent = `#${p.id} ${p.error}`;
    li.title = p.path;
    li.onclick = () => goTo(S.queue.findIndex((r) => r.id === p.id));
    ul.append(li);
  }
}

async function refreshProblems() {
  try {
    S.problems = (await api("/api/problems")).problems;
    renderProblems(); renderSide();
  } catch (e) { /* the poll reports a dead server */ }
}

// ---------------------------------------------------------------- navigation
function goTo(i, t0, what) {
  if (!S.queue.length || i < 0) return;
  S.cursor = Math.max(0, Math.min(S.queue.length - 1, i));
  if (S.mode === "grid") renderGrid(); else showCurrent(t0, what);
}

function nextUnlabelled(from, skipSkipped = false) {
  const n = S.queue.length;
  for (let k = 1; k <= n; k++) {
    const i = (from + k) % n;
    const r = S.queue[i];
    if (!r.label && !(skipSkipped && S.skipped.has(r.id))) return i;
  }
  return -1;
}

// The most recently labelled frame (by the store's time of annotation; labels not yet written count as now).
function lastLabelled() {
  let best = -1, when = -Infinity;
  S.queue.forEach((r, i) => {
    if (!r.label) return;
    const w = r.labelled_at === null || r.labelled_at === undefined ? Infinity : Number(r.labelled_at);
    if (w >= when) { best = i; when = w; }
  });
  return best;
}

function upClass() { const c = classesOf(current()); return c.includes("open") ? "open" : c[0]; }
function downClass() { const c = classesOf(current()); return c.includes("closed") ? "closed" : c[1]; }

// ---------------------------------------------------------------- labelling
function applyRecords(records) {
  for (const rec of records) {
    const r = S.byId.get(rec.id);
    if (r) Object.assign(r, rec);
  }
}

// Label records now in the page, write them in the background (one request per keystroke).
function labelRecords(records, label) {
  if (!records.length) return;
  const before = records.map((r) => [r, r.label, r.annotator, r.labelled_at]);
  const now = Date.now() / 1000;
  for (const r of records) { r.label = label; r.annotator = S.annotator; r.labelled_at = now; }
  S.undoSizes.push(records.length);
  const body = records.length === 1 ? { id: records[0].id, label } : { ids: records.map((r) => r.id), label };
  enqueueWrite(() => api("/api/label", body)).then(
    (res) => { applyRecords(res.records); rerender(); },
    (err) => {
      for (const [r, l, a, t] of before) { r.label = l; r.annotator = a; r.labelled_at = t; }
      S.undoSizes.pop();
      toast(`not saved: ${err.message}`);
      rerender();
    },
  );
}

function undo() {
  const count = S.undoSizes.pop() || 1;
  enqueueWrite(() => api("/api/undo", { count })).then(
    (res) => {
      const recs = res.records || [];
      applyRecords(recs);
      if (!recs.length) { toast("nothing to undo", "info"); rerender(); return; }
      const i = S.queue.findIndex((r) => r.id === recs[recs.length - 1].id);
      if (i >= 0) S.cursor = i;
      toast(`undone: ${recs.length} label${recs.length > 1 ? "s" : ""}`, "info");
      rerender();
    },
    (err) => toast(`undo failed: ${err.message}`),
  );
}

function rerender() {
  if (S.mode === "grid") renderGrid(); else { renderBadge(); renderSide(); renderStrip(); }
}

// ---------------------------------------------------------------- grid view
function gridPageStart() { return Math.floor(S.cursor / GRID_SIZE) * GRID_SIZE; }

function renderGrid() {
  $("zoom-panel").hidden = true; // the side panel's ROI view follows the single view's image
  const start = gridPageStart();
  const cells = $("grid-cells");
  cells.replaceChildren();
  for (let i = start; i < Math.min(start + GRID_SIZE, S.queue.length); i++) {
    const r = S.queue[i];
    const cell = document.createElement("div");
    cell.className = "cell" + (S.selection.has(r.id) ? " selected" : "") + (i === S.cursor ? " focus" : "");
    cell.dataset.index = i;
    cell.style.setProperty("--c", colorOf(r.label));
    const wrap = document.createElement("div"); wrap.className = "thumb";
    const img = document.createElement("img");
    img.src = imageUrl(r.id); img.alt = `frame ${r.id}`; img.draggable = false;
    wrap.append(img);
    const roi = roiOf(r);
    if (roi && S.zoom) {
      const fit = () => zoomThumb(img, wrap, roi);
      if (img.complete && img.naturalWidth) fit(); else img.addEventListener("load", fit);
    } else if (roi) {
      const box = document.createElement("div"); box.className = "roi thin";
      const place = () => { placeBox(box, roi, img.naturalWidth, img.naturalHeight); wrap.append(box); };
      if (img.complete && img.naturalWidth) place(); else img.addEventListener("load", place);
    }
    const cap = document.createElement("div"); cap.className = "caption";
    const lab = document.createElement("span"); lab.className = "lab";
    lab.textContent = r.label || "—";
    const tm = document.createElement("span"); tm.textContent = r.time;
    cap.append(lab, tm);
    if (r.prediction) {
      const p = document.createElement("span"); p.className = "pred";
      p.textContent = `${r.prediction} ${Math.round(100 * (r.confidence || 0))}%`;
      cap.append(p);
    }
    cell.append(wrap, cap);
    cell.addEventListener("mousedown", (ev) => gridClick(i, ev));
    cell.addEventListener("dblclick", () => { setMode("single"); goTo(i); });
    cells.append(cell);
  }
  const pages = Math.max(1, Math.ceil(S.queue.length / GRID_SIZE));
  $("grid-footer").textContent =
    `page ${Math.floor(start / GRID_SIZE) + 1} / ${pages} · ${S.selection.size} selected · ` +
    `press 1…${classesOf(S.queue[S.cursor]).length} to label the selection (or the focused frame)` +
    (roiOf(S.queue[S.cursor]) ? ` · Z: ${S.zoom ? "whole frames" : "zoom to the ROI"}` : "");
  renderSide(); renderStrip();
}

function gridClick(i, ev) {
  ev.preventDefault();
  const id = S.queue[i].id;
  if (ev.shiftKey) {
    const [a, b] = [Math.min(S.anchor, i), Math.max(S.anchor, i)];
    if (!(ev.ctrlKey || ev.metaKey)) S.selection.clear();
    for (let k = a; k <= b; k++) S.selection.add(S.queue[k].id);
  } else if (ev.ctrlKey || ev.metaKey) {
    if (S.selection.has(id)) S.selection.delete(id); else S.selection.add(id);
    S.anchor = i;
  } else {
    S.selection.clear(); S.selection.add(id); S.anchor = i;
  }
  S.cursor = i;
  renderGrid();
}

function gridMove(delta, extend) {
  const i = Math.max(0, Math.min(S.queue.length - 1, S.cursor + delta));
  if (extend) {
    const [a, b] = [Math.min(S.anchor, i), Math.max(S.anchor, i)];
    S.selection.clear();
    for (let k = a; k <= b; k++) S.selection.add(S.queue[k].id);
  } else {
    S.anchor = i;
  }
  S.cursor = i;
  renderGrid();
}

function gridLabel(label) {
  const ids = S.selection.size ? S.selection : new Set([S.queue[S.cursor].id]);
  const records = S.queue.filter((r) => ids.has(r.id));
  labelRecords(records, label);
  S.selection.clear();
  // A fully labelled page moves on to the next one: the common case is "select all, press closed".
  const start = gridPageStart();
  const page = S.queue.slice(start, start + GRID_SIZE);
  if (page.every((r) => r.label) && start + GRID_SIZE < S.queue.length) {
    S.cursor = start + GRID_SIZE; S.anchor = S.cursor;
  }
  renderGrid();
}

function gridKey(ev) {
  const k = ev.key;
  const shift = ev.shiftKey;
  if (k === "ArrowLeft") gridMove(-1, shift);
  else if (k === "ArrowRight") gridMove(1, shift);
  else if (k === "ArrowUp") gridMove(-GRID_COLS, shift);
  else if (k === "ArrowDown") gridMove(GRID_COLS, shift);
  else if (k === "PageDown" || k === "]") { S.selection.clear(); goTo(gridPageStart() + GRID_SIZE); }
  else if (k === "PageUp" || k === "[") { S.selection.clear(); goTo(gridPageStart() - GRID_SIZE >= 0 ? gridPageStart() - GRID_SIZE : 0); }
  else if (k === " ") {
    const id = S.queue[S.cursor].id;
    if (S.selection.has(id)) S.selection.delete(id); else S.selection.add(id);
    S.anchor = S.cursor; renderGrid();
  } else if (k === "a" || k === "A") {
    const start = gridPageStart();
    S.queue.slice(start, start + GRID_SIZE).forEach((r) => S.selection.add(r.id));
    renderGrid();
  } else if (k === "Escape") { S.selection.clear(); renderGrid(); }
  else if (k === "z" || k === "Z") { S.zoom = !S.zoom; renderGrid(); }
  else if (k === "Enter") { setMode("single"); showCurrent(); }
  else return false;
  return true;
}

// ---------------------------------------------------------------- ROI tool
function setMode(mode) {
  S.mode = mode;
  $("viewer").hidden = mode === "grid";
  $("grid").hidden = mode !== "grid";
  $("roi-hint").hidden = mode !== "roi";
  document.body.classList.toggle("roi-mode", mode === "roi");
  $("drag-box").hidden = true;
  renderKeys();
  if (mode === "grid") renderGrid(); else showCurrent();
}

// Where the pointer is on the image, as fractions (0..1) of its displayed width and height. Pixels
// come only when the ROI is saved: the image may still be loading when the drag starts (its natural
// size is 0 until then, while the laid-out frame already has its size).
function framePoint(ev) {
  const img = $("image");
  let fx, fy;
  if (ev.target === img && img.clientWidth > 0 && img.clientHeight > 0) {
    // On the image itself: the offset the browser hit-tested with (a re-layout can't move it).
    fx = ev.offsetX / img.clientWidth; fy = ev.offsetY / img.clientHeight;
  } else {
    const rect = img.getBoundingClientRect();
    fx = (ev.clientX - rect.left) / rect.width; fy = (ev.clientY - rect.top) / rect.height;
  }
  const clamp = (v) => (Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0);
  return [clamp(fx), clamp(fy)];
}

function setupRoiDrag() {
  const frame = $("frame");
  let start = null;
  const spanTo = (p) => [Math.min(start[0], p[0]), Math.min(start[1], p[1]), Math.max(start[0], p[0]), Math.max(start[1], p[1])];
  frame.addEventListener("mousedown", (ev) => {
    if (S.mode !== "roi" || ev.button !== 0) return;
    ev.preventDefault();
    start = framePoint(ev);
  });
  window.addEventListener("mousemove", (ev) => {
    if (!start) return;
    const box = $("drag-box");
    placeBox(box, spanTo(framePoint(ev)), 1, 1);
    box.hidden = false;
  });
  window.addEventListener("mouseup", (ev) => {
    if (!start) return;
    const [x0, y0, x1, y1] = spanTo(framePoint(ev));
    start = null;
    $("drag-box").hidden = true;
    const img = $("image");
    const w = img.naturalWidth, h = img.naturalHeight;
    if (!w || !h) { toast("the image has not loaded yet: drag the ROI again", "info"); return; }
    const roi = [Math.floor(x0 * w), Math.floor(y0 * h), Math.min(w, Math.ceil(x1 * w)), Math.min(h, Math.ceil(y1 * h))];
    if (roi[2] - roi[0] < 4 || roi[3] - roi[1] < 4) { toast("ROI too small: drag a larger rectangle", "info"); return; }
    saveRoi(roi);
  });
}

function saveRoi(roi) {
  enqueueWrite(() => api("/api/roi", { roi })).then(
    (res) => {
      S.roi = res.roi;
      toast(res.roi ? `ROI saved: ${res.roi.join(", ")}` : "ROI cleared", "info");
      setMode("single");
    },
    (err) => toast(`ROI not saved: ${err.message}`),
  );
}

// ---------------------------------------------------------------- keys
function onKey(ev) {
  if (S.stopped || ev.altKey || ((ev.ctrlKey || ev.metaKey) && ev.key !== "a")) return;
  const t0 = ev.timeStamp; // when the key event was created: the measured delay includes input handling
  const k = ev.key;
  let handled = true;
  const classIndex = /^[1-9]$/.test(k) ? Number(k) - 1 : -1;
  if (k === "q" || k === "Q") quit();
  else if (k === "g" || k === "G") setMode(S.mode === "grid" ? "single" : "grid");
  else if (S.mode === "grid") {
    const here = classesOf(S.queue[S.cursor]);
    if (classIndex >= 0 && classIndex < here.length) gridLabel(here[classIndex]);
    else if (k === "u" || k === "U" || k === "Backspace") undo();
    else if (k === "n" || k === "N") { const i = nextUnlabelled(S.cursor); if (i >= 0) { S.anchor = i; goTo(i); } }
    else if (k === "l" || k === "L") { const i = lastLabelled(); if (i >= 0) { S.anchor = i; goTo(i); } }
    else handled = gridKey(ev);
  } else if (S.mode === "roi") {
    if (k === "Escape" || k === "r" || k === "R") setMode("single");
    else if (k === "Delete" || k === "Backspace") saveRoi(null);
    else handled = false;
  } else {
    const r = current();
    let label = null;
    if (k === "ArrowUp") label = upClass();
    else if (k === "ArrowDown") label = downClass();
    else if (classIndex >= 0 && classIndex < classesOf(r).length) label = classesOf(r)[classIndex];
    if (label && r) {
      labelRecords([r], label);
      S.skipped.delete(r.id);
      goTo(S.cursor + 1 < S.queue.length ? S.cursor + 1 : S.cursor, t0, "label");
    } else if (k === "ArrowLeft") goTo(S.cursor - 1, t0);
    else if (k === "ArrowRight") goTo(S.cursor + 1, t0);
    else if (k === " ") {
      if (r && !r.label) S.skipped.add(r.id);
      const i = nextUnlabelled(S.cursor, true);
      goTo(i >= 0 ? i : S.cursor + 1, t0);
    } else if (k === "u" || k === "U" || k === "Backspace") undo();
    else if (k === "n" || k === "N") {
      const i = nextUnlabelled(S.cursor);
      if (i >= 0) goTo(i, t0); else toast("every image is labelled", "info");
    } else if (k === "l" || k === "L") {
      const i = lastLabelled();
      if (i >= 0) goTo(i, t0); else toast("nothing labelled yet", "info");
    } else if (k === "r" || k === "R") setMode("roi");
    else handled = false;
  }
  if (handled) ev.preventDefault();
}

async function quit() {
  await S.writes; // every label keystroke reaches the store before the server stops
  try { await api("/api/quit", {}); } catch (e) { /* already gone */ }
  S.stopped = true;
  $("stopped").hidden = false;
}

// ---------------------------------------------------------------- model advice (--model)
// The trained model's "do I have enough labels?" advice; every string goes in as text, never as HTML.
function renderAdvice(advice) {
  const panel = $("advice-panel");
  panel.hidden = !advice;
  if (!advice) return;
  const verdict = $("advice-verdict");
  verdict.textContent = advice.verdict;
  verdict.className = `pill ${["enough", "more", "harder"].includes(advice.verdict) ? advice.verdict : ""}`;
  $("advice-text").textContent = advice.advice;
  const cv = typeof advice.cv_mean === "number" ? `CV balanced accuracy ${(100 * advice.cv_mean).toFixed(1)}%` : "";
  $("advice-cv").textContent = [cv, advice.shipped ? `model: ${advice.shipped}` : ""].filter(Boolean).join(" · ");
  const kinds = $("advice-kinds");
  kinds.replaceChildren();
  const top = Object.entries(advice.errors_by_kind || {}).sort((a, b) => b[1] - a[1]).slice(0, 3);
  for (const [kind, n] of top) {
    const li = document.createElement("li");
    li.textContent = `${kind}: ${n} CV error${n === 1 ? "" : "s"}`;
    if (kind === advice.worst) li.className = "worst";
    kinds.append(li);
  }
  kinds.hidden = !top.length;
}

// ---------------------------------------------------------------- start and poll
function mergeState(st, first) {
  S.classes = st.classes; S.annotator = st.annotator; S.dataset = st.dataset; S.roi = st.roi;
  S.problems = st.problems;
  for (const rec of st.records) {
    const r = S.byId.get(rec.id);
    if (r) {
      if (!S.pending) Object.assign(r, rec); // an unacknowledged local label wins until written
    } else {
      S.byId.set(rec.id, rec);
      S.queue.push(rec);
    }
  }
  $("dataset").textContent = `${st.dataset} · ${st.annotator} · order: ${st.order.replace("_", " ")}`;
  if (first) {
    renderAdvice(st.advice); // read once by the server at start: it never changes while the page is open
    S.order = st.order;
    const i = S.queue.findIndex((r) => !r.label);
    S.cursor = i >= 0 ? i : 0;
  }
  renderProblems();
}

async function poll() {
  if (S.stopped) return;
  try {
    const st = await api(`/api/state?order=${S.order}`);
    const before = S.queue.length;
    mergeState(st, false);
    if (S.mode === "grid") { if (S.queue.length !== before) renderGrid(); else renderSide(); }
    else if (S.queue.length !== before && before === 0) showCurrent();
    else { renderBadge(); renderSide(); renderStrip(); renderRoi(); }
    document.body.classList.remove("offline");
  } catch (e) {
    document.body.classList.add("offline");
  }
  setTimeout(poll, POLL_MS);
}

async function start() {
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", () => { if (S.mode !== "grid") { fitFrame(); renderStrip(); } });
  $("strip").addEventListener("click", (ev) => {
    const rect = ev.target.getBoundingClientRect();
    goTo(Math.floor(((ev.clientX - rect.left) / rect.width) * S.queue.length));
  });
  setupRoiDrag();
  try {
    mergeState(await api("/api/state"), true);
  } catch (e) {
    toast(`cannot load the dataset: ${e.message}`);
    return;
  }
  renderKeys();
  showCurrent();
  document.body.classList.add("ready");
  setTimeout(poll, POLL_MS);
}

start();
