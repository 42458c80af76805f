"""The graphs of Monitor & Control, served at /static/graphs.js.

Drawn as SVG by this script, with nothing fetched but the server's own history from mfds's
API (GET /api/servers/{name}/history, esrt.region.history): calls and errors per second,
p50 and p99 latency, for the server or one of its services, and the queue depth and busy
SEPs, over the last hour, updated every point interval. Each chart carries data-points (how
many points it draws) and data-last (the newest value of its first curve), which is what the
browser test reads.
"""

GRAPHS_JS = r"""
(function () {
  "use strict";
  var root = document.getElementById("graphs");
  if (!root) { return; }
  var server = root.getAttribute("data-server");
  var interval = Math.max(1, Number(root.getAttribute("data-interval")) || 5);
  var SPAN = 3600, WIDTH = 560, HEIGHT = 150, LEFT = 48, BOTTOM = 20, TOP = 8;
  var SVG = "http://www.w3.org/2000/svg";
  var COLOURS = ["#1f77b4", "#d62728"];
  var CHARTS = [
    {id: "calls", title: "Calls per second", curves: [["calls", "calls/s"]]},
    {id: "errors", title: "Errors per second", curves: [["errors", "errors/s"]]},
    {id: "latency", title: "Latency (ms)", curves: [["p50", "p50"], ["p99", "p99"]]},
    {id: "queue", title: "Queue depth (whole server)", whole: true,
     curves: [["queued", "average"], ["queued_max", "peak"]]},
    {id: "busy", title: "SEPs busy (whole server)", whole: true,
     curves: [["busy", "average"], ["busy_max", "peak"]]}
  ];
  var points = [], last = null, select = document.getElementById("graph-service");
  var status = document.getElementById("graph-status");

  function valueOf(point, key, chart) {
    var service = select.value;
    if (!service || chart.whole) { return Number(point[key]) || 0; }
    var figures = (point.services || {})[service];
    return figures ? Number(figures[key]) || 0 : 0;
  }

  function node(name, attributes, text) {
    var element = document.createElementNS(SVG, name);
    Object.keys(attributes).forEach(function (key) { element.setAttribute(key, attributes[key]); });
    if (text !== undefined) { element.textContent = text; }
    return element;
  }

  function label(value) {
    if (value >= 1000) { return (value / 1000).toFixed(1) + "k"; }
    return value >= 10 ? value.toFixed(0) : value.toFixed(value >= 1 ? 1 : 2);
  }

  function draw(chart, now) {
    var svg = document.getElementById("chart-" + chart.id);
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var start = points.length ? Math.max(now - SPAN, points[0].t - interval) : now - SPAN;
    var span = Math.max(interval, now - start), top = 0;
    points.forEach(function (point) {
      chart.curves.forEach(function (curve) {
        top = Math.max(top, valueOf(point, curve[0], chart));
      });
    });
    top = top > 0 ? top * 1.1 : 1;
    var plotWidth = WIDTH - LEFT - 4, plotHeight = HEIGHT - TOP - BOTTOM;
    svg.appendChild(node("rect", {x: LEFT, y: TOP, width: plotWidth, height: plotHeight,
                                  fill: "#fff", stroke: "#ccc"}));
    [0, 0.5, 1].forEach(function (share) {
      var y = TOP + plotHeight * (1 - share);
      svg.appendChild(node("line", {x1: LEFT, x2: LEFT + plotWidth, y1: y, y2: y,
                                    stroke: "#eee"}));
      svg.appendChild(node("text", {x: LEFT - 4, y: y + 4, "text-anchor": "end",
                                    "font-size": "10"}, label(top * share)));
    });
    var minutes = Math.round(span / 60);
    svg.appendChild(node("text", {x: LEFT, y: HEIGHT - 4, "font-size": "10"},
                         minutes >= 1 ? minutes + " min ago" : Math.round(span) + " s ago"));
    svg.appendChild(node("text", {x: LEFT + plotWidth, y: HEIGHT - 4, "font-size": "10",
                                  "text-anchor": "end"}, "now"));
    chart.curves.forEach(function (curve, index) {
      var coordinates = points.map(function (point) {
        var x = LEFT + plotWidth * (point.t - start) / span;
        var y = TOP + plotHeight * (1 - valueOf(point, curve[0], chart) / top);
        return x.toFixed(1) + "," + y.toFixed(1);
      });
      svg.appendChild(node("polyline", {points: coordinates.join(" "), fill: "none",
                                        stroke: COLOURS[index], "stroke-width": "1.5",
                                        "class": "curve curve-" + curve[0]}));
      svg.appendChild(node("text", {x: LEFT + 6 + 70 * index, y: TOP + 12, fill: COLOURS[index],
                                    "font-size": "11"}, curve[1]));
    });
    var newest = points.length ? valueOf(points[points.length - 1], chart.curves[0][0], chart) : 0;
    svg.setAttribute("data-points", String(points.length));
    svg.setAttribute("data-last", String(newest));
  }

  function drawAll() {
    var now = Date.now() / 1000;
    if (points.length) { now = Math.max(now, points[points.length - 1].t); }
    CHARTS.forEach(function (chart) { draw(chart, now); });
  }

  function offerServices() {
    var seen = {};
    points.forEach(function (point) {
      Object.keys(point.services || {}).forEach(function (name) { seen[name] = true; });
    });
    var have = {};
    Array.prototype.forEach.call(select.options, function (option) { have[option.value] = true; });
    Object.keys(seen).sort().forEach(function (name) {
      if (!have[name]) {
        var option = document.createElement("option");
        option.value = name;
        option.textContent = name;
        select.appendChild(option);
      }
    });
  }

  function refresh() {
    var url = "/api/servers/" + encodeURIComponent(server) + "/history" +
              (last !== null ? "?since=" + last : "");
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (answer) {
        if (!answer.ok) { throw new Error("mfds answered " + answer.status); }
        return answer.json();
      })
      .then(function (history) {
        var fresh = history.points || [];
        points = points.concat(fresh);
        if (points.length) { last = points[points.length - 1].t; }
        var oldest = (last || 0) - SPAN;
        points = points.filter(function (point) { return point.t >= oldest; });
        offerServices();
        drawAll();
        status.textContent = points.length ? "one point every " + interval + " s, updated live" :
          "no points yet: the region writes one every " + interval + " s";
      })
      .catch(function (problem) { status.textContent = "graphs not updated: " + problem.message; });
  }

  CHARTS.forEach(function (chart) {
    var figure = document.createElement("figure");
    var caption = document.createElement("figcaption");
    caption.textContent = chart.title;
    figure.appendChild(caption);
    figure.appendChild(node("svg", {id: "chart-" + chart.id, width: WIDTH, height: HEIGHT,
                                    viewBox: "0 0 " + WIDTH + " " + HEIGHT, role: "img",
                                    "aria-label": chart.title}));
    root.appendChild(figure);
  });
  select.addEventListener("change", drawAll);
  refresh();
  setInterval(refresh, interval * 1000);
}());
"""
