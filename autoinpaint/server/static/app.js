// autoinpaint's page: plain JavaScript on the JSON API of docs/server.md (nothing else).
// Coordinates sent to the API are full-resolution pixels; the canvas shows the display copy.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  info: null,
  image: null,        // the /api/images response of the open photo
  base: null,         // HTMLImageElement: the display copy
  prompts: [],        // [{kind: "point"|"negative"|"box", value: [...]}] in full-resolution pixels
  overlay: null,      // canvas: the tinted alpha at display size
  maskSeq: 0,         // request counter: only the newest mask response is drawn
  maskBusy: false, maskAgain: false,
  job: null,          // the running job's id
  result: null,       // {job, image: HTMLImageElement, filename}
  showBefore: false,
  drag: null,         // {x0, y0, x1, y1, moved} in display pixels while the pointer is down
  detections: [],     // what the detector found for "texts" sent with a mask request (drawn dashed)
  proposals: [],      // the Find box's detections: [{phrase, score, box, keep}]; kept ones are boxes
  findSeq: 0,
  maskBox: null,      // the last mask's box (full-resolution pixels): the framing preview places it
};

window.autoinpaint = { state };   // for a test or the console to look at

// ------------------------------------------------------------------------------------------- api
async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) { init.body = JSON.stringify(body); init.headers["content-type"] = "application/json"; }
  const res = await fetch(path, init);
  const kind = res.headers.get("content-type") || "";
  const data = kind.includes("application/json") ? await res.json() : null;
  if (!res.ok) throw new Error((data && data.error) || `${res.status} ${res.statusText}`);
  return data;
}

function showError(message) {
  const el = $("error");
  el.textContent = message || "";
  el.hidden = !message;
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("could not load " + src));
    img.src = src;
  });
}

// ------------------------------------------------------------------------------------------- start
async function start() {
  try {
    state.info = await api("GET", "/api/info");
  } catch (err) { showError(err.message); return; }
  renderModels();
  const d = state.info.defaults || {};
  $("dilate").value = d.dilate ?? 8; $("feather").value = d.feather ?? 4;
  $("fast").checked = Boolean(d.fast);
  sliderLabels();
  fillSelect($("inpainter"), state.info.inpainters, state.info.inpainter);
  fillSelect($("model"), state.info.models, state.info.model);
  if (state.info.folder) {
    $("folder").hidden = false;
    $("folder-name").textContent = state.info.folder + "/";
    listFiles();
  }
}

function renderModels(segmenter) {
  const i = state.info;
  const seg = segmenter || i.segmenter || i.segmenter_spec;
  const segText = i.segmenter_classical ? "classical (OpenCV GrabCut)" : seg;
  const inp = i.inpainter_classical ? `${i.inpainter} (classical)` : i.inpainter;
  $("models").textContent = `Segmenter: ${segText} · Inpainter: ${inp} · Replace/Fill model: ${i.model}` +
    (i.detector ? ` · Words: ${i.detector}` : "");
  const hint = $("hint");
  if (i.segmenter_classical) {
    hint.hidden = false;
    hint.innerHTML = "Classical fallback. For Segment Anything masks run <code>autoinpaint models download vit_b</code>";
  }
}

function fillSelect(select, values, current) {
  select.innerHTML = "";
  for (const v of values || []) {
    const o = document.createElement("option");
    o.value = o.textContent = v;
    if (v === current) o.selected = true;
    select.appendChild(o);
  }
}

async function listFiles() {
  try {
    const data = await api("GET", "/api/files");
    const ul = $("files");
    ul.innerHTML = "";
    for (const f of data.files) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.textContent = f.path;
      b.title = `${f.path} (${(f.size / 1e6).toFixed(1)} MB)`;
      b.dataset.path = f.path;
      b.onclick = () => openImage({ path: f.path });
      li.appendChild(b);
      ul.appendChild(li);
    }
    if (data.truncated) ul.insertAdjacentHTML("beforeend", "<li class=help>(list cut short)</li>");
  } catch (err) { showError(err.message); }
}

