// SnapAction studio: classes and clips, training with live progress, live predictions. No external code.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { project: null, stream: null, recording: false, events: null, lastEvent: -1, undo: null,
                live: null, classesShown: [] };

function showError(text) {
  $("error").textContent = text || "";
  $("error").hidden = !text;
}
function setStatus(text) { $("status").textContent = text || ""; }
function percent(p) { return (100 * p).toFixed(1) + "%"; }
function minutes(s) { return s < 10 ? s.toFixed(1) + " s" : s < 90 ? Math.round(s) + " s" : (s / 60).toFixed(1) + " min"; }
function colourOf(name) {
  const palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"];
  let h = 0;
  for (const c of name) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return palette[h % palette.length];
}
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  node.append(...children);
  return node;
}

async function api(method, url, body) {
  const options = { method, headers: {} };
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) { options.body = JSON.stringify(body); options.headers["Content-Type"] = "application/json"; }
  const response = await fetch(url, options);
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok) throw new Error((data && data.detail) || ("The server answered " + response.status + "."));
  return data;
}
async function guarded(work) {
  showError("");
  try { return await work(); } catch (err) { showError(err.message); return null; }
}

// --- the project ------------------------------------------------------------------

async function refresh() {
  const pose = $("model").value === "pose";  // the pose model: cards also say in how many clips it saw a person
  const project = await api("GET", "/api/project" + (pose ? "?model=pose" : ""));
  state.project = project;
  $("project-info").textContent = "Project " + project.root + " · clips in " + project.data;
  renderClasses(project.classes);
  renderModels(project.models);
  renderRuns(project.runs);
  return project;
}

function renderClasses(classes) {
  const box = $("classes");
  // Keep hovering videos alone when nothing changed in a class: rebuild only what differs.
  const key = JSON.stringify(classes);
  if (key === box.dataset.key) return;
  box.dataset.key = key;
  box.replaceChildren(...classes.map(classCard));
  if (!classes.length) box.append(el("p", { className: "muted", textContent: "No classes yet: add one above, e.g. the first action you want recognised." }));
}

function peopleText(people) {
  if (!people || !people.clips) return "";
  if (!people.looked_at) return " · pose model: not looked at yet (training finds the people)";
  return " · pose model: a person in " + people.person + " of " + people.looked_at + " looked at"
    + (people.nobody ? ", nobody in view in " + people.nobody : "")
    + (people.looked_at < people.clips ? " (" + (people.clips - people.looked_at) + " not yet)" : "");
}

function classCard(c) {
  const card = el("article", { className: "class-card" });
  card.dataset.class = c.name;
  const count = el("span", { className: "muted clip-count", textContent: c.usable + " usable of " + c.clips.length + " clip" + (c.clips.length === 1 ? "" : "s") + peopleText(c.people) });
  const title = el("h3", { textContent: c.name });
  const record = el("button", { type: "button", className: "primary record-button", textContent: "Record" });
  record.setAttribute("aria-label", "Record a clip of " + c.name);
  record.onclick = () => recordClip(c.name);
  const file = el("input", { type: "file", accept: "video/*", multiple: true, hidden: true });
  file.onchange = () => addFiles(c.name, file.files);
  const add = el("button", { type: "button", textContent: "Add files…" });
  add.setAttribute("aria-label", "Add video files to " + c.name);
  add.onclick = () => file.click();
  const rename = el("button", { type: "button", textContent: "Rename" });
  rename.setAttribute("aria-label", "Rename " + c.name);
  rename.onclick = () => renameClass(c.name);
  const del = el("button", { type: "button", textContent: "Delete" });
  del.setAttribute("aria-label", "Delete the class " + c.name);
  del.onclick = () => deleteClass(c.name);
  const actions = el("div", { className: "row" }, record, add, file, rename, del);
  const warnings = el("ul", { className: "warnings" }, ...c.warnings.map((w) => el("li", { textContent: w })));
  const thumbs = el("div", { className: "thumbs" }, ...c.clips.map((clip) => thumb(c.name, clip)));
  card.append(el("div", { className: "class-head" }, title, count), actions, warnings, thumbs);
  // Drop video files on a class to add them.
  card.addEventListener("dragover", (e) => { e.preventDefault(); });
  card.addEventListener("drop", (e) => { e.preventDefault(); addFiles(c.name, e.dataTransfer.files); });
  return card;
}

