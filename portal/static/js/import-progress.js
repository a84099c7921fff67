// The progress bar of an import: polls the batch's progress and reloads the page when the
// import is over (the result is then rendered by the server).
(function () {
  var box = document.getElementById("import-progress");
  if (!box) return;
  var bar = box.querySelector("progress");
  var percent = box.querySelector("[data-role=percent]");
  var reading = box.querySelector("[data-role=reading]");
  var checking = box.querySelector("[data-role=checking]");
  function poll() {
    fetch(box.dataset.url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (p) {
        if (p.finished) { window.location.reload(); return; }
        bar.value = p.percent;
        percent.textContent = p.percent;
        reading.hidden = !p.reading;
        checking.hidden = p.reading;
        setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 500);
})();