// ------------------------------------------------------------------------------------------- open
async function openImage(source) {
  showError("");
  let body;
  if (source instanceof File) { body = new FormData(); body.append("file", source, source.name); }
  else body = source;
  $("empty").textContent = "Opening…";
  try {
    const image = await api("POST", "/api/images", body);
    const base = await loadImage(image.display.url);
    if (state.image) api("DELETE", `/api/images/${state.image.id}`).catch(() => {});
    Object.assign(state, { image, base, prompts: [], overlay: null, result: null, showBefore: false,
                           detections: [] });
    setProposals([], "");
    // a correction of one photo's shadow means nothing for the next photo's: back to the shadow as found
    $("shadow-grow").value = 0; $("shadow-strength").value = 100;
    sliderLabels();
    const canvas = $("canvas");
    canvas.width = base.naturalWidth; canvas.height = base.naturalHeight;
    $("empty").hidden = true;
    $("photo-info").textContent = `${image.name}: ${image.width}×${image.height} ${image.format}` +
      (image.bit_depth > 8 ? `, ${image.bit_depth}-bit` : "");
    for (const b of document.querySelectorAll("#files button")) b.classList.toggle("current", b.dataset.path === image.path);
    $("result").hidden = true;
    setMaskInfo(null);
    updateButtons();
    render();
    watchEmbedding(image.id);
  } catch (err) {
    $("empty").textContent = "Open a photo, then click the object you want gone.";
    showError(err.message);
  }
}

async function watchEmbedding(id) {
  const busy = $("busy");
  let info = state.image;
  while (state.image && state.image.id === id && info.embedding !== "ready") {
    busy.hidden = false;
    await new Promise((r) => setTimeout(r, 500));
    try { info = await api("GET", `/api/images/${id}`); } catch { break; }
  }
  if (!state.image || state.image.id === id) busy.hidden = true;
}

// ------------------------------------------------------------------------------------------- selection
function toFull(x, y) { const s = state.image.display.scale; return [x / s, y / s]; }
function toDisplay(x, y) { const s = state.image.display.scale; return [x * s, y * s]; }

function canvasPoint(ev) {
  const canvas = $("canvas");
  const r = canvas.getBoundingClientRect();
  const x = (ev.clientX - r.left) * canvas.width / r.width;
  const y = (ev.clientY - r.top) * canvas.height / r.height;
  return [Math.min(Math.max(x, 0), canvas.width - 0.01), Math.min(Math.max(y, 0), canvas.height - 0.01)];
}

function selectionBody() {
  const body = { points: [], negatives: [], boxes: [], rects: [] };
  const keys = { point: "points", negative: "negatives", box: "boxes", rect: "rects" };
  for (const p of state.prompts) body[keys[p.kind]].push(p.value.map((v) => Math.round(v * 10) / 10));
  for (const p of state.proposals) if (p.keep) body.boxes.push(p.box);
  body.dilate = Number($("dilate").value);
  body.feather = Number($("feather").value);
  if ($("shadow").checked) {   // the cast shadow too (sent only when asked for), corrected by hand where moved
    body.shadow = true;
    const grow = Number($("shadow-grow").value), strength = Number($("shadow-strength").value) / 100;
    if (grow !== 0) body.shadow_grow = grow;
    if (strength !== 1) body.shadow_strength = strength;
  }
  return body;
}

function hasSelection(body) {
  return body.points.length + body.boxes.length + body.rects.length > 0;
}

async function requestMask() {
  if (!state.image) return;
  const body = selectionBody();
  if (!hasSelection(body)) {
    state.maskSeq++;   // a response still on its way is for a selection that is gone
    state.overlay = null; setMaskInfo(null); render(); return;
  }
  if (state.maskBusy) { state.maskAgain = true; return; }   // one request at a time, the newest wins
  state.maskBusy = true;
  const seq = ++state.maskSeq;
  const id = state.image.id;
  try {
    const resp = await api("POST", `/api/images/${id}/mask`, body);
    if (seq === state.maskSeq && state.image && state.image.id === id) {
      state.overlay = await tint(resp.alpha_png, resp.alpha_size, resp.shadow_png);
      state.detections = resp.detections || [];
      setView(false);
      setMaskInfo(resp);
      showError("");
      if (resp.segmenter) renderModels(resp.segmenter);
      render();
    }
  } catch (err) {
    showError(err.message);
  } finally {
    state.maskBusy = false;
    if (state.maskAgain) { state.maskAgain = false; requestMask(); }
  }
}

