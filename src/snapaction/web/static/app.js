// SnapAction page: choose, drop or record a clip; show every class's probability.
// Plain JavaScript, no framework and nothing fetched from anywhere but this server.
"use strict";

const PALETTE = ["#e15759", "#59a14f", "#4e79a7", "#f28e2b", "#b07aa1",
                 "#edc948", "#76b7b2", "#ff9da7", "#9c755f", "#bab0ac"];
const MB = 1024 * 1024;

const $ = (id) => document.getElementById(id);
const el = {
  runInfo: $("run-info"), limits: $("limits"), dropZone: $("drop-zone"),
  choose: $("choose-button"), file: $("file-input"), record: $("record-button"),
  seconds: $("record-seconds"), status: $("status"), error: $("error"),
  result: $("result"), clip: $("clip"), topLabel: $("top-label"), topProbability: $("top-probability"),
  timing: $("timing"), bars: $("bars"), timelineSection: $("timeline-section"),
  timeline: $("timeline"), timelineEnd: $("timeline-end"), legend: $("legend"),
  skeleton: $("skeleton"), unsure: $("unsure"),
  masked: $("masked"), maskedFigure: $("masked-figure"),
};

const state = { info: null, busy: false, clipUrl: null, segments: [], skeleton: null };

function percent(p) { return (100 * p).toFixed(1) + "%"; }
function secs(s) { return s < 10 ? s.toFixed(2) + " s" : s.toFixed(1) + " s"; }

function colourOf(name) {
  const classes = state.info ? state.info.classes : [];
  const i = Math.max(0, classes.indexOf(name));
  return PALETTE[i % PALETTE.length];
}

// Dark or light text, whichever reads better on `hex`.
function textOn(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
  return 0.299 * r + 0.587 * g + 0.114 * b > 0.55 ? "#111" : "#fff";
}

function setStatus(text) { el.status.textContent = text; }

function showError(text) {
  el.error.textContent = text;
  el.error.hidden = !text;
}

function setBusy(busy) {
  state.busy = busy;
  for (const b of [el.choose, el.record, el.seconds]) b.disabled = busy;
  el.result.setAttribute("aria-busy", String(busy));
}

async function loadInfo() {
  try {
    const response = await fetch("/api/info");
    if (!response.ok) throw new Error("the server answered " + response.status);
    state.info = await response.json();
  } catch (err) {
    el.runInfo.textContent = "";
    showError("Cannot reach the SnapAction server (" + err.message + "). Is `snapaction serve` still running?");
    return;
  }
  const info = state.info;
  const parts = [
    "Run \u201c" + (info.run || "unnamed") + "\u201d",
    info.backbone,
    info.num_frames + " frames per window",
    info.classes.length + (info.classes.length === 1 ? " class: " : " classes: ") + info.classes.join(", "),
  ];
  const acc = info.metrics && info.metrics.val_accuracy;
  if (typeof acc === "number") parts.push("validation accuracy " + percent(acc));
  el.runInfo.textContent = parts.join(" · ");
  el.limits.textContent = "Videos up to " + info.max_upload_mb + " MB. The clip is only sent to this computer's server.";
  showFigures(info.figures || {});
}

function showClip(blob) {
  if (state.clipUrl) URL.revokeObjectURL(state.clipUrl);
  state.clipUrl = URL.createObjectURL(blob);
  el.clip.srcObject = null;
  el.clip.src = state.clipUrl;
  el.result.hidden = false;
}

async function classify(blob, name) {
  if (state.busy) return;
  showError("");
  if (blob.size === 0) {
    showError("That file is empty (0 bytes); choose a video file.");
    return;
  }
  if (state.info && blob.size > state.info.max_upload_mb * MB) {
    showError("That file is " + (blob.size / MB).toFixed(0) + " MB; this server accepts videos up to "
              + state.info.max_upload_mb + " MB.");
    return;
  }
  showClip(blob);
  clearResult();
  setBusy(true);
  setStatus("Classifying " + name + "…");
  const form = new FormData();
  form.append("video", blob, name);
  const started = performance.now();
  try {
    let response;
    try {
      response = await fetch("/api/predict", { method: "POST", body: form });
    } catch (err) {
      throw new Error("The server could not be reached (" + err.message + ").");
    }
    let body;
    try {
      body = await response.json();
    } catch (err) {
      throw new Error("The server answered " + response.status + " without an explanation.");
    }
    if (!response.ok) throw new Error(body.detail || ("The server answered " + response.status + "."));
    render(body, (performance.now() - started) / 1000);
    setStatus("Done: " + body.label + ".");
  } catch (err) {
    setStatus("");
    el.result.hidden = true;
    showError(err.message);
  } finally {
    setBusy(false);
  }
}

function clearResult() {
  el.topLabel.textContent = "";
  el.topProbability.textContent = "";
  el.unsure.hidden = true;
  el.timing.textContent = "";
  el.bars.replaceChildren();
  el.timeline.replaceChildren();
  el.legend.replaceChildren();
  el.timelineSection.hidden = true;
  state.segments = [];
  state.skeleton = null;
  el.skeleton.hidden = true;
  el.maskedFigure.hidden = true;
  el.masked.removeAttribute("src");
}

