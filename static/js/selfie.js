// The consent selfie: with a camera, take a fresh picture in the page and put it into the form's
// file input; without one (or without JavaScript), the file input opens the phone's front camera.
(function () {
  "use strict";
  function setUp(root) {
    const input = root.querySelector("input[type=file]");
    const camera = root.querySelector(".selfie-camera");
    const video = camera.querySelector("video");
    const canvas = camera.querySelector("canvas");
    const preview = root.querySelector(".selfie-preview");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.DataTransfer) return;
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: "user", width: 640, height: 640 }, audio: false })
      .then(function (stream) {
        const take = root.querySelector("[data-selfie-take]");
        // The button works once frames arrive: a capture before that is a black square.
        take.disabled = true;
        video.addEventListener("playing", function () { take.disabled = false; }, { once: true });
        video.srcObject = stream;
        camera.hidden = false;
        take.addEventListener("click", function () {
          const side = Math.min(video.videoWidth, video.videoHeight) || 640;
          canvas.width = canvas.height = side;
          const ctx = canvas.getContext("2d");
          ctx.drawImage(video, (video.videoWidth - side) / 2, (video.videoHeight - side) / 2, side, side, 0, 0, side, side);
          canvas.toBlob(function (blob) {
            const files = new DataTransfer();
            files.items.add(new File([blob], "selfie.jpg", { type: "image/jpeg" }));
            input.files = files.files;
            preview.src = URL.createObjectURL(blob);
            preview.hidden = false;
            root.dispatchEvent(new CustomEvent("selfie-taken", { bubbles: true }));
          }, "image/jpeg", 0.92);
        });
      })
      .catch(function () { /* no camera or no permission: the file input still works */ });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-selfie]").forEach(setUp);
  });
})();