async function grey(b64, g, w, h) {
  // an 8-bit grey PNG (base64) → its values, w×h
  const img = await loadImage("data:image/png;base64," + b64);
  g.clearRect(0, 0, w, h);
  g.drawImage(img, 0, 0);
  const px = g.getImageData(0, 0, w, h).data;
  const a = new Uint8Array(w * h);
  for (let i = 0; i < a.length; i++) a[i] = px[4 * i];
  return a;
}

const SHADOW_TINT = [255, 150, 0];   // the cast shadow (Shadow ticked): amber, apart from the object's blue

async function tint(b64, size, shadowB64) {
  const c = document.createElement("canvas");
  c.width = size[0]; c.height = size[1];
  const g = c.getContext("2d");
  const w = c.width, h = c.height;
  const a = await grey(b64, g, w, h);
  const s = shadowB64 ? await grey(shadowB64, g, w, h) : null;
  const data = g.createImageData(w, h);
  const px = data.data;
  // a blue wash over what will change (the shadow's part amber), and a white line along its edge
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x, v = a[i], o = 4 * i;
      const edge = v > 0 && (x === 0 || y === 0 || x === w - 1 || y === h - 1 ||
                             !a[i - 1] || !a[i + 1] || !a[i - w] || !a[i + w]);
      if (edge) { px[o] = 255; px[o + 1] = 255; px[o + 2] = 255; px[o + 3] = 235; }
      else if (s && s[i] > 0 && s[i] * 2 >= v) {
        px[o] = SHADOW_TINT[0]; px[o + 1] = SHADOW_TINT[1]; px[o + 2] = SHADOW_TINT[2]; px[o + 3] = v * 0.5;
      } else { px[o] = 20; px[o + 1] = 110; px[o + 2] = 255; px[o + 3] = v * 0.5; }
    }
  }
  g.putImageData(data, 0, 0);
  return c;
}

function setMaskInfo(resp) {
  $("mask-pixels").textContent = resp ? String(resp.mask_pixels) : "0";
  state.maskBox = resp && resp.bbox ? resp.bbox : null;
  framePreview();
  let info = "";
  if (resp) {
    const t = resp.timings || {};
    const ms = Math.round(1000 * (t.total || 0));
    info = resp.score != null ? `score ${resp.score.toFixed(2)} · ${ms} ms` : `${ms} ms`;
  }
  $("mask-info").textContent = info;
  $("shadow-info").textContent = resp && resp.shadow_pixels != null
    ? `· shadow ${resp.shadow_pixels} px, ${Math.round(100 * resp.shadow_darkening)}% darker` : "";
  const notice = $("mask-notice");
  const q = resp && resp.quality;
  if (q && q.verdict && q.verdict !== "ok") {
    notice.hidden = false;
    notice.textContent = `${q.verdict}: ${(q.reasons || []).join("; ")}`;
  } else { notice.hidden = true; notice.textContent = ""; }
  updateButtons();
}

function changed() { updateButtons(); render(); requestMask(); }

function updateButtons() {
  $("find-button").disabled = !state.image;
  $("undo").disabled = !state.prompts.length;
  $("clear").disabled = !state.prompts.length && !state.proposals.length;
  const masked = Number($("mask-pixels").textContent) > 0;
  for (const id of ["remove", "replace", "fill", "background"]) $(id).disabled = !state.image || !masked;
}

// pointer: click = point, right/Alt click = negative, drag = box
function onPointerDown(ev) {
  if (!state.image) return;
  ev.preventDefault();
  const [x, y] = canvasPoint(ev);
  state.drag = { x0: x, y0: y, x1: x, y1: y, moved: false, negative: ev.button === 2 || ev.altKey };
  $("canvas").setPointerCapture(ev.pointerId);
}

