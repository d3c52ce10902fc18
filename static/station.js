// Scanner stations: send each scan without reloading the page, so the keystrokes of the next
// scan are never lost, and keep the input focused. Without this file the form still works.
// If a scan cannot be recorded (the session ended, the connection dropped), scanning stops
// and the page lists every scan not recorded, so none is lost silently.
(function () {
  "use strict";
  var form = document.getElementById("scan-form");
  var input = document.getElementById("code");
  var announce = document.getElementById("scan-announce");
  if (!form || !input || !window.fetch || !window.DOMParser || !window.URL) { return; }
  var queue = [];
  var busy = false;
  var stopped = false;

  function replace(id, doc) {
    var fresh = doc.getElementById(id);
    var old = document.getElementById(id);
    if (fresh && old) { old.replaceWith(fresh); }
  }

  function fail() {
    stopped = true;
    var lost = queue.slice();
    queue = [];
    var p = document.createElement("p");
    p.className = "notice bad";
    p.setAttribute("role", "alert");
    p.textContent = "Not recorded: " + lost.length + " scan(s). Your session may have ended or the " +
      "connection dropped. Reload the page (sign in again if asked) and scan these again: " +
      lost.join(" · ");
    var box = document.getElementById("station-messages");
    if (box) { box.replaceChildren(p); }
    input.disabled = true;
  }

  function next() {
    if (busy || stopped || queue.length === 0) { return; }
    busy = true;
    var body = new URLSearchParams();
    body.set("csrf_token", form.elements.csrf_token.value);
    body.set("code", queue[0]);
    fetch(form.action, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) {
        // A recorded scan comes back as this station's page; anything else (a sign-in page,
        // an error page) means it was not recorded.
        if (!r.ok || new URL(r.url).pathname !== window.location.pathname) {
          throw new Error("not recorded");
        }
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        if (!doc.getElementById("scan-list")) { throw new Error("not recorded"); }
        queue.shift();
        replace("scan-list", doc);
        replace("station-messages", doc);
        var newest = doc.querySelector(".scans li");
        if (announce && newest) {
          announce.textContent = newest.getAttribute("data-said") || newest.textContent;
        }
      })
      .catch(fail)
      .then(function () { busy = false; next(); });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    if (stopped) { return; }
    var code = input.value;
    input.value = "";
    input.focus();
    if (code.trim() !== "") { queue.push(code); next(); }
  });
})();
