// Drag and drop onto the upload form: dropped files go into the ordinary file input, and the
// form submits as it would without JavaScript.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-dropzone]").forEach(function (zone) {
      const input = zone.querySelector("input[type=file]");
      const label = zone.querySelector(".dropzone-label");
      const show = function () {
        const n = input.files.length;
        if (label && n) label.textContent = n + " photo" + (n === 1 ? "" : "s") + " ready to upload";
      };
      ["dragenter", "dragover"].forEach(function (type) {
        zone.addEventListener(type, function (event) {
          event.preventDefault();
          zone.classList.add("is-over");
        });
      });
      ["dragleave", "drop"].forEach(function (type) {
        zone.addEventListener(type, function () { zone.classList.remove("is-over"); });
      });
      zone.addEventListener("drop", function (event) {
        event.preventDefault();
        if (event.dataTransfer && event.dataTransfer.files.length) {
          input.files = event.dataTransfer.files;
          show();
        }
      });
      input.addEventListener("change", show);
    });
  });
})();
