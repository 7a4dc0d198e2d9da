// The consent camera check: ask the server for a challenge (a random order of moves and a
// one-time nonce), film the person following the prompts, and put the frames into the form.
// The server judges them; this script only shows prompts and records.
(function () {
  "use strict";
  const NEUTRAL_MS = 1400; // look at the camera first: the frames the face is matched on
  const STEP_MS = 1600; // each move: a prompt, then frames while the person does it
  const SHOTS_IN_STEP = [500, 900, 1300];
  const SHOTS_NEUTRAL = [300, 700, 1100];
  const WIDTH = 640;

  function csrfToken(form) {
    const field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function schedule(prompts) {
    // [{at, prompt}] for prompts and [{at}] for shots, in milliseconds from the start.
    const cues = [{ at: 0, prompt: "Look straight at the camera" }];
    const shots = SHOTS_NEUTRAL.map(function (at) { return at; });
    prompts.forEach(function (prompt, k) {
      const start = NEUTRAL_MS + k * STEP_MS;
      cues.push({ at: start, prompt: prompt });
      SHOTS_IN_STEP.forEach(function (offset) { shots.push(start + offset); });
    });
    return { cues: cues, shots: shots, end: NEUTRAL_MS + prompts.length * STEP_MS };
  }

  function grab(video, canvas) {
    const scale = WIDTH / (video.videoWidth || WIDTH);
    canvas.width = WIDTH;
    canvas.height = Math.round((video.videoHeight || 480) * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", 0.9); });
  }

  function setUp(root) {
    const form = root.closest("form");
    const start = root.querySelector("[data-liveness-start]");
    const stage = root.querySelector("[data-liveness-stage]");
    const video = stage.querySelector("video");
    const promptText = root.querySelector("[data-liveness-prompt]");
    const progress = root.querySelector("[data-liveness-progress]");
    const status = root.querySelector("[data-liveness-status]");
    const nonceField = root.querySelector("[data-liveness-nonce]");
    const framesField = root.querySelector("[data-liveness-frames]");
    const canvas = document.createElement("canvas");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.DataTransfer) {
      status.textContent = "This browser can't use a camera here. Open the page on a phone or computer with a camera.";
      start.disabled = true;
      return;
    }

    function fail(message) {
      status.textContent = message;
      status.classList.add("error-text");
      start.disabled = false;
      stage.hidden = true;
    }

    function record(stream, challenge) {
      const plan = schedule(challenge.prompts);
      const blobs = [];
      progress.max = plan.shots.length;
      progress.value = 0;
      const begun = performance.now();
      const timers = [];
      plan.cues.forEach(function (cue) {
        timers.push(setTimeout(function () { promptText.textContent = cue.prompt; }, cue.at));
      });
      return new Promise(function (resolve) {
        plan.shots.forEach(function (at, index) {
          timers.push(setTimeout(function () {
            grab(video, canvas).then(function (blob) {
              blobs[index] = blob;
              progress.value = blobs.filter(Boolean).length;
              if (progress.value === plan.shots.length) resolve(blobs);
            });
          }, at));
        });
      }).then(function (done) {
        stream.getTracks().forEach(function (track) { track.stop(); });
        return { blobs: done, ms: performance.now() - begun };
      });
    }

    start.addEventListener("click", function () {
      start.disabled = true;
      status.classList.remove("error-text");
      status.textContent = "Starting the camera…";
      const body = new FormData();
      body.append("csrfmiddlewaretoken", csrfToken(form));
      const challenge = fetch(root.dataset.challengeUrl, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(form) },
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (!response.ok || !data.nonce) {
            throw new Error(data.error || "The check could not start. Reload the page and try again.");
          }
          return data;
        });
      });
      const camera = navigator.mediaDevices.getUserMedia({
        video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } },
        audio: false,
      });
      Promise.all([challenge, camera]).then(function (both) {
        const data = both[0];
        const stream = both[1];
        stage.hidden = false;
        video.srcObject = stream;
        return new Promise(function (resolve) {
          video.addEventListener("playing", resolve, { once: true });
        }).then(function () {
          status.textContent = "Recording: follow the prompts.";
          return record(stream, data);
        }).then(function (result) {
          const files = new DataTransfer();
          result.blobs.forEach(function (blob, i) {
            files.items.add(new File([blob], "frame-" + (i + 1) + ".jpg", { type: "image/jpeg" }));
          });
          framesField.files = files.files;
          nonceField.value = data.nonce;
          promptText.textContent = "Done";
          status.textContent = "Recorded " + result.blobs.length + " frames. Now confirm below and send within a minute.";
          root.dispatchEvent(new CustomEvent("liveness-recorded", { bubbles: true }));
        });
      }).catch(function (error) {
        if (error && error.name === "NotAllowedError") {
          fail("The camera is blocked. Allow this page to use the camera, then start again.");
        } else if (error && error.name === "NotFoundError") {
          fail("No camera was found. Open this page on a device with a camera.");
        } else {
          fail((error && error.message) || "The camera check could not start. Try again.");
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-liveness]").forEach(setUp);
  });
})();
