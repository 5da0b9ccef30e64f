/* Live conversation page. Vanilla JS, no libraries.
 *
 * The page works without this script: history is rendered by the server and
 * the form posts over HTTP. With it:
 * - a WebSocket to /ws/conversations/<id>/ sends "resume" with the last seq on
 *   the page and renders what arrives (messages, acks, typing, read receipts);
 * - the form sends over the socket when it is open, and over HTTP (fetch, JSON)
 *   when it is not or when a file is attached; a message that was sent on a
 *   socket that dropped before its ack is posted over HTTP with the same
 *   client_id, so it is saved once;
 * - a dropped socket reconnects with jittered exponential backoff (cap 30 s)
 *   while the page says "Live updates paused — reconnecting…" and catches up
 *   over HTTP (GET …/after?seq=N) in the meantime.
 */
(function () {
  "use strict";

  var root = document.getElementById("chat");
  if (!root || root.dataset.participant !== "true" || root.dataset.latest !== "true") { return; }

  var data = root.dataset;
  var list = document.getElementById("messages");
  var form = document.getElementById("send-form");
  var textarea = form && form.querySelector("textarea[name=body]");
  var fileInput = form && form.querySelector("input[type=file][name=attachment]");
  var clientIdInput = form && form.querySelector("input[name=client_id]");
  var csrfInput = form && form.querySelector("input[name=csrfmiddlewaretoken]");
  var liveBox = document.getElementById("live-status");
  var receipt = document.getElementById("read-receipt");
  var typingBox = document.getElementById("typing");
  var emptyNote = document.getElementById("no-messages");

  var MAX_BACKOFF_MS = 30000;
  var BASE_BACKOFF_MS = 1000;
  var TYPING_EVERY_MS = 3000;
  var TYPING_SHOWN_MS = 5000;
  var POLL_MS = 10000;

  var lastSeq = parseInt(data.lastSeq, 10) || 0;
  var otherReadSeq = parseInt(data.otherReadSeq, 10) || 0;
  var lastMineSeq = 0;
  var lastReadSent = 0;
  var socket = null;
  var connected = false;
  var attempt = 0;
  var reconnectTimer = null;
  var pollTimer = null;
  var typingHideTimer = null;
  var lastTypingSent = 0;
  var stopped = false;
  var pending = {}; // client_id -> {body, element, viaSocket}

  // --- helpers -------------------------------------------------------------------

  function uuid4() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  function formatTime(iso) {
    var when = new Date(iso);
    if (isNaN(when.getTime())) { return ""; }
    return when.toLocaleString(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
  }

  function formatSize(bytes) {
    if (!bytes && bytes !== 0) { return ""; }
    if (bytes < 1024) { return bytes + " bytes"; }
    if (bytes < 1048576) { return (bytes / 1024).toFixed(1) + " KB"; }
    return (bytes / 1048576).toFixed(1) + " MB";
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text) { node.textContent = text; }
    return node;
  }

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 200;
  }

  function setLive(state) {
    // state: "ok" | "paused"
    root.dataset.live = state;
    if (!liveBox) { return; }
    if (state === "ok") {
      liveBox.hidden = true;
      liveBox.classList.remove("is-paused");
    } else {
      liveBox.textContent = data.textPaused;
      liveBox.classList.add("is-paused");
      liveBox.hidden = false;
    }
  }

  function showError(message) {
    var box = document.getElementById("send-error");
    if (!box) {
      box = el("p", "message message-error");
      box.id = "send-error";
      box.setAttribute("role", "alert");
      form.insertBefore(box, form.firstChild);
    }
    box.textContent = message;
    box.hidden = !message;
  }

  function updateReceipt() {
    if (!receipt) { return; }
    // Under my message only while it is the newest one, as in other chat apps.
    receipt.hidden = !(lastMineSeq > 0 && lastMineSeq >= lastSeq && otherReadSeq >= lastMineSeq);
  }

  // --- rendering -----------------------------------------------------------------

  function messageElement(message, state) {
    var mine = message.sender && message.sender.id === data.me;
    var item = el("li", "msg" + (mine ? " msg-mine" : "") + (state ? " msg-pending" : ""));
    if (message.seq) {
      item.id = "m-" + message.seq;
      item.dataset.seq = message.seq;
    }
    item.dataset.clientId = message.client_id;
    var meta = el("p", "msg-meta");
    if (state) { meta.dataset.state = state; }
    meta.appendChild(el("span", "msg-sender", mine ? data.textYou : message.sender.name));
    if (message.created_at) {
      meta.appendChild(document.createTextNode(" · "));
      var time = el("time", "", formatTime(message.created_at));
      time.setAttribute("datetime", message.created_at);
      meta.appendChild(time);
    }
    item.appendChild(meta);
    if (message.body) {
      var body = el("p", "msg-body");
      message.body.split("\n").forEach(function (line, index) {
        if (index) { body.appendChild(document.createElement("br")); }
        body.appendChild(document.createTextNode(line));
      });
      item.appendChild(body);
    }
    var file = message.attachment;
    if (file && file.kind === "image") {
      var photoLink = el("a", "msg-photo");
      photoLink.href = file.url;
      var image = document.createElement("img");
      image.src = file.thumb_url || file.url;
      image.alt = data.textPhoto + ": " + (file.name || "");
      image.width = 240;
      image.height = 180;
      photoLink.appendChild(image);
      item.appendChild(photoLink);
    } else if (file && file.kind === "pdf") {
      var fileLink = el("a", "msg-file", "📄 " + (file.name || "document.pdf") + " ");
      fileLink.href = file.url;
      fileLink.setAttribute("download", "");
      fileLink.appendChild(el("span", "muted", "(PDF, " + formatSize(file.size) + ")"));
      item.appendChild(fileLink);
    }
    return item;
  }

  function insertInOrder(item, seq) {
    var children = list.children;
    for (var i = children.length - 1; i >= 0; i--) {
      var other = parseInt(children[i].dataset.seq, 10);
      if (other && other < seq) {
        list.insertBefore(item, children[i].nextSibling);
        return;
      }
    }
    // Older than everything shown, or the first one: before any pending bubbles.
    list.insertBefore(item, list.firstChild);
  }

  function addMessage(message) {
    if (!message || !message.seq) { return; }
    var stick = nearBottom();
    var item = messageElement(message, "");
    var shown = document.getElementById("m-" + message.seq);
    if (shown && !shown.classList.contains("msg-acked")) { return; }
    var waiting = pending[message.client_id];
    if (waiting && waiting.element && waiting.element.parentNode) {
      waiting.element.parentNode.removeChild(waiting.element);
    }
    delete pending[message.client_id];
    var real = list.querySelectorAll("li[data-seq]");
    var newest = real.length ? real[real.length - 1] : null;
    if (shown) {
      // Acknowledged bubble: now the full message (time, attachment) is known.
      list.replaceChild(item, shown);
    } else if (!newest || parseInt(newest.dataset.seq, 10) < message.seq) {
      // Newest: after the real messages, before bubbles still sending.
      list.insertBefore(item, list.querySelector(".msg-pending"));
    } else {
      insertInOrder(item, message.seq);
    }
    if (emptyNote) { emptyNote.hidden = true; }
    var mine = message.sender && message.sender.id === data.me;
    if (message.seq > lastSeq + 1 && connected) {
      // A gap (a broadcast lost while Redis blinked): ask for what is missing.
      send({ type: "resume", after_seq: lastSeq });
    }
    if (message.seq > lastSeq) { lastSeq = message.seq; root.dataset.lastSeq = String(lastSeq); }
    if (mine) {
      lastMineSeq = Math.max(lastMineSeq, message.seq);
    } else {
      hideTyping();
      scheduleRead();
    }
    updateReceipt();
    if (stick || mine) { item.scrollIntoView({ block: "end" }); }
  }

  function addPending(clientId, body, file) {
    var item = messageElement(
      { client_id: clientId, body: body, sender: { id: data.me }, attachment: null },
      data.textSending
    );
    if (file) { item.appendChild(el("p", "muted small", "📎 " + file.name)); }
    list.appendChild(item);
    if (emptyNote) { emptyNote.hidden = true; }
    item.scrollIntoView({ block: "end" });
    return item;
  }

  function markPendingFailed(clientId, message) {
    var waiting = pending[clientId];
    if (!waiting) { return; }
    if (waiting.element && waiting.element.parentNode) { waiting.element.parentNode.removeChild(waiting.element); }
    delete pending[clientId];
    if (textarea && !textarea.value && waiting.body) { textarea.value = waiting.body; }
    showError(message);
  }

  // --- typing and read ------------------------------------------------------------

  function hideTyping() {
    if (!typingBox) { return; }
    typingBox.hidden = true;
    typingBox.textContent = "";
  }

  function showTyping(name) {
    if (!typingBox) { return; }
    typingBox.textContent = data.textTyping.replace("%(name)s", name);
    typingBox.hidden = false;
    clearTimeout(typingHideTimer);
    typingHideTimer = setTimeout(hideTyping, TYPING_SHOWN_MS);
  }

  var readTimer = null;
  function scheduleRead() {
    // One read frame for a burst (a resume can deliver 200 messages; sockets allow 10 frames/s).
    clearTimeout(readTimer);
    readTimer = setTimeout(markRead, 300);
  }

  function markRead() {
    if (document.visibilityState !== "visible" || lastSeq <= lastReadSent) { return; }
    lastReadSent = lastSeq;
    if (connected) {
      send({ type: "read", seq: lastSeq });
    } else {
      var body = new FormData();
      body.append("seq", String(lastSeq));
      postForm(data.readUrl, body).catch(function () { lastReadSent = 0; });
    }
  }

  // --- HTTP -----------------------------------------------------------------------

  function postForm(url, body) {
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": csrfInput ? csrfInput.value : "" }
    });
  }

  function httpSend(clientId, body, file) {
    var formData = new FormData();
    formData.append("client_id", clientId);
    formData.append("body", body);
    if (file) { formData.append("attachment", file); }
    pending[clientId] = pending[clientId] || { body: body, element: addPending(clientId, body, file) };
    pending[clientId].viaSocket = false;
    return postForm(data.sendUrl, formData).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (response.ok && answer.message) {
          addMessage(answer.message);
          if (answer.live === false) { setLive("paused"); }
          return;
        }
        var error = answer.error || {};
        markPendingFailed(clientId, error.message || response.statusText);
      });
    }).catch(function () {
      // Offline: keep the bubble; it is posted again (same client_id) when the network is back.
      var waiting = pending[clientId];
      if (waiting) {
        waiting.retry = { body: body, file: file };
        var meta = waiting.element.querySelector(".msg-meta");
        if (meta) { meta.dataset.state = data.textNotSent; }
      }
    });
  }

  function flushPendingOverHttp() {
    Object.keys(pending).forEach(function (clientId) {
      var waiting = pending[clientId];
      if (waiting.viaSocket || waiting.retry) {
        var retry = waiting.retry || { body: waiting.body, file: null };
        waiting.retry = null;
        httpSend(clientId, retry.body, retry.file);
      }
    });
  }

  function catchUpOverHttp() {
    return fetch(data.afterUrl + "?seq=" + encodeURIComponent(lastSeq), {
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      return response.ok ? response.json() : { messages: [] };
    }).then(function (answer) {
      (answer.messages || []).forEach(addMessage);
      if (answer.has_more) { return catchUpOverHttp(); }
      return null;
    }).catch(function () { /* still offline */ });
  }

  // --- the socket -----------------------------------------------------------------

  function send(frame) {
    if (!socket || socket.readyState !== WebSocket.OPEN) { return false; }
    socket.send(JSON.stringify(frame));
    return true;
  }

  function connect() {
    if (stopped) { return; }
    clearTimeout(reconnectTimer);
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    try {
      socket = new WebSocket(scheme + window.location.host + data.wsPath);
    } catch (error) {
      scheduleReconnect();
      return;
    }
    socket.addEventListener("open", function () {
      connected = true;
      root.dataset.socket = "open";
      attempt = 0;
      stopPolling();
      setLive("ok");
      send({ type: "resume", after_seq: lastSeq });
      lastReadSent = 0;
      markRead();
    });
    socket.addEventListener("message", function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (error) { return; }
      onFrame(frame);
    });
    socket.addEventListener("close", function (event) {
      var wasConnected = connected;
      connected = false;
      root.dataset.socket = "closed";
      socket = null;
      // Sent on this socket but never acknowledged: post them over HTTP, same client_id.
      flushPendingOverHttp();
      if (event.code === 4401 || event.code === 4403) {
        stopped = true;
        setLive("paused");
        return;
      }
      setLive("paused");
      startPolling();
      scheduleReconnect(event.code === 4429 ? 3 : 0, wasConnected);
    });
  }

  function scheduleReconnect(extraSteps, wasConnected) {
    if (stopped) { return; }
    if (!wasConnected) { attempt += 1; }
    var ceiling = Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * Math.pow(2, attempt + (extraSteps || 0)));
    // Equal jitter: half fixed, half random, so a restarted server isn't hit by every page at once.
    var delay = ceiling / 2 + Math.random() * ceiling / 2;
    reconnectTimer = setTimeout(connect, delay);
  }

  function startPolling() {
    if (pollTimer) { return; }
    catchUpOverHttp();
    pollTimer = setInterval(catchUpOverHttp, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }

  function onFrame(frame) {
    if (frame.type === "message") {
      addMessage(frame.message);
    } else if (frame.type === "ack") {
      var waiting = pending[frame.client_id];
      if (waiting && frame.seq && !document.getElementById("m-" + frame.seq)) {
        // The message itself arrives through the group; until then mark the bubble as sent.
        waiting.element.classList.remove("msg-pending");
        waiting.element.classList.add("msg-acked");
        waiting.element.id = "m-" + frame.seq;
        waiting.element.dataset.seq = frame.seq;
        delete pending[frame.client_id];
        lastMineSeq = Math.max(lastMineSeq, frame.seq);
        if (frame.seq > lastSeq) { lastSeq = frame.seq; root.dataset.lastSeq = String(lastSeq); }
        updateReceipt();
      } else if (waiting) {
        if (waiting.element.parentNode) { waiting.element.parentNode.removeChild(waiting.element); }
        delete pending[frame.client_id];
      }
    } else if (frame.type === "typing") {
      if (frame.user !== data.me) { showTyping(frame.name || ""); }
    } else if (frame.type === "read") {
      if (frame.user !== data.me) {
        otherReadSeq = Math.max(otherReadSeq, frame.seq || 0);
        updateReceipt();
      }
    } else if (frame.type === "error") {
      if (frame.client_id && pending[frame.client_id]) {
        markPendingFailed(frame.client_id, frame.message);
      } else if (frame.message) {
        showError(frame.message);
      }
    }
  }

  // --- the form -------------------------------------------------------------------

  function onSubmit(event) {
    event.preventDefault();
    showError("");
    var body = textarea ? textarea.value.trim() : "";
    var file = fileInput && fileInput.files && fileInput.files.length ? fileInput.files[0] : null;
    if (!body && !file) {
      showError(form.dataset.emptyError || "");
      if (textarea) { textarea.focus(); }
      return;
    }
    var clientId = clientIdInput.value || uuid4();
    // The next message gets a new id; this one keeps its id through every retry.
    clientIdInput.value = uuid4();
    if (textarea) { textarea.value = ""; }
    if (fileInput) { fileInput.value = ""; }
    if (connected && !file && send({ type: "send", client_id: clientId, body: body })) {
      pending[clientId] = { body: body, element: addPending(clientId, body, null), viaSocket: true };
    } else {
      httpSend(clientId, body, file);
    }
  }

  if (form && clientIdInput) {
    form.addEventListener("submit", onSubmit);
    if (textarea) {
      textarea.addEventListener("input", function () {
        var now = Date.now();
        if (connected && now - lastTypingSent > TYPING_EVERY_MS) {
          lastTypingSent = now;
          send({ type: "typing" });
        }
      });
      textarea.addEventListener("keydown", function (event) {
        // Enter sends on a keyboard with a physical Enter; Shift+Enter is a new line.
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing && window.matchMedia("(pointer: fine)").matches) {
          event.preventDefault();
          if (typeof form.requestSubmit === "function") { form.requestSubmit(); } else { onSubmit(event); }
        }
      });
    }
  }

  document.addEventListener("visibilitychange", markRead);
  window.addEventListener("online", function () {
    flushPendingOverHttp();
    if (!connected) { clearTimeout(reconnectTimer); attempt = 0; connect(); }
  });

  var mine = list.querySelectorAll(".msg-mine[data-seq]");
  if (mine.length) { lastMineSeq = parseInt(mine[mine.length - 1].dataset.seq, 10) || 0; }
  if (!window.location.hash && list.lastElementChild) { list.lastElementChild.scrollIntoView({ block: "end" }); }
  if (data.live === "paused") { setLive("paused"); }
  if (!window.WebSocket) { startPolling(); return; }
  connect();
})();