function thumb(className, clip) {
  const url = "/api/classes/" + encodeURIComponent(className) + "/clips/" + encodeURIComponent(clip.name);
  // The server's poster (the first frame) shows until the clip plays: a paused video shows only a frame the browser
  // chose to decode, and Chromium decodes none for videos outside the window (black thumbnails). preload "none":
  // no player is opened for a clip until it is hovered or focused.
  const video = el("video", { src: url, poster: url + "/poster?v=" + clip.size, muted: true, loop: true, preload: "none",
                              playsInline: true, tabIndex: 0, title: clip.name + (clip.problem ? " — " + clip.problem : "") });
  video.setAttribute("aria-label", "Clip " + clip.name + " of " + className + (clip.problem ? " (cannot be used: " + clip.problem + ")" : ""));
  const play = () => { video.play().catch(() => {}); };
  const pause = () => { video.pause(); };
  video.addEventListener("mouseenter", play);
  video.addEventListener("focus", play);
  video.addEventListener("mouseleave", pause);
  video.addEventListener("blur", pause);
  const del = el("button", { type: "button", className: "delete", textContent: "×" });
  del.setAttribute("aria-label", "Delete clip " + clip.name + " of " + className);
  del.onclick = () => deleteClip(className, clip.name);
  const box = el("div", { className: "thumb" + (clip.problem ? " bad" : "") }, video, del);
  box.dataset.clip = clip.name;
  return box;
}

function classUrl(name) { return "/api/classes/" + encodeURIComponent(name); }

$("new-class").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("new-class-name").value;
  const done = await guarded(() => api("POST", "/api/classes", { name }));
  if (done) { $("new-class-name").value = ""; setStatus("Class " + done.name + " added."); await refresh(); }
});

async function renameClass(name) {
  const next = window.prompt("New name for " + name, name);
  if (next === null || next === name) return;
  if (await guarded(() => api("PATCH", classUrl(name), { name: next }))) await refresh();
}

async function deleteClass(name) {
  const done = await guarded(() => api("DELETE", classUrl(name)));
  if (done) { offerUndo("Class " + name + " moved to the trash.", done.trash); await refresh(); }
}

async function deleteClip(name, clip) {
  const done = await guarded(() => api("DELETE", classUrl(name) + "/clips/" + encodeURIComponent(clip)));
  if (done) { offerUndo("Clip " + clip + " moved to the trash.", done.trash); await refresh(); }
}

function offerUndo(text, trashId) {
  state.undo = trashId;
  $("undo-text").textContent = text;
  $("undo-bar").hidden = false;
  $("undo-button").focus();
}
$("undo-button").onclick = async () => {
  if (!state.undo) return;
  const done = await guarded(() => api("POST", "/api/trash/" + encodeURIComponent(state.undo) + "/restore"));
  if (done) { state.undo = null; $("undo-bar").hidden = true; setStatus("Restored."); await refresh(); }
};

async function upload(name, blob, filename, source) {
  const form = new FormData();
  form.append("video", blob, filename);
  return api("POST", classUrl(name) + "/clips?source=" + source, form);
}

async function addFiles(name, files) {
  for (const file of Array.from(files || [])) {
    setStatus("Adding " + file.name + " to " + name + "…");
    const done = await guarded(() => upload(name, file, file.name, "file"));
    if (done) setStatus("Added " + done.clip + " (" + done.seconds + " s) to " + name + ".");
  }
  await refresh();
}

// --- recording ----------------------------------------------------------------------