function render(result, roundTrip) {
  const ranked = Object.entries(result.probabilities).sort((a, b) => b[1] - a[1]);
  el.topLabel.textContent = result.label;
  el.topProbability.textContent = percent(result.probabilities[result.label]);
  el.unsure.hidden = !result.unsure;
  if (result.unsure) {
    const second = ranked.length > 1 ? ranked[1][0] : "";
    const close = "Unsure: " + result.label + " leads " + second + " by only "
      + (100 * result.margin).toFixed(1) + " points; the model cannot tell them apart in this clip.";
    el.unsure.textContent = result.margin < 0.15 ? close : "Unsure: " + result.why_unsure + ".";
  }
  const seen = result.seen;  // the pose model says what it could see, sure or not
  el.timing.textContent = "Model " + secs(result.seconds) + " · with upload " + secs(roundTrip)
    + " · " + result.views + (result.views === 1 ? " view" : " views")
    + " · video " + secs(result.duration)
    + (seen ? " · seen: a body in " + seen.body + " and hands in " + seen.hands + " of " + seen.frames + " frames"
      + (seen.body === 0 && seen.hands === 0 ? " (nobody in view)" : "") : "");
  el.bars.replaceChildren(...ranked.map(([name, p], i) => barRow(name, p, i === 0)));
  if (result.windows && result.windows.length > 1) renderTimeline(result.windows, result.duration);
  if (result.skeleton) {
    state.skeleton = result.skeleton;
    el.skeleton.hidden = false;
    drawSkeleton();
  }
  if (result.masked) {  // runs trained with --mask: the frames the model saw, background hidden
    el.masked.src = result.masked;
    el.maskedFigure.hidden = false;
  }
}

// The run's own pictures: its training curves, and the confusion matrix of its newest `snapaction eval`.
function showFigures(figures) {
  const captions = { curves: "Loss and validation accuracy per epoch",
                     confusion_matrix: "Confusion matrix of the newest evaluation" };
  const items = Object.entries(figures).map(([name, url]) => {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.src = url;
    img.alt = captions[name] || name;
    img.loading = "lazy";
    const caption = document.createElement("figcaption");
    caption.className = "muted small";
    caption.textContent = captions[name] || name;
    figure.append(img, caption);
    return figure;
  });
  $("figures").replaceChildren(...items);
  $("run-figures").hidden = items.length === 0;
}

// Pose runs: the skeleton of the grid frame nearest the playing time, over the picture
// (the video is letterboxed inside its element, so the drawing follows the picture's box).
function drawSkeleton() {
  const sk = state.skeleton;
  const canvas = el.skeleton;
  if (!sk || canvas.hidden) return;
  const w = el.clip.clientWidth, h = el.clip.clientHeight;
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w; canvas.height = h;
    canvas.style.width = w + "px"; canvas.style.height = h + "px";
  }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  const frames = sk.frames.filter((f) => f.present);
  if (!frames.length || !w || !h) return;
  const t = el.clip.currentTime || 0;
  const frame = frames.reduce((a, b) => (Math.abs(b.time - t) < Math.abs(a.time - t) ? b : a));
  const scale = Math.min(w / sk.width, h / sk.height);
  const left = (w - sk.width * scale) / 2, top = (h - sk.height * scale) / 2;
  const at = (p) => [left + p[0] * sk.width * scale, top + p[1] * sk.height * scale];
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top, sk.width * scale, sk.height * scale);  // joints guessed outside the picture stay outside
  ctx.clip();
  ctx.lineWidth = 3;
  ctx.strokeStyle = "rgba(89, 161, 79, 0.9)";
  for (const [a, b] of sk.connections) {
    const pa = frame.points[a], pb = frame.points[b];
    if (pa[2] < 0.5 || pb[2] < 0.5) continue;
    ctx.beginPath(); ctx.moveTo(...at(pa)); ctx.lineTo(...at(pb)); ctx.stroke();
  }
  ctx.fillStyle = "rgba(225, 87, 89, 0.95)";
  for (const p of frame.points) {
    if (p[2] < 0.5) continue;
    const [x, y] = at(p);
    ctx.beginPath(); ctx.arc(x, y, 3.5, 0, 2 * Math.PI); ctx.fill();
  }
  ctx.restore();
}

function barRow(name, p, top) {
  const row = document.createElement("li");
  row.className = "bar" + (top ? " top" : "");
  row.dataset.class = name;
  row.dataset.probability = String(p);
  const label = document.createElement("span");
  label.className = "bar-name";
  label.textContent = name;
  label.title = name;
  const track = document.createElement("span");
  track.className = "bar-track";
  track.setAttribute("aria-hidden", "true");
  const fill = document.createElement("span");
  fill.className = "bar-fill";
  fill.style.background = colourOf(name);
  fill.style.width = (100 * p).toFixed(2) + "%";
  track.append(fill);
  const value = document.createElement("span");
  value.className = "bar-value";
  value.textContent = percent(p);
  row.append(label, track, value);
  return row;
}

