// The print-files page (files_api/web.py): uploads with a progress bar per file, details rows,
// delete, and live rows. No framework and no build step: the server renders every row
// (escaped by Jinja) and this script polls /ui/files for the table, replacing only rows whose
// data-version changed (parsed with DOMParser). Messages are set with textContent only.
"use strict";

(() => {
  const FAST_MS = 2000;        // while a row is pending or an upload just finished
  const SLOW_MS = 15000;       // otherwise (other people's uploads still show up)
  const FAST_AFTER_UPLOAD_MS = 120000;

  const section = document.getElementById("files");
  const holder = document.getElementById("files-table");
  const live = document.getElementById("live-status");
  const form = document.getElementById("upload-form");
  const input = document.getElementById("file-input");
  const dropzone = document.getElementById("dropzone");
  const uploads = document.getElementById("upload-list");
  if (!section || !holder || !form || !input || !dropzone || !uploads) return;

  document.documentElement.classList.add("js");
  let fastUntil = 0;
  let timer = 0;
  let polling = false;

  // -- details rows and delete ----------------------------------------------------------

  function detailsOf(row) {
    return document.getElementById(row.querySelector("button.open").getAttribute("aria-controls"));
  }

  function setOpen(row, open) {
    row.querySelector("button.open").setAttribute("aria-expanded", String(open));
    detailsOf(row).hidden = !open;
    row.classList.toggle("expanded", open);
  }

  holder.addEventListener("click", (event) => {
    const target = event.target;
    const del = target.closest("button.delete");
    if (del) {
      removeFile(del);
      return;
    }
    if (target.closest("a, tr.details")) return;
    const row = target.closest("tr.file");
    if (!row) return;
    setOpen(row, row.querySelector("button.open").getAttribute("aria-expanded") !== "true");
  });

  async function removeFile(button) {
    const name = button.dataset.name;
    const message = button.parentElement.querySelector(".action-message");
    if (!window.confirm(`Delete ${name}? The stored file and its metadata are removed.`)) return;
    button.disabled = true;
    message.textContent = "";
    try {
      const resp = await fetch(button.dataset.url, { method: "DELETE", credentials: "same-origin" });
      if (resp.status === 204 || resp.status === 404) {
        const details = button.closest("tr.details");
        const row = document.getElementById(`file-${details.dataset.for}`);
        details.remove();
        if (row) row.remove();
        announce(`Deleted ${name}.`);
        refresh();
        return;
      }
      message.textContent = await problemText(resp);
    } catch (err) {
      message.textContent = `Not deleted: ${err.message || err}`;
    }
    button.disabled = false;
  }

  // -- live rows ----------------------------------------------------------------------------

  function announce(text) {
    if (live) live.textContent = text;
  }

  function statusesNow() {
    const map = new Map();
    for (const row of holder.querySelectorAll("tr.file")) map.set(row.dataset.id, row.dataset.status);
    return map;
  }

  function merge(fresh) {
    const oldBody = holder.querySelector("tbody");
    const newBody = fresh.querySelector("tbody");
    const before = statusesNow();
    if (!oldBody || !newBody) {
      // The table appeared or went away (first upload, last delete): take the new one whole.
      holder.replaceChildren(...Array.from(fresh.childNodes, (n) => document.adoptNode(n)));
    } else {
      const seen = new Set();
      let cursor = oldBody.firstElementChild;
      for (const row of Array.from(newBody.querySelectorAll("tr.file"))) {
        const id = row.dataset.id;
        seen.add(id);
        const old = document.getElementById(`file-${id}`);
        let first;
        let second;
        if (old && old.dataset.version === row.dataset.version) {
          first = old;
          second = detailsOf(old);
        } else {
          const newDetails = row.nextElementSibling;
          first = document.adoptNode(row);
          second = document.adoptNode(newDetails);
          if (old) {
            const oldDetails = detailsOf(old);
            const wasOpen = old.classList.contains("expanded");
            const hadFocus = old.contains(document.activeElement) || oldDetails.contains(document.activeElement);
            oldDetails.replaceWith(second);
            old.replaceWith(first);
            setOpen(first, wasOpen);
            if (hadFocus) first.querySelector("button.open").focus();
            if (cursor === old) cursor = first;
          }
        }
        if (first === cursor) {
          cursor = second.nextElementSibling;
        } else {
          oldBody.insertBefore(first, cursor);
          oldBody.insertBefore(second, cursor);
        }
      }
      for (const row of Array.from(oldBody.querySelectorAll("tr.file"))) {
        if (!seen.has(row.dataset.id)) {
          detailsOf(row).remove();
          row.remove();
        }
      }
      const pager = fresh.querySelector(".pager");
      const oldPager = holder.querySelector(".pager");
      if (pager && oldPager) oldPager.replaceWith(document.adoptNode(pager));
    }
    const done = [];
    for (const row of holder.querySelectorAll("tr.file")) {
      const was = before.get(row.dataset.id);
      if (was === "pending" && row.dataset.status !== "pending") {
        done.push(`${row.querySelector("button.open").textContent}: ${row.dataset.status}`);
      }
    }
    if (done.length) announce(done.join("; "));
  }

  async function refresh() {
    if (polling) return;
    polling = true;
    try {
      const resp = await fetch(section.dataset.pollUrl, {
        credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" },
      });
      if (!resp.ok) {
        announce(`Live updates paused: ${await problemText(resp)}`);
        return;
      }
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      merge(doc.body);
    } catch (err) {
      announce(`Live updates paused: ${err.message || err}`);
    } finally {
      polling = false;
      schedule();
    }
  }

  function schedule() {
    window.clearTimeout(timer);
    if (document.hidden) return;
    const pending = holder.querySelector('tr.file[data-status="pending"]') !== null;
    timer = window.setTimeout(refresh, pending || Date.now() < fastUntil ? FAST_MS : SLOW_MS);
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) window.clearTimeout(timer);
    else refresh();
  });

  // -- uploads --------------------------------------------------------------------------------

  const queue = [];
  let sending = false;

  async function problemText(resp) {
    let body = null;
    try {
      body = await resp.json();
    } catch (_) {
      // not JSON (a proxy's page): fall back to the status line
    }
    return describe(resp.status, body);
  }

  function describe(status, body) {
    if (body && typeof body === "object" && (body.detail || body.title)) return String(body.detail || body.title);
    return `the server answered ${status}`;
  }

  function addItem(file) {
    const li = document.createElement("li");
    li.className = "upload-item";
    const name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = file.name;
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", `Upload of ${file.name}`);
    const state = document.createElement("span");
    state.className = "upload-state";
    state.textContent = "waiting";
    li.append(name, bar, state);
    uploads.prepend(li);
    return { li, bar, state };
  }

  function enqueue(files) {
    for (const file of files) queue.push({ file, ui: addItem(file) });
    pump();
  }

  async function pump() {
    if (sending) return;
    sending = true;
    // One at a time: the server takes a few uploads per process at once (MAX_CONCURRENT_UPLOADS).
    while (queue.length) await send(queue.shift());
    sending = false;
  }

  function send({ file, ui }) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json, application/problem+json");
      ui.state.textContent = "0%";
      xhr.upload.addEventListener("progress", (event) => {
        if (!event.lengthComputable) return;
        const pct = Math.floor((100 * event.loaded) / event.total);
        ui.bar.value = pct;
        ui.state.textContent = `${pct}%`;
      });
      xhr.addEventListener("load", () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch (_) {
          body = null;
        }
        if (xhr.status === 201) {
          ui.bar.value = 100;
          ui.li.classList.add("ok");
          ui.state.textContent = "stored";
          fastUntil = Date.now() + FAST_AFTER_UPLOAD_MS;
          refresh();
        } else {
          fail(ui, describe(xhr.status, body));
        }
        resolve();
      });
      xhr.addEventListener("error", () => {
        fail(ui, "the upload did not reach the server (network error or connection closed)");
        resolve();
      });
      const data = new FormData();
      data.append("file", file, file.name);
      xhr.send(data);
    });
  }

  function fail(ui, text) {
    ui.li.classList.add("error");
    ui.bar.hidden = true;
    ui.state.textContent = "refused";
    const message = document.createElement("span");
    message.className = "upload-message";
    message.setAttribute("role", "alert");
    message.textContent = text;
    ui.li.append(message);
  }

  input.addEventListener("change", () => {
    enqueue(Array.from(input.files));
    input.value = "";
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    enqueue(Array.from(input.files));
    input.value = "";
  });

  const hasFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files");
  for (const type of ["dragenter", "dragover"]) {
    dropzone.addEventListener(type, (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      dropzone.classList.add("over");
    });
  }
  dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropzone.classList.remove("over");
    enqueue(Array.from(event.dataTransfer.files));
  });
  // A file dropped beside the zone must not make the browser navigate away to it.
  window.addEventListener("dragover", (event) => { if (hasFiles(event)) event.preventDefault(); });
  window.addEventListener("drop", (event) => { if (hasFiles(event)) event.preventDefault(); });

  schedule();
})();