async function camera() {
  if (state.stream && state.stream.active) return state.stream;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error("This page cannot use the webcam here: open it as http://127.0.0.1 on the computer running SnapAction "
                    + "(browsers allow cameras only there or over HTTPS), or add video files instead.");
  }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (err) {
    throw new Error("The webcam could not be opened (" + (err.message || err.name) + ").");
  }
  return state.stream;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function recordClip(name) {
  if (state.recording) return;
  showError("");
  const seconds = Math.min(30, Math.max(1, Math.round(Number($("record-seconds").value) || 2)));
  const countdown = Math.min(10, Math.max(0, Math.round(Number($("countdown-seconds").value) || 0)));
  let stream;
  try { stream = await camera(); } catch (err) { showError(err.message); return; }
  state.recording = true;
  document.querySelectorAll(".record-button").forEach((b) => { b.disabled = true; });
  const box = $("camera-box"), status = $("camera-status");
  box.hidden = false;
  $("camera").srcObject = stream;
  try {
    for (let left = countdown; left > 0; left--) { status.textContent = "Get ready: " + left; await sleep(1000); }
    const type = ["video/webm;codecs=vp8", "video/webm", "video/mp4"].find((t) => MediaRecorder.isTypeSupported(t));
    const recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    const chunks = [];
    recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
    const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
    recorder.start();
    for (let left = seconds; left > 0; left--) { status.textContent = "Recording " + name + ": " + left + " s"; await sleep(1000); }
    recorder.stop();
    await stopped;
    status.textContent = "Saving…";
    const mime = recorder.mimeType || type || "video/webm";
    const done = await guarded(() => upload(name, new Blob(chunks, { type: mime }), "webcam." + (mime.includes("mp4") ? "mp4" : "webm"), "webcam"));
    if (done) setStatus("Saved " + done.clip + " (" + done.seconds + " s) in " + name + ".");
    await refresh();
  } finally {
    status.textContent = "";
    box.hidden = true;
    state.recording = false;
    document.querySelectorAll(".record-button").forEach((b) => { b.disabled = false; });
  }
}

// --- training -----------------------------------------------------------------------

function renderModels(models) {
  const select = $("model");
  if (select.options.length) return;
  for (const m of models) {
    const option = el("option", { value: m.name, textContent: m.label + (m.available ? "" : " (not installed)"), disabled: !m.available });
    option.title = m.reason || "";
    option.dataset.epochs = String(m.epochs !== false);
    select.append(option);
  }
  const notes = models.filter((m) => !m.available).map((m) => m.label + ": " + m.reason);
  $("model-note").textContent = notes.join(" ");
  select.onchange = () => { showModelFields(); refresh(); };  // the class cards count what the chosen model sees
  showModelFields();
}
function showModelFields() {
  const option = $("model").selectedOptions[0];
  const folder = $("model").value === "folder";
  document.querySelectorAll(".folder-only").forEach((n) => { n.hidden = !folder; });
  // A pose model trains in one go (seconds once landmarks are cached): epochs and a time budget do not apply.
  const epochs = !option || option.dataset.epochs !== "false";
  $("epochs").disabled = $("max-minutes").disabled = !epochs;
  $("one-go-note").hidden = epochs;
}

$("train-button").onclick = async () => {
  const body = { model: $("model").value, epochs: Number($("epochs").value) || 30 };
  const budget = Number($("max-minutes").value);
  if (budget > 0 && !$("max-minutes").disabled) body.max_minutes = budget;
  if ($("run-name").value.trim()) body.name = $("run-name").value.trim();
  if (body.model === "folder") { body.backbone = $("backbone").value.trim(); body.finetune = $("finetune").value; }
  const started = await guarded(() => api("POST", "/api/train", body));
  if (started) follow(-1);
};
$("stop-button").onclick = () => guarded(() => api("POST", "/api/train/stop"));

