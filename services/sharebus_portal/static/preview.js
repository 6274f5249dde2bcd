// The live preview of My data: one EventSource per receiving system, rows added as records arrive.
// Values are written with textContent only, never as HTML.
"use strict";
(function () {
  const MAX_ROWS = 20;
  function show(container, data) {
    const body = container.querySelector("tbody");
    const row = document.createElement("tr");
    row.className = "delivery";
    for (const text of [data.data_class || "", data.grant_id || "—", JSON.stringify(data.value)]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.appendChild(cell);
    }
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > MAX_ROWS) {
      body.deleteRow(body.rows.length - 1);
    }
  }
  function follow(container) {
    const status = container.querySelector(".status");
    const source = new EventSource(container.dataset.feed);
    source.addEventListener("open", function () {
      status.textContent = "live · 实时";
      container.dataset.state = "open";
    });
    source.addEventListener("delivery", function (event) {
      show(container, JSON.parse(event.data));
    });
    source.addEventListener("error", function () {
      status.textContent = "reconnecting · 重新连接中";
      container.dataset.state = "reconnecting";
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }
  document.querySelectorAll(".preview[data-feed]").forEach(follow);
})();
