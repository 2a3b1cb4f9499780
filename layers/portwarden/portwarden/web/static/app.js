// Progressive enhancement only: every page reads fine without JavaScript.
// The vulnerability chart of a watched tag: data from a JSON block (no inline script).
(function () {
  "use strict";
  var colours = { critical: "#8b0000", high: "#c2410c", medium: "#a16207", low: "#1d4ed8" };
  function drawChart() {
    var canvas = document.getElementById("vuln-chart");
    var source = document.getElementById("vuln-chart-data");
    if (!canvas || !source || typeof window.Chart === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var order = ["critical", "high", "medium", "low"].filter(function (name) { return name in data.series; });
    var datasets = order.map(function (name) {
      return { label: name, data: data.series[name], borderColor: colours[name], backgroundColor: colours[name], tension: 0, fill: false };
    });
    new window.Chart(canvas, {
      type: "line",
      data: { labels: data.labels, datasets: datasets },
      options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }
  if (document.readyState === "complete") { drawChart(); } else { document.addEventListener("DOMContentLoaded", drawChart); }
})();