function follow(after) {
  if (state.events) state.events.close();
  $("progress-box").hidden = false;
  $("run-figures").replaceChildren();
  $("train-skipped").replaceChildren();
  $("train-button").disabled = true;
  $("stop-button").disabled = false;
  const source = new EventSource("/api/train/events?after=" + after);
  state.events = source;
  const handle = (e) => onTrainEvent(JSON.parse(e.data));
  for (const kind of ["started", "phase", "step", "epoch", "done", "failed"]) source.addEventListener(kind, handle);
}

// The boxes under the progress bar: [key, label, value] each; what they hold depends on the kind of run.
function showNumbers(items) {
  $("train-figures").replaceChildren(...items.map(([key, label, value]) => {
    const box = el("div", {}, el("dt", { textContent: label }), el("dd", { textContent: value }));
    box.dataset.figure = key;
    return box;
  }));
}

function onTrainEvent(ev) {
  state.lastEvent = ev.id;
  const status = $("train-status");
  if (ev.event === "started") {
    state.trainer = ev.trainer;
    status.textContent = "Training " + ev.run + " (" + ev.backbone + ")…";
    if (ev.trainer === "pose") {  // no epochs: the bar moves without a value until the run is done
      $("train-progress").removeAttribute("value");
      $("stop-button").disabled = true;
      showNumbers([["classifier", "Classifier kept", "–"], ["accuracy", "Validation accuracy", "–"],
                   ["people", "Clips with a person", "–"], ["time", "Took", "–"]]);
    } else {
      $("train-progress").value = 0;
      showNumbers([["epoch", "Epoch", "–"], ["loss", "Training loss", "–"], ["accuracy", "Validation accuracy", "–"],
                   ["time", "Time left", "–"]]);
    }
  } else if (ev.event === "phase") {
    status.textContent = ev.text;
  } else if (ev.event === "step") {
    status.textContent = "Epoch " + ev.epoch + ": step " + ev.step + " of " + ev.steps;
  } else if (ev.event === "epoch") {
    $("train-progress").value = Math.min(1, ev.epoch / ev.planned);
    showNumbers([["epoch", "Epoch", ev.epoch + " / " + ev.planned], ["loss", "Training loss", Number(ev.train_loss).toFixed(3)],
                 ["accuracy", "Validation accuracy", percent(ev.val_accuracy)], ["time", "Time left", minutes(ev.eta_s)]]);
    status.textContent = "Epoch " + ev.epoch + " done.";
  } else if (ev.event === "done" || ev.event === "failed") {
    if (state.events) { state.events.close(); state.events = null; }
    $("train-button").disabled = false;
    $("stop-button").disabled = true;
    if (ev.event === "failed") { $("train-progress").value = 0; status.textContent = "Training failed."; showError(ev.detail); return; }
    $("train-progress").value = 1;
    let text = ev.pose ? poseDone(ev) : epochsDone(ev);
    if (ev.validation && ev.validation.clips) text += " The confusion matrix below is on its " + ev.validation.clips + " validation clips.";
    if (ev.validation && ev.validation.error) text += " No confusion matrix: " + ev.validation.error;
    status.textContent = text;
    showSkipped(ev.skipped || [], "Left out (could not be used):");  // on the page, not only in the terminal
    refresh().then(() => { showRunFigures(ev.run); $("live-run").value = ev.run; });
  }
}

// An epoch run keeps its best epoch: the boxes show that epoch's figures, not the last one's.
function epochsDone(ev) {
  const why = { asked: "stopped as asked", patience: "stopped early: no better epoch for a while",
                budget: "the time budget ended it", epochs: "all epochs ran" }[ev.stopped_by] || ev.stopped_by;
  const kept = ev.kept || {};
  const at = " at epoch " + ev.best_epoch;
  showNumbers([["epoch", "Kept epoch", ev.best_epoch + " of " + ev.epochs_run],
               ["loss", "Training loss" + at, kept.train_loss != null ? Number(kept.train_loss).toFixed(3) : "–"],
               ["accuracy", "Validation accuracy" + at, percent(ev.val_accuracy)], ["time", "Took", minutes(ev.seconds)]]);
  return "Done: " + ev.run + ", best validation accuracy " + percent(ev.val_accuracy) + at + " (" + ev.epochs_run
         + " epoch" + (ev.epochs_run === 1 ? "" : "s") + ", " + why + ", " + minutes(ev.seconds) + "); the run keeps that epoch.";
}

