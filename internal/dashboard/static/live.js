// Runway dashboard: live updates over server-sent events. The pages work
// without it (they reload every few seconds while something runs).
"use strict";
(function () {
  // A release in progress: the server sends its timeline, rendered, on
  // every change, and "done" when it has ended.
  document.querySelectorAll("[data-live]").forEach(function (el) {
    var es = new EventSource(el.getAttribute("data-live"));
    el.classList.add("live");
    es.addEventListener("timeline", function (e) {
      el.innerHTML = JSON.parse(e.data).html;
    });
    es.addEventListener("done", function () {
      es.close();
      window.location.reload();
    });
    es.addEventListener("failed", function () { es.close(); el.classList.remove("live"); });
  });
  // Logs followed: each line appended as text.
  document.querySelectorAll("[data-live-logs]").forEach(function (table) {
    var body = table.tBodies[0];
    var es = new EventSource(table.getAttribute("data-live-logs"));
    table.classList.add("live");
    es.addEventListener("log", function (e) {
      var l = JSON.parse(e.data);
      var tr = document.createElement("tr");
      tr.className = l.stream;
      [l.time, l.instance, l.version, l.text].forEach(function (v, i) {
        var td = document.createElement("td");
        td.textContent = v;
        if (i === 0) td.className = "t";
        if (i === 3) td.className = "text";
        tr.appendChild(td);
      });
      body.appendChild(tr);
      var none = document.getElementById("no-lines");
      if (none) none.remove();
      if (body.rows.length > 5000) body.deleteRow(0);
      window.scrollTo(0, document.body.scrollHeight);
    });
    es.addEventListener("failed", function () { es.close(); table.classList.remove("live"); });
  });
  // With a script, the pages that reload without one need not.
  document.querySelectorAll("noscript").forEach(function (n) { n.remove(); });
})();
