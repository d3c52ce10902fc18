// Scanner stations: send each scan without reloading the page, so the keystrokes of the next
// scan are never lost, and keep the input focused. Without this file the form still works.
(function () {
  "use strict";
  var form = document.getElementById("scan-form");
  var input = document.getElementById("code");
  if (!form || !input || !window.fetch || !window.DOMParser) { return; }
  var queue = [];
  var busy = false;

  function replace(id, doc) {
    var fresh = doc.getElementById(id);
    var old = document.getElementById(id);
    if (fresh && old) { old.replaceWith(fresh); }
  }

  function next() {
    if (busy || queue.length === 0) { return; }
    busy = true;
    var code = queue.shift();
    var body = new URLSearchParams();
    body.set("csrf_token", form.elements.csrf_token.value);
    body.set("code", code);
    fetch(form.action, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) { throw new Error(String(r.status)); }
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        replace("scan-list", doc);
        replace("station-messages", doc);
      })
      // Whatever went wrong, the plain form post still works (and shows any error page).
      .catch(function () { input.value = code; form.submit(); })
      .then(function () { busy = false; next(); });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var code = input.value;
    input.value = "";
    input.focus();
    if (code.trim() !== "") { queue.push(code); next(); }
  });
})();
