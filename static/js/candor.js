// Live progress: any element with data-poll is replaced by the HTML fragment at that URL
// until the server stops sending data-poll (the job finished). Without JavaScript the page
// still shows the state at load time and refreshes itself (see task_detail.html).
(function () {
  "use strict";
  const INTERVAL_MS = 1000;

  function poll(el) {
    const url = el.getAttribute("data-poll");
    if (!url) return;
    window.setTimeout(async function () {
      try {
        const response = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
        if (!response.ok) return;
        const holder = document.createElement("div");
        holder.innerHTML = (await response.text()).trim();
        const fresh = holder.firstElementChild;
        if (!fresh) return;
        const reload = el.hasAttribute("data-reload-when-done");
        if (reload && !fresh.hasAttribute("data-poll")) {
          window.location.reload(); // the job changed more of the page than its card
          return;
        }
        if (reload) fresh.setAttribute("data-reload-when-done", "");
        el.replaceWith(fresh);
        poll(fresh);
      } catch (err) {
        poll(el); // network blip: try again
      }
    }, INTERVAL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(poll);
  });
})();
