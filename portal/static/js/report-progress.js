// The progress bar of a report being made: polls the job's progress and reloads the page when
// the report is ready (or has failed); the page then shows the download link or the problem.
(function () {
  var box = document.getElementById("report-progress");
  if (!box) return;
  var bar = box.querySelector("progress");
  var percent = box.querySelector("[data-role=percent]");
  function poll() {
    fetch(box.dataset.url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (p) {
        if (p.finished) { window.location.reload(); return; }
        bar.value = p.percent;
        percent.textContent = p.percent;
        setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 500);
})();
