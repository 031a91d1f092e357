// One conversation, live: new history lines every second (appended with textContent only),
// the state banner, the reply box (verdict shown at once), the SMS segment counter and the
// canned replies. Everything also works as plain forms without this script.
(function () {
  "use strict";
  var root = document.getElementById("conversation");
  if (!root) { return; }
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var historyApi = root.getAttribute("data-history-api");
  var stateApi = root.getAttribute("data-state-api");
  var replyApi = root.getAttribute("data-reply-api");
  var verifyApi = root.getAttribute("data-verify-api");
  var after = root.getAttribute("data-after") || "";
  var history = document.getElementById("history");
  var stateBanner = document.getElementById("state");
  var stateLabel = document.getElementById("state-label");
  var notVerified = document.getElementById("not-verified");
  var verifiedCell = document.getElementById("verified");
  var reasonsCell = document.getElementById("reasons");
  var claimButton = document.getElementById("claim");
  var form = document.getElementById("reply-form");
  var text = document.getElementById("reply-text");
  var channel = document.getElementById("reply-channel");
  var counter = document.getElementById("reply-segments");
  var verdictBox = document.getElementById("reply-verdict");
  var send = document.getElementById("reply-send");
  var canned = document.getElementById("canned");
  var verifyForm = document.getElementById("verify-form");
  var busy = false;

  // --- SMS segments: the same rule as channels/sms_text.py (GSM-7 160/153, UCS-2 70/67) ---
  var GSM_BASIC = "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5" +
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\u00c6\u00e6\u00df\u00c9" +
    " !\"#\u00a4%&'()*+,-./0123456789:;<=>?" +
    "\u00a1ABCDEFGHIJKLMNOPQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7" +
    "\u00bfabcdefghijklmnopqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0";
  var GSM_EXTENSION = "\f^{}\\[~]|\u20ac";

  function smsSegments(value) {
    var chars = Array.from(value);
    var gsm = chars.every(function (c) { return GSM_BASIC.indexOf(c) >= 0 || GSM_EXTENSION.indexOf(c) >= 0; });
    var isDouble = gsm ?
      function (c) { return GSM_EXTENSION.indexOf(c) >= 0; } :
      function (c) { return c.codePointAt(0) > 0xffff; };
    var doubles = chars.filter(isDouble).length;
    var units = chars.length + doubles;
    var single = gsm ? 160 : 70;
    var room = gsm ? 153 : 67;
    var count;
    if (units <= single) {
      count = 1;
    } else if (!doubles) {
      count = Math.ceil(units / room);
    } else {
      count = 1;
      var used = 0;
      chars.forEach(function (c) {
        var size = isDouble(c) ? 2 : 1;
        if (used + size > room) { count += 1; used = 0; }
        used += size;
      });
    }
    return { segments: count, encoding: gsm ? "GSM-7" : "UCS-2", units: units };
  }
  window.consoleSmsSegments = smsSegments;

  function updateCounter() {
    if (!counter || !text) { return; }
    if (channel && channel.value && channel.value !== "sms") {
      counter.textContent = "";
      return;
    }
    var info = smsSegments(text.value);
    counter.textContent = "SMS: " + info.segments + " segment" + (info.segments === 1 ? "" : "s") +
      " (" + info.encoding + ", " + info.units + " characters)";
  }

  // --- history ---
  function historyLine(line) {
    var li = document.createElement("li");
    li.className = "history-line " + line.direction + " kind-" + line.kind;
    li.setAttribute("data-id", line.id);
    var meta = document.createElement("span");
    meta.className = "meta";
    function part(className, value) {
      if (!value) { return; }
      var span = document.createElement("span");
      span.className = className;
      span.textContent = value;
      meta.appendChild(span);
    }
    part("time", line.time);
    part("channel", line.channel);
    part("who", line.who);
    if (line.direction === "event") { part("event-kind", line.kind.replace(/_/g, " ")); }
    part("status", line.status);
    li.appendChild(meta);
    var body = document.createElement("span");
    body.className = "text";
    body.textContent = line.text;
    li.appendChild(body);
    return li;
  }

  function getJson(url) {
    return fetch(url, {
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-Requested-With": "fetch", "X-Console-Poll": "1" }
    }).then(function (response) {
      if (response.status === 401) {
        window.location.href = "/console/sign-in?next=" + encodeURIComponent(window.location.pathname);
        return null;
      }
      return response.ok ? response.json() : null;
    });
  }

  function pollHistory() {
    var url = historyApi + (after ? "?after=" + encodeURIComponent(after) : "");
    return getJson(url).then(function (data) {
      if (!data || !data.lines || !data.lines.length) { return; }
      var nearBottom = history.scrollHeight - history.scrollTop - history.clientHeight < 40;
      data.lines.forEach(function (line) {
        if (history.querySelector('[data-id="' + CSS.escape(line.id) + '"]')) { return; }
        history.appendChild(historyLine(line));
        after = line.id;
      });
      if (nearBottom) { history.scrollTop = history.scrollHeight; }
    });
  }

  function pollState() {
    return getJson(stateApi).then(function (state) {
      if (!state) { return; }
      stateLabel.textContent = state.label;
      stateBanner.className = "state-banner state-" + state.shown;
      stateBanner.setAttribute("data-state", state.state);
      stateBanner.setAttribute("data-agent", state.agent);
      if (notVerified) { notVerified.hidden = !!state.verified; }
      if (verifiedCell) { verifiedCell.textContent = state.verified ? "yes" : (state.verified_known ? "no" : "unknown"); }
      if (reasonsCell) { reasonsCell.textContent = state.reasons.length ? state.reasons.join(", ") : "nothing"; }
      if (claimButton) { claimButton.disabled = !!state.mine; }
    });
  }

  function poll() {
    if (busy) { return; }
    busy = true;
    Promise.all([pollHistory(), pollState()])
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .finally(function () { busy = false; });
  }

  // --- replying ---
  function showVerdict(verdict) {
    verdictBox.className = verdict.outcome || "blocked";
    verdictBox.textContent = verdict.message || verdict.error || "Something went wrong; nothing was sent.";
  }

  function postJson(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json", "Accept": "application/json",
        "X-Requested-With": "fetch", "X-CSRFToken": csrf
      },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return { error: "The server did not answer (" + response.status + ")." }; })
        .then(function (data) {
          if (!response.ok) { data.outcome = "blocked"; data.message = "Not sent: " + (data.error || response.status); }
          return data;
        });
    });
  }

  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!text.value.trim()) { text.focus(); return; }
      send.disabled = true;
      postJson(replyApi, { text: text.value, channel: channel ? channel.value : null })
        .then(function (verdict) {
          showVerdict(verdict);
          if (verdict.outcome === "sent" || verdict.outcome === "deferred") {
            text.value = "";
            updateCounter();
          }
          poll();
        })
        .catch(function () { showVerdict({ outcome: "blocked", message: "Not sent: the server could not be reached." }); })
        .finally(function () { send.disabled = false; });
    });
  }

  if (verifyForm) {
    verifyForm.addEventListener("submit", function (event) {
      event.preventDefault();
      postJson(verifyApi, {}).then(function (verdict) {
        showVerdict(verdict);
        poll();
      });
    });
  }

  if (canned && text) {
    canned.addEventListener("change", function () {
      var option = canned.options[canned.selectedIndex];
      var insert = option ? option.getAttribute("data-text") : "";
      if (insert) {
        var start = text.selectionStart || 0;
        var end = text.selectionEnd || 0;
        text.value = text.value.slice(0, start) + insert + text.value.slice(end);
        text.focus();
        text.selectionStart = text.selectionEnd = start + insert.length;
        updateCounter();
      }
      canned.selectedIndex = 0;
    });
  }

  if (text) { text.addEventListener("input", updateCounter); }
  if (channel) { channel.addEventListener("change", updateCounter); }
  updateCounter();
  if (history) { history.scrollTop = history.scrollHeight; }
  setInterval(poll, 1000);
})();