// A pose run compares its classifiers on the validation clips and keeps the better one.
function poseDone(ev) {
  const pose = ev.pose;
  const others = Object.entries(pose.val_accuracy || {}).filter(([k]) => k !== pose.chosen)
    .map(([k, v]) => k + " " + (v == null ? "–" : percent(v)));
  const accuracy = pose.val_clips ? percent(ev.val_accuracy) : "no validation clips";
  showNumbers([["classifier", "Classifier kept" + (others.length ? ", over " + others.join(", ") : ""), pose.chosen],
               ["accuracy", "Validation accuracy", accuracy],
               ["people", "Clips with a person", pose.clips_with_person + " of " + pose.clips],
               ["time", "Took", minutes(ev.seconds)]]);
  let text = "Done: " + ev.run + ", the pose model: the " + pose.chosen + " classifier is kept, validation accuracy "
             + accuracy + (others.length ? " (" + others.join(", ") + ")" : "") + ", on " + pose.train_clips + " training and "
             + pose.val_clips + " validation clips with a person (" + minutes(ev.seconds) + ").";
  if (pose.note) text += " " + pose.note.charAt(0).toUpperCase() + pose.note.slice(1) + ".";
  return text;
}

function showSkipped(skipped, heading) {
  const box = $("train-skipped");
  box.replaceChildren();
  if (!skipped.length) return;
  const short = (path) => path.split(/[\\/]/).slice(-2).join("/");  // class/clip
  box.append(heading, el("ul", {}, ...skipped.map((s) => el("li", { textContent: short(s.path) + ": " + s.reason }))));
}

function showRunFigures(name) {
  const run = (state.project.runs || []).find((r) => r.name === name);
  const box = $("run-figures");
  box.replaceChildren();
  if (!run) return;
  const titles = { curves: run.trainer === "pose" ? "Validation accuracy of the pose classifiers compared" : "Training and validation, per epoch",
                   confusion_matrix: "Confusion matrix (validation clips)" };
  for (const [figure, url] of Object.entries(run.figures)) {  // at their own size: a picture scaled up is blurred
    const item = el("figure", {}, el("img", { src: url + "?t=" + Date.now(), alt: titles[figure] || figure }),
                    el("figcaption", { className: "muted small", textContent: titles[figure] || figure }));
    item.dataset.figure = figure;
    box.append(item);
  }
}

// --- live mode ----------------------------------------------------------------------

function renderRuns(runs) {
  const select = $("live-run");
  const chosen = select.value;
  select.replaceChildren(...runs.map((r) => el("option", { value: r.name,
    textContent: r.name + " (" + r.backbone + (r.val_accuracy != null ? ", " + percent(r.val_accuracy) + " on validation" : "") + ")" })));
  if (runs.some((r) => r.name === chosen)) select.value = chosen;
  $("live-button").disabled = !runs.length && !state.live;
  if (!state.live) $("live-note").textContent = runs.length ? "Choose a run and press Start live." : "Train a run first (or start the studio with --run RUN).";
}

$("live-button").onclick = () => (state.live ? stopLive() : startLive());

async function startLive() {
  showError("");
  const run = $("live-run").value;
  if (!run) return;
  let stream;
  try { stream = await camera(); } catch (err) { showError(err.message); return; }
  const video = $("live-camera");
  video.srcObject = stream;
  await video.play().catch(() => {});
  const proto = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(proto + location.host + "/api/live/" + encodeURIComponent(run));
  ws.binaryType = "arraybuffer";
  const live = { ws, timer: null, latencies: [], stamps: [], canvas: document.createElement("canvas") };
  state.live = live;
  $("live-button").textContent = "Stop live";
  $("live-note").textContent = "Connecting…";
  ws.onmessage = (e) => onLiveMessage(live, JSON.parse(e.data));
  ws.onclose = () => { if (state.live === live) stopLive(); };
}