function onPointerMove(ev) {
  const d = state.drag;
  if (!d) return;
  [d.x1, d.y1] = canvasPoint(ev);
  const r = $("canvas").getBoundingClientRect();
  const px = $("canvas").width / r.width;   // display pixels per CSS pixel
  if (Math.hypot(d.x1 - d.x0, d.y1 - d.y0) > 6 * px) d.moved = true;
  if (d.moved) render();
}

function onPointerUp(ev) {
  const d = state.drag;
  if (!d) return;
  state.drag = null;
  if (d.moved && !d.negative) {
    const [a, b] = toFull(Math.min(d.x0, d.x1), Math.min(d.y0, d.y1));
    const [c, e] = toFull(Math.max(d.x0, d.x1), Math.max(d.y0, d.y1));
    const w = state.image.width, h = state.image.height;
    state.prompts.push({ kind: $("drag-mode").value === "rect" ? "rect" : "box",
                         value: [Math.max(a, 0), Math.max(b, 0), Math.min(c, w), Math.min(e, h)] });
  } else {
    state.prompts.push({ kind: d.negative ? "negative" : "point", value: toFull(d.x0, d.y0) });
  }
  changed();
}

// ------------------------------------------------------------------------------------------- find by words
// The detector proposes boxes for the words; each is kept (a box prompt, like a dragged one) or dropped.
async function findWords(ev) {
  ev.preventDefault();
  if (!state.image) return;
  const texts = $("find-text").value.split(/[,;]/).map((t) => t.trim()).filter(Boolean);
  if (!texts.length) { $("find-text").focus(); return; }
  showError("");
  const seq = ++state.findSeq, id = state.image.id;
  $("find-button").disabled = true;
  setProposals([], "Finding…");
  try {
    const resp = await api("POST", `/api/images/${id}/detect`, { texts });
    if (seq !== state.findSeq || !state.image || state.image.id !== id) return;
    setProposals(resp.detections.map((d) => Object.assign(d, { keep: true })), resp.note || "");
    changed();
  } catch (err) {
    if (seq === state.findSeq) { setProposals([], ""); showError(err.message); }
  } finally {
    if (seq === state.findSeq) $("find-button").disabled = !state.image;
  }
}

function setProposals(proposals, note) {
  state.proposals = proposals;
  const n = $("find-note");
  n.textContent = note; n.hidden = !note;
  const ul = $("proposals");
  ul.innerHTML = "";
  proposals.forEach((p, i) => {
    const li = document.createElement("li");
    li.dataset.testid = "proposal";
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = p.keep; box.dataset.index = String(i);
    box.onchange = () => { p.keep = box.checked; li.classList.toggle("dropped", !p.keep); changed(); };
    const name = document.createElement("span");
    name.textContent = `${i + 1}. ${p.phrase}`;
    const score = document.createElement("span");
    score.className = "score"; score.textContent = p.score.toFixed(2);
    label.append(box, name, score);
    li.appendChild(label);
    ul.appendChild(li);
  });
}

