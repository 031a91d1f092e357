// The live inbox: polls /console/api/inbox every second and redraws the rows.
// Outside text (names, messages, reasons) only ever goes in through textContent.
(function () {
  "use strict";
  var table = document.getElementById("inbox");
  if (!table) { return; }
  var body = document.getElementById("inbox-items");
  var empty = document.getElementById("inbox-empty");
  var live = document.getElementById("inbox-live");
  var api = table.getAttribute("data-api");
  var soundUrl = table.getAttribute("data-sound");
  var alertButton = document.getElementById("enable-alerts");
  var alertStatus = document.getElementById("alerts-status");
  var known = {};
  var crisisSeen = {};
  var busy = false;

  Array.prototype.forEach.call(body.querySelectorAll("tr.inbox-item"), function (row) {
    var id = row.getAttribute("data-conversation");
    known[id] = true;
    if (row.classList.contains("crisis")) { crisisSeen[id] = true; }
  });

  function cell(row, className, text) {
    var td = document.createElement("td");
    td.className = className;
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function render(item) {
    var row = document.createElement("tr");
    row.className = "inbox-item priority-" + item.priority +
      (item.reasons.indexOf("crisis") >= 0 ? " crisis" : "") + (item.overdue ? " overdue" : "");
    row.setAttribute("data-conversation", item.conversation_id);
    var person = cell(row, "person", "");
    var link = document.createElement("a");
    link.href = item.url;
    link.textContent = item.display_name;
    person.appendChild(link);
    if (item.kind !== "conversation") {
      var kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = " (" + item.kind.replace(/_/g, " ") + ")";
      person.appendChild(kind);
    }
    cell(row, "reasons", item.reasons.join(", "));
    cell(row, "channel", item.channel);
    cell(row, "language", item.language);
    cell(row, "creditor", item.creditor);
    var waited = cell(row, "waited", item.waited);
    if (item.overdue) {
      var late = document.createElement("strong");
      late.className = "late";
      late.textContent = " (over target)";
      waited.appendChild(late);
    }
    cell(row, "verified", item.verified === null ? "not yet" : (item.verified ? "yes" : "no"));
    cell(row, "summary", item.summary);
    cell(row, "state", item.state === "agent" ? "agent: " + item.agent : item.state);
    return row;
  }

  function alertCrisis(item) {
    if (soundUrl) {
      try {
        var sound = new Audio(soundUrl);
        var played = sound.play();
        if (played && played.catch) { played.catch(function () { /* autoplay refused */ }); }
      } catch (e) { /* no audio */ }
    }
    if (window.Notification && Notification.permission === "granted") {
      try {
        var note = new Notification("Crisis: a person needs help now", {
          body: item.display_name + " (" + item.channel + ")",
          tag: "crisis-" + item.conversation_id
        });
        note.onclick = function () { window.focus(); window.location.href = item.url; };
      } catch (e) { /* notifications unavailable */ }
    }
  }

  function update(items) {
    var fresh = [];
    var seenNow = {};
    var fragment = document.createDocumentFragment();
    items.forEach(function (item) {
      seenNow[item.conversation_id] = true;
      if (!known[item.conversation_id]) { fresh.push(item); }
      fragment.appendChild(render(item));
      if (item.reasons.indexOf("crisis") >= 0 && !crisisSeen[item.conversation_id]) {
        crisisSeen[item.conversation_id] = true;
        alertCrisis(item);
      }
    });
    // Keep the focused link focused across the redraw (keyboard users).
    var active = document.activeElement;
    var focusedId = active && active.closest && active.closest("tr.inbox-item") ?
      active.closest("tr.inbox-item").getAttribute("data-conversation") : null;
    body.replaceChildren(fragment);
    if (focusedId) {
      var again = body.querySelector('tr.inbox-item[data-conversation="' + CSS.escape(focusedId) + '"] a');
      if (again) { again.focus(); }
    }
    known = seenNow;
    empty.hidden = items.length > 0;
    if (fresh.length) {
      live.textContent = fresh.length === 1 ?
        "New in the inbox: " + fresh[0].display_name + " (" + fresh[0].reasons.join(", ") + ")" :
        fresh.length + " new conversations in the inbox";
    }
  }

  function poll() {
    if (busy) { return; }
    busy = true;
    fetch(api, {
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-Requested-With": "fetch", "X-Console-Poll": "1" }
    }).then(function (response) {
      if (response.status === 401) {
        window.location.href = "/console/sign-in?next=" + encodeURIComponent(window.location.pathname + window.location.search);
        return null;
      }
      return response.ok ? response.json() : null;
    }).then(function (data) {
      if (data && data.items) { update(data.items); }
    }).catch(function () { /* offline for a moment: the next poll tries again */ })
      .finally(function () { busy = false; });
  }

  if (alertButton) {
    if (!window.Notification) {
      alertButton.hidden = true;
    } else if (Notification.permission === "granted") {
      alertStatus.textContent = "Crisis alerts are on.";
    }
    alertButton.addEventListener("click", function () {
      if (!window.Notification) { return; }
      Notification.requestPermission().then(function (permission) {
        alertStatus.textContent = permission === "granted" ?
          "Crisis alerts are on." : "Notifications were not allowed; the sound and the list still show crises.";
      }).catch(function () {
        alertStatus.textContent = "Notifications are not available in this browser.";
      });
    });
  }

  setInterval(poll, 1000);
})();