// Windows may overlap; each one is drawn from halfway after the previous
// window's centre to halfway before the next one's, so the strip tiles the video.
function renderTimeline(windows, duration) {
  const total = Math.max(duration, windows[windows.length - 1].end);
  const centres = windows.map((w) => (w.start + w.end) / 2);
  state.segments = windows.map((w, i) => {
    const from = i === 0 ? 0 : (centres[i - 1] + centres[i]) / 2;
    const to = i === windows.length - 1 ? total : (centres[i] + centres[i + 1]) / 2;
    const p = w.probabilities[w.label];
    const button = document.createElement("button");
    button.type = "button";
    button.className = "segment";
    button.dataset.label = w.label;
    const colour = colourOf(w.label);
    button.style.left = (100 * from / total) + "%";
    button.style.width = (100 * (to - from) / total) + "%";
    button.style.background = colour;
    button.style.color = textOn(colour);
    const what = w.start.toFixed(1) + "–" + w.end.toFixed(1) + " s: " + w.label + " " + percent(p);
    button.title = what;
    button.setAttribute("aria-label", what);
    button.addEventListener("click", () => {
      el.clip.currentTime = w.start;
      el.clip.play().catch(() => {});
    });
    el.timeline.append(button);
    return { from, to, button, label: w.label, share: (to - from) / total };
  });
  el.timelineSection.hidden = false;
  labelSegments();
  el.timelineEnd.textContent = total.toFixed(1) + " s";
  const shown = [...new Set(windows.map((w) => w.label))];
  el.legend.replaceChildren(...shown.map((name) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colourOf(name);
    item.append(swatch, document.createTextNode(name));
    return item;
  }));
}

// Write a class name inside a segment only where it fits (the colour and the
// tooltip still tell the others); redone when the window is resized.
function labelSegments() {
  const width = el.timeline.clientWidth;
  for (const s of state.segments) {
    s.button.textContent = s.share * width >= 8 * s.label.length + 12 ? s.label : "";
  }
}

function markCurrentWindow() {
  const t = el.clip.currentTime;
  for (const s of state.segments) s.button.classList.toggle("current", t >= s.from && t < s.to);
}

async function recordWebcam() {
  if (state.busy) return;
  showError("");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) {
    showError("This page cannot use the webcam here: open it as http://localhost or http://127.0.0.1 on the "
              + "computer running SnapAction (browsers allow cameras only there or over HTTPS), or choose a video file.");
    return;
  }
  const seconds = Math.min(30, Math.max(1, Math.round(Number(el.seconds.value) || 3)));
  el.seconds.value = seconds;
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (err) {
    showError("The webcam could not be opened (" + (err.message || err.name) + ").");
    return;
  }
  setBusy(true);
  clearResult();
  el.result.hidden = false;
  el.clip.removeAttribute("src");
  el.clip.srcObject = stream;
  el.clip.play().catch(() => {});
  const type = ["video/webm;codecs=vp9", "video/webm;codecs=vp8", "video/webm", "video/mp4"]
    .find((t) => MediaRecorder.isTypeSupported(t));
  const recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
  const chunks = [];
  recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
  const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
  recorder.start();
  for (let left = seconds; left > 0; left--) {
    setStatus("Recording… " + left + " s left");
    await new Promise((r) => setTimeout(r, 1000));
  }
  recorder.stop();
  await stopped;
  stream.getTracks().forEach((t) => t.stop());
  setBusy(false);
  const mime = recorder.mimeType || type || "video/webm";
  const blob = new Blob(chunks, { type: mime });
  await classify(blob, "webcam." + (mime.includes("mp4") ? "mp4" : "webm"));
}

function firstFile(list) { return list && list.length ? list[0] : null; }

el.choose.addEventListener("click", () => el.file.click());
el.file.addEventListener("change", () => {
  const file = firstFile(el.file.files);
  if (file) classify(file, file.name);
  el.file.value = "";
});
el.record.addEventListener("click", recordWebcam);
el.clip.addEventListener("timeupdate", markCurrentWindow);
window.addEventListener("resize", labelSegments);

for (const name of ["dragenter", "dragover"]) {
  el.dropZone.addEventListener(name, (e) => { e.preventDefault(); el.dropZone.classList.add("dragging"); });
}
el.dropZone.addEventListener("dragleave", () => el.dropZone.classList.remove("dragging"));
el.dropZone.addEventListener("drop", (e) => {
  e.preventDefault();
  el.dropZone.classList.remove("dragging");
  const file = firstFile(e.dataTransfer && e.dataTransfer.files);
  if (file) classify(file, file.name);
});
// A file dropped outside the zone would make the browser leave the page.
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", (e) => e.preventDefault());

loadInfo();

el.clip.addEventListener("timeupdate", drawSkeleton);
el.clip.addEventListener("seeked", drawSkeleton);
el.clip.addEventListener("loadedmetadata", drawSkeleton);
window.addEventListener("resize", drawSkeleton);