// ------------------------------------------------------------------------------------------- drawing
function render() {
  const canvas = $("canvas");
  if (!state.image || !state.base) return;
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  const after = state.result && !state.showBefore;
  if (after) {   // letterboxed: a framed background result has its own size and shape
    const r = state.result.image, k = Math.min(canvas.width / r.naturalWidth, canvas.height / r.naturalHeight);
    const w = r.naturalWidth * k, h = r.naturalHeight * k;
    g.drawImage(r, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
    return;
  }
  g.drawImage(state.base, 0, 0, canvas.width, canvas.height);
  if (state.overlay) g.drawImage(state.overlay, 0, 0, canvas.width, canvas.height);
  const unit = Math.max(canvas.width, canvas.height) / 160;
  g.lineWidth = Math.max(1.5, unit / 2.5);
  g.font = `${Math.max(11, Math.round(unit * 1.6))}px system-ui, sans-serif`;
  state.proposals.forEach((p, i) => {
    const [x0, y0] = toDisplay(p.box[0], p.box[1]); const [x1, y1] = toDisplay(p.box[2], p.box[3]);
    g.setLineDash(p.keep ? [] : [unit / 2, unit / 2]);
    g.strokeStyle = p.keep ? "#ffb000" : "rgba(255,255,255,.7)"; g.strokeRect(x0, y0, x1 - x0, y1 - y0);
    g.setLineDash([]);
    const text = `${i + 1}. ${p.phrase} ${p.score.toFixed(2)}`;
    const tw = g.measureText(text).width + 6, th = Math.max(11, Math.round(unit * 1.6)) + 4;
    const ty = y0 >= th ? y0 - th : y0;
    g.fillStyle = p.keep ? "#ffb000" : "rgba(80,80,80,.8)"; g.fillRect(x0, ty, tw, th);
    g.fillStyle = p.keep ? "#000" : "#fff"; g.fillText(text, x0 + 3, ty + th - 5);
  });
  for (const det of state.detections) {
    const box = Array.isArray(det) ? det : det && (det.box || det.bbox);
    if (!box || box.length !== 4) continue;
    const [x0, y0] = toDisplay(box[0], box[1]); const [x1, y1] = toDisplay(box[2], box[3]);
    g.setLineDash([unit, unit / 2]); g.strokeStyle = "#ffb000"; g.strokeRect(x0, y0, x1 - x0, y1 - y0);
    g.setLineDash([]);
  }
  for (const p of state.prompts) {
    if (p.kind === "box" || p.kind === "rect") {
      const [x0, y0] = toDisplay(p.value[0], p.value[1]); const [x1, y1] = toDisplay(p.value[2], p.value[3]);
      g.strokeStyle = p.kind === "box" ? "#00a3ff" : "#ff8c00"; g.strokeRect(x0, y0, x1 - x0, y1 - y0);
    } else {
      const [x, y] = toDisplay(p.value[0], p.value[1]);
      g.beginPath(); g.arc(x, y, Math.max(4, unit * 0.7), 0, 2 * Math.PI);
      g.fillStyle = p.kind === "point" ? "#1fbf3a" : "#e0242f"; g.fill();
      g.strokeStyle = "#fff"; g.stroke();
    }
  }
  const d = state.drag;
  if (d && d.moved && !d.negative) {
    g.setLineDash([unit / 2, unit / 3]); g.strokeStyle = "#00a3ff";
    g.strokeRect(Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.abs(d.x1 - d.x0), Math.abs(d.y1 - d.y0));
    g.setLineDash([]);
  }
}

function setView(after) {
  // after = the result; before = the photo with the mask and the clicks
  state.showBefore = !after;
  $("toggle").textContent = after ? "Show before" : "Show after";
}

function sliderLabels() {
  $("dilate-value").textContent = $("dilate").value;
  $("feather-value").textContent = $("feather").value;
  const grow = Number($("shadow-grow").value);
  $("shadow-grow-value").textContent = grow > 0 ? `+${grow}` : `${grow}`;
  $("shadow-strength-value").textContent = $("shadow-strength").value;
}

// ------------------------------------------------------------------------------------------- edit
function numberField(id) {
  const v = $(id).value.trim();
  return v === "" ? undefined : Number(v);
}

async function runEdit(action) {
  if (!state.image) return;
  showError("");
  const body = Object.assign(selectionBody(), { action });
  if (action === "remove") body.inpainter = $("inpainter").value;
  else {
    body.prompt = $("prompt").value.trim();
    body.model = $("model").value;
    body.fast = $("fast").checked;
    if (!body.prompt) { showError(`${action} needs a prompt: describe what to paint`); $("prompt").focus(); return; }
  }
  for (const key of ["steps", "guidance", "strength", "seed"]) {
    const v = numberField(key);
    if (v !== undefined) body[key] = v;
  }
  const neg = $("negative_prompt").value.trim();
  if (neg) body.negative_prompt = neg;
  try {
    const job = await api("POST", `/api/images/${state.image.id}/edit`, body);
    followJob(job.job, state.image.id);
  } catch (err) { showError(err.message); }
}

// ------------------------------------------------------------------------------------------- background
function backgroundFields() {
  const body = {};
  const kind = $("bg-kind").value;
  if (kind === "white") body.color = "white";
  else if (kind === "color") body.color = $("bg-color").value;
  else if (kind === "transparent") body.color = "transparent";
  else body.prompt = $("bg-prompt").value.trim();
  const canvas = $("bg-canvas").value;
  if (canvas) { body.canvas = canvas; body.margin = Number($("bg-margin").value); body.align = $("bg-align").value; }
  if ($("bg-shadow").checked) body.contact_shadow = "soft";
  return body;
}

function bgControls() {
  const kind = $("bg-kind").value;
  $("bg-color-label").hidden = kind !== "color";
  $("bg-prompt").hidden = kind !== "prompt";
  $("bg-margin-value").textContent = $("bg-margin").value;
  framePreview();
}

// the layout of autoinpaint/cutout/framing.py (plan_layout), drawn small: canvas, margins, object box
function framePreview() {
  const c = $("frame-preview"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  if (!state.image) return;
  const choice = $("bg-canvas").value, margin = choice ? Number($("bg-margin").value) / 100 : 0;
  const box = state.maskBox;
  const bw = box ? box[2] - box[0] : state.image.width / 2, bh = box ? box[3] - box[1] : state.image.height / 2;
  let aspect = state.image.width / state.image.height;
  if (choice === "square") aspect = 1;
  else if (choice.includes("x")) { const [w, h] = choice.split("x").map(Number); aspect = w / h; }
  const fw = aspect >= c.width / c.height ? c.width - 8 : (c.height - 8) * aspect;
  const fh = fw / aspect, fx = (c.width - fw) / 2, fy = (c.height - fh) / 2;
  const kind = $("bg-kind").value;
  g.fillStyle = kind === "color" ? $("bg-color").value : kind === "white" ? "#ffffff" : kind === "prompt" ? "#d8e4d0" : "rgba(0,0,0,0)";
  g.fillRect(fx, fy, fw, fh);
  g.strokeStyle = "#888"; g.lineWidth = 1; g.strokeRect(fx + .5, fy + .5, fw - 1, fh - 1);
  let ox, oy, ow, oh;
  if (choice) {
    const iw = fw * (1 - 2 * margin), ih = fh * (1 - 2 * margin);
    g.setLineDash([3, 3]); g.strokeRect(fx + fw * margin, fy + fh * margin, iw, ih); g.setLineDash([]);
    const k = Math.min(iw / bw, ih / bh);
    ow = bw * k; oh = bh * k; ox = fx + (fw - ow) / 2;
    oy = $("bg-align").value === "bottom" ? fy + fh - fh * margin - oh : fy + (fh - oh) / 2;
  } else {   // the photo's own frame: the object stays where it is
    const k = fw / state.image.width;
    ow = bw * k; oh = bh * k; ox = fx + (box ? box[0] : state.image.width / 4) * k; oy = fy + (box ? box[1] : state.image.height / 4) * k;
  }
  g.fillStyle = "rgba(200,16,46,.55)"; g.fillRect(ox, oy, ow, oh);
  if ($("bg-shadow").checked) {
    g.fillStyle = "rgba(0,0,0,.25)";
    g.beginPath(); g.ellipse(ox + ow / 2, oy + oh, ow * 0.45, Math.max(2, oh * 0.05), 0, 0, 2 * Math.PI); g.fill();
  }
}

async function runBackground() {
  if (!state.image) return;
  showError("");
  const body = Object.assign(selectionBody(), { action: "background" }, backgroundFields());
  if ($("bg-kind").value === "prompt") {
    body.model = $("model").value;
    if (!body.prompt) { showError("a generated background needs a prompt: describe the scene"); $("bg-prompt").focus(); return; }
    for (const key of ["steps", "guidance", "strength", "seed"]) {
      const v = numberField(key);
      if (v !== undefined) body[key] = v;
    }
  }
  try {
    const job = await api("POST", `/api/images/${state.image.id}/edit`, body);
    followJob(job.job, state.image.id);
  } catch (err) { showError(err.message); }
}

async function followJob(id, imageId) {
  state.job = id;
  $("outcome").hidden = false;   // below Edit and Background: both actions report here
  $("job").hidden = false;
  $("cancel").disabled = false;
  for (;;) {
    let job;
    try { job = await api("GET", `/api/jobs/${id}`); } catch (err) { showError(err.message); break; }
    $("progress").value = job.progress;
    const steps = job.steps ? ` step ${job.step}/${job.steps}` : "";
    const label = { queued: "Waiting for the worker…", running: `${job.stage || "working"}…${steps}` }[job.status];
    $("job-text").textContent = label || job.status;
    if (job.status === "done") { await showResult(id, imageId); break; }
    if (job.status === "failed") { showError(job.error); break; }
    if (job.status === "cancelled") break;
    await new Promise((r) => setTimeout(r, 300));
  }
  if (state.job === id) { state.job = null; $("cancel").disabled = true; }
}

async function showResult(jobId, imageId) {
  if (!state.image || state.image.id !== imageId) return;
  const image = await loadImage(`/api/jobs/${jobId}/display`);
  state.result = { job: jobId, image };
  $("result").hidden = false;
  setView(true);
  $("download").href = `/api/jobs/${jobId}/result`;
  $("save").hidden = !(state.info.folder && state.image.path);
  $("saved").textContent = "";
  $("job-text").textContent = "Done";
  render();
}

// ------------------------------------------------------------------------------------------- wiring
function wire() {
  const canvas = $("canvas");
  canvas.addEventListener("pointerdown", onPointerDown);
  canvas.addEventListener("pointermove", onPointerMove);
  canvas.addEventListener("pointerup", onPointerUp);
  canvas.addEventListener("contextmenu", (ev) => ev.preventDefault());
  $("file-input").addEventListener("change", (ev) => { const f = ev.target.files[0]; if (f) openImage(f); ev.target.value = ""; });
  $("undo").onclick = () => { state.prompts.pop(); changed(); };
  $("clear").onclick = () => { state.prompts = []; state.findSeq++; setProposals([], ""); changed(); };
  $("find").addEventListener("submit", findWords);
  let timer = null;
  for (const id of ["dilate", "feather", "shadow-grow", "shadow-strength"]) {
    $(id).addEventListener("input", () => {
      sliderLabels();
      clearTimeout(timer);
      timer = setTimeout(requestMask, 60);
    });
  }
  $("shadow").addEventListener("change", () => {
    $("shadow-adjust").hidden = !$("shadow").checked;
    requestMask();
  });
  $("remove").onclick = () => runEdit("remove");
  $("replace").onclick = () => runEdit("replace");
  $("fill").onclick = () => runEdit("fill");
  $("background").onclick = runBackground;
  for (const id of ["bg-kind", "bg-color", "bg-canvas", "bg-align", "bg-margin", "bg-shadow"]) {
    $(id).addEventListener("input", bgControls);
    $(id).addEventListener("change", bgControls);
  }
  bgControls();
  $("cancel").onclick = async () => {
    if (!state.job) return;
    $("cancel").disabled = true;
    try { await api("DELETE", `/api/jobs/${state.job}`); } catch (err) { showError(err.message); }
  };
  $("toggle").onclick = () => { setView(state.showBefore); render(); };
  $("save").onclick = async () => {
    try {
      const out = await api("POST", `/api/jobs/${state.result.job}/save`);
      $("saved").textContent = `Saved ${out.path}`;
      listFiles();
    } catch (err) { showError(err.message); }
  };
  document.addEventListener("keydown", (ev) => {
    if (ev.target.tagName === "INPUT" || ev.target.tagName === "TEXTAREA") return;
    if ((ev.ctrlKey || ev.metaKey) && ev.key === "z") { ev.preventDefault(); $("undo").click(); }
  });
  document.addEventListener("dragover", (ev) => { ev.preventDefault(); document.body.classList.add("drop"); });
  document.addEventListener("dragleave", (ev) => { if (!ev.relatedTarget) document.body.classList.remove("drop"); });
  document.addEventListener("drop", (ev) => {
    ev.preventDefault();
    document.body.classList.remove("drop");
    const f = ev.dataTransfer && ev.dataTransfer.files[0];
    if (f) openImage(f);
  });
}

wire();
start();
