// Live sync progress: follows the server-sent events of the sync job and
// updates the bar; reloads the page when the sync ends so counts refresh.
(function () {
  "use strict";
  var box = document.getElementById("sync-progress");
  if (!box || !window.EventSource) return;
  var status = box.getAttribute("data-status");
  if (status !== "queued" && status !== "running") return;
  var bar = box.querySelector("progress");
  var text = box.querySelector(".progress-text");
  var source = new EventSource(box.getAttribute("data-stream"));
  source.addEventListener("progress", function (event) {
    var p = JSON.parse(event.data);
    bar.max = Math.max(p.total, 1);
    bar.value = p.done;
    var words = { queued: "Waiting to start", running: "Syncing", done: "Sync finished", failed: "Sync failed" };
    text.textContent = (words[p.status] || p.status) + ": " + p.done + " / " + p.total + " games";
    if (p.status === "done" || p.status === "failed") {
      source.close();
      window.location.reload();
    }
  });
  source.onerror = function () { source.close(); };
})();