function onLiveMessage(live, msg) {
  if (msg.type === "error") { showError(msg.detail); return; }
  if (msg.type === "ready") {
    live.settings = msg;
    $("live-bars").classList.remove("stopped");
    $("live-note").textContent = "Watching the last " + msg.window_seconds.toFixed(1) + " s (" + msg.fps + " frames/s sent).";
    $("live-bars").replaceChildren(...msg.classes.map((c) => liveBar(c)));
    live.timer = setInterval(() => sendFrame(live), 1000 / msg.fps);
    return;
  }
  if (msg.type !== "prediction") return;
  const now = performance.now();
  live.latencies.push(now - msg.frame_time);
  live.stamps.push(now);
  if (live.latencies.length > 30) { live.latencies.shift(); live.stamps.shift(); }
  if (msg.label === null) { $("live-top").textContent = "–"; $("live-note").textContent = msg.detail; return; }
  $("live-top").textContent = msg.label + (msg.unsure ? " (unsure)" : "")
    + (msg.seen ? " · body in " + msg.seen.body + ", hands in " + msg.seen.hands + " of " + msg.seen.frames + " frames" : "");
  for (const row of $("live-bars").children) {
    const p = msg.probabilities[row.dataset.class] || 0;
    row.dataset.probability = String(p);
    row.classList.toggle("top", row.dataset.class === msg.label);
    row.querySelector(".bar-fill").style.width = (100 * p).toFixed(2) + "%";
    row.querySelector(".bar-value").textContent = percent(p);
  }
  const sorted = [...live.latencies].sort((a, b) => a - b);
  const span = (live.stamps[live.stamps.length - 1] - live.stamps[0]) / 1000;
  const rate = span > 0 ? (live.stamps.length - 1) / span : 0;
  $("live-timing").textContent = "latency " + Math.round(sorted[Math.floor(sorted.length / 2)]) + " ms (frame to bars) · "
    + rate.toFixed(1) + " predictions/s · model " + msg.model_ms + " ms";
}

function liveBar(name) {
  const row = el("li", { className: "bar" });
  row.dataset.class = name;
  const fill = el("span", { className: "bar-fill" });
  fill.style.background = colourOf(name);
  const track = el("span", { className: "bar-track" }, fill);
  track.setAttribute("aria-hidden", "true");
  row.append(el("span", { className: "bar-name", textContent: name, title: name }), track, el("span", { className: "bar-value", textContent: "–" }));
  return row;
}

function sendFrame(live) {
  const video = $("live-camera");
  if (live.ws.readyState !== WebSocket.OPEN || !video.videoWidth || live.ws.bufferedAmount > 256 * 1024) return;
  const width = Math.min(live.settings.width, video.videoWidth);
  const canvas = live.canvas;
  canvas.width = width;
  canvas.height = Math.round(width * video.videoHeight / video.videoWidth);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  const taken = performance.now();
  canvas.toBlob(async (blob) => {
    if (!blob || live.ws.readyState !== WebSocket.OPEN) return;
    const jpeg = new Uint8Array(await blob.arrayBuffer());
    const message = new Uint8Array(8 + jpeg.length);
    new DataView(message.buffer).setFloat64(0, taken, true);
    message.set(jpeg, 8);
    live.ws.send(message);
  }, "image/jpeg", 0.8);
}

function stopLive() {
  const live = state.live;
  state.live = null;
  if (live) { clearInterval(live.timer); if (live.ws.readyState <= 1) live.ws.close(); }
  $("live-button").textContent = "Start live";
  $("live-note").textContent = "Stopped: nothing is sent or watched. The bars show the last prediction; press Start live to watch again.";
  $("live-timing").textContent = "";
  $("live-bars").classList.add("stopped");
}

refresh().then((project) => {
  if (project.training && !project.training.finished) follow(-1);  // a reopened tab follows the run in progress
}).catch((err) => showError(err.message));
