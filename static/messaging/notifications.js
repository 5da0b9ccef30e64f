// The header bell: keeps the unread badge live over /ws/notifications/.
// The count is rendered by the server first; the socket sends the current
// count on every connect, so a missed push is corrected on reconnect.
// Reconnects with jittered exponential backoff (full jitter, 1 s .. 30 s), so
// thousands of pages don't all knock at once after a deploy.
(function () {
  "use strict";
  var bell = document.getElementById("notif-bell");
  if (!bell || !("WebSocket" in window) || window.__notifBell) return;
  window.__notifBell = true;

  var badge = document.getElementById("notif-badge");
  var label = document.getElementById("notif-bell-label");
  var live = document.getElementById("notif-live");
  var BASE_MS = 1000;
  var MAX_MS = 30000;
  var attempt = 0;
  var socket = null;
  var timer = null;

  function setUnread(count) {
    count = Math.max(0, parseInt(count, 10) || 0);
    badge.textContent = count > 99 ? "99+" : String(count);
    badge.hidden = count === 0;
    bell.dataset.unread = String(count);
    if (label) {
      label.textContent = count
        ? bell.dataset.labelSome.replace("%(count)s", String(count))
        : bell.dataset.labelNone;
    }
  }

  function announce(text) {
    if (!live || !text) return;
    live.textContent = "";
    // A fresh text node each time so screen readers repeat identical titles.
    window.setTimeout(function () { live.textContent = text; }, 50);
  }

  function nextDelay() {
    var cap = Math.min(MAX_MS, BASE_MS * Math.pow(2, attempt));
    attempt += 1;
    return Math.floor(Math.random() * cap) + 250;
  }

  function schedule() {
    if (timer) return;
    timer = window.setTimeout(function () { timer = null; connect(); }, nextDelay());
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    try {
      socket = new WebSocket(scheme + window.location.host + bell.dataset.wsPath);
    } catch (e) {
      schedule();
      return;
    }
    socket.onopen = function () { attempt = 0; bell.dataset.live = "on"; };
    socket.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type === "unread") {
        setUnread(frame.unread);
      } else if (frame.type === "notification") {
        setUnread(frame.unread);
        if (frame.notification) announce(frame.notification.title);
        document.dispatchEvent(new CustomEvent("bittie:notification", { detail: frame }));
      }
    };
    socket.onclose = function (event) {
      bell.dataset.live = "off";
      socket = null;
      // 4401: not logged in (any more). Reconnecting won't help.
      if (event.code === 4401) return;
      schedule();
    };
  }

  setUnread(bell.querySelector("#notif-badge").textContent);
  connect();
})();
