// The ringstore console's only script (served from the gateway; the CSP admits no other).
// It confirms deletions, refreshes the cluster page, signs out an idle tab, and uploads files
// straight to the S3 door's code with presigned URLs the console hands out.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

async function post(path, body) {
  const resp = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: JSON.stringify(body),
  });
  if (resp.status === 401) { window.location = "/signin?ended=1"; throw new Error("signed out"); }
  const data = await resp.json();
  if (!resp.ok) throw new Error(`${data.error}: ${data.message}`);
  return data;
}

// PUT one blob to a presigned URL; onSent(bytes) as it goes; resolves with the ETag.
function put(url, blob, contentType, onSent) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    if (contentType) xhr.setRequestHeader("Content-Type", contentType);
    xhr.upload.onprogress = (e) => onSent(e.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.getResponseHeader("ETag") || "");
      else reject(new Error(`the S3 door answered ${xhr.status}: ${xhr.responseText.slice(0, 300)}`));
    };
    xhr.onerror = () => reject(new Error("the upload's connection failed"));
    xhr.send(blob);
  });
}

async function uploadOne(bucket, key, file, row) {
  const bar = row.querySelector("progress");
  const note = row.querySelector(".note");
  const show = (sent) => { bar.value = file.size ? sent / file.size : 1; };
  const type = file.type || "application/octet-stream";
  const plan = await post("/uploads/start", { bucket, key, size: file.size, content_type: type });
  if (plan.mode === "single") {
    await put(plan.url, file, type, show);
  } else {
    const parts = [];
    let done = 0;
    try {
      for (let i = 0; i < plan.urls.length; i++) {
        const start = i * plan.part_size;
        const piece = file.slice(start, start + plan.part_size);
        const etag = await put(plan.urls[i], piece, null, (sent) => show(done + sent));
        done += piece.size;
        parts.push([i + 1, etag]);
      }
      await post("/uploads/complete", { bucket, key, upload_id: plan.upload_id, parts });
    } catch (err) {
      await post("/uploads/abort", { bucket, key, upload_id: plan.upload_id }).catch(() => {});
      throw err;
    }
  }
  show(file.size);
  note.textContent = "done";
  row.classList.add("done");
}

async function uploadAll(section, files) {
  const { bucket, prefix } = section.dataset;
  const list = section.querySelector("#progress");
  const jobs = [];
  for (const { file, path } of files) {
    const key = prefix + path;
    const row = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = key;  // text, never HTML
    const bar = document.createElement("progress");
    bar.max = 1; bar.value = 0;
    const note = document.createElement("span");
    note.className = "note";
    row.append(name, " ", bar, " ", note);
    list.append(row);
    jobs.push(uploadOne(bucket, key, file, row).catch((err) => {
      note.textContent = `failed: ${err.message}`;
      row.classList.add("failed");
      throw err;
    }));
  }
  const results = await Promise.allSettled(jobs);
  if (results.every((r) => r.status === "fulfilled")) window.location.reload();
}

// Files of a drop, folders walked (webkitGetAsEntry), each with its path under the drop.
async function droppedFiles(items) {
  const out = [];
  const walk = async (entry, path) => {
    if (entry.isFile) {
      out.push({ file: await new Promise((ok, no) => entry.file(ok, no)), path: path + entry.name });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((ok, no) => reader.readEntries(ok, no));
        if (!batch.length) break;
        for (const child of batch) await walk(child, `${path}${entry.name}/`);
      }
    }
  };
  const entries = [...items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
  for (const entry of entries) await walk(entry, "");
  return out;
}

function setUpUpload() {
  const section = document.getElementById("upload");
  if (!section) return;
  const pick = (input) => input && input.addEventListener("change", () => {
    const files = [...input.files].map((f) => ({ file: f, path: f.webkitRelativePath || f.name }));
    uploadAll(section, files);
  });
  pick(document.getElementById("files"));
  pick(document.getElementById("folder"));
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    uploadAll(section, await droppedFiles(e.dataTransfer.items));
  });
}

function setUpConfirm() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (e) => { if (!window.confirm(form.dataset.confirm)) e.preventDefault(); });
  }
}

function setUpRefresh() {
  const live = document.getElementById("live");
  if (!live) return;
  setInterval(async () => {
    const resp = await fetch(live.dataset.refresh, { credentials: "same-origin" });
    if (resp.status === 401) { window.location = "/signin?ended=1"; return; }
    if (resp.ok) live.innerHTML = await resp.text();  // escaped by the server's templates
  }, 3000);
}

function setUpIdleSignOut() {
  const idle = Number(document.querySelector('meta[name="idle-ms"]')?.content || 0);
  if (idle > 0) setTimeout(() => { window.location = "/signin?ended=1"; }, idle + 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  setUpConfirm();
  setUpUpload();
  setUpRefresh();
  setUpIdleSignOut();
});
