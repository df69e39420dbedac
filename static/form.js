/* Optional improvements; the form works without this file.
   1. Fields that apply only to some answers are hidden until they apply.
   2. Photos are shrunk on the phone before upload (long side 2400 px, JPEG), which saves
      megabytes on weak mobile data; the server re-encodes them anyway. */
(function () {
  "use strict";
  var form = document.querySelector("form[enctype='multipart/form-data']");
  if (!form) return;
  function valueOf(name) {
    var el = form.elements[name];
    if (!el) return "";
    if (el.type === "checkbox") return el.checked ? "on" : "";
    return el.value;
  }
  function refresh() {
    var deps = form.querySelectorAll("[data-when]");
    for (var i = 0; i < deps.length; i++) {
      var w = deps[i];
      var show = w.getAttribute("data-equals").split("|").indexOf(valueOf(w.getAttribute("data-when"))) >= 0;
      w.hidden = !show;
    }
  }
  form.addEventListener("change", refresh);
  refresh();

  var LONG_SIDE = 2400;
  function shrink(file) {
    return new Promise(function (resolve) {
      if (!/^image\/jpeg|^image\/png/.test(file.type) || file.size < 600 * 1024 || !window.createImageBitmap) {
        return resolve(file);
      }
      createImageBitmap(file, { imageOrientation: "from-image" }).then(function (bmp) {
        var scale = Math.min(1, LONG_SIDE / Math.max(bmp.width, bmp.height));
        var c = document.createElement("canvas");
        c.width = Math.round(bmp.width * scale);
        c.height = Math.round(bmp.height * scale);
        c.getContext("2d").drawImage(bmp, 0, 0, c.width, c.height);
        c.toBlob(function (blob) {
          if (!blob || blob.size >= file.size) return resolve(file);
          resolve(new File([blob], file.name.replace(/\.\w+$/, "") + ".jpg", { type: "image/jpeg" }));
        }, "image/jpeg", 0.85);
      }, function () { resolve(file); });
    });
  }
  var busy = false;
  form.addEventListener("submit", function (ev) {
    if (busy || !window.DataTransfer) return;
    var inputs = form.querySelectorAll("input[type=file]");
    var work = [];
    for (var i = 0; i < inputs.length; i++) {
      (function (input) {
        if (!input.files || !input.files.length) return;
        work.push(Promise.all(Array.prototype.map.call(input.files, shrink)).then(function (files) {
          var dt = new DataTransfer();
          files.forEach(function (f) { dt.items.add(f); });
          input.files = dt.files;
        }));
      })(inputs[i]);
    }
    if (!work.length) return;
    ev.preventDefault();
    busy = true;
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    Promise.all(work).then(function () { form.submit(); }, function () { form.submit(); });
  });
})();
