// The procedure editor: saves the draft a moment after typing stops and reloads the phone-size
// preview, so the preview follows the form. Without this file the buttons do the same.
(function () {
  "use strict";
  var form = document.querySelector("form[data-autosave]");
  var frame = document.getElementById("preview-frame");
  var status = document.getElementById("autosave-status");
  if (!form || !window.fetch || !window.FormData) { return; }
  var timer = null, busy = false, again = false, stopped = false;
  var base = frame ? frame.getAttribute("src").split("?")[0] : "";

  function say(text) { if (status && text) { status.textContent = text; } }

  function save() {
    if (stopped) { return; }
    if (busy) { again = true; return; }
    busy = true;
    var data = new FormData(form);
    data.set("op", "save");
    fetch(form.getAttribute("action"), {
      method: "POST", body: data, credentials: "same-origin", headers: {"X-Autosave": "1"}
    }).then(function (response) {
      return response.json().then(function (body) { return {ok: response.ok, body: body}; });
    }).then(function (result) {
      if (result.ok && result.body.revision) {
        form.querySelector("input[name=revision]").value = result.body.revision;
        if (frame) { frame.setAttribute("src", base + "?t=" + Date.now()); }
      } else {
        stopped = true;  // someone else saved, or the page is stale: the buttons say what to do
      }
      say(result.body.message);
    }).catch(function () {
      stopped = true;
    }).then(function () {
      busy = false;
      if (again) { again = false; save(); }
    });
  }

  function later(event) {
    var name = event.target && event.target.name;
    if (!name || name.indexOf("new.") === 0 || event.target.type === "file") { return; }
    clearTimeout(timer);
    timer = setTimeout(save, 1200);
  }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
})();
