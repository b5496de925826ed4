/* brainxr interactive views: the runtime shared by every view of a page or a notebook.
 *
 * A page (or a notebook) loads plotly.js once: the first view carries it,
 * gzip-compressed and base64-encoded, and hands it to providePlotly(); every
 * view waits for it, then draws itself into its own root element (a
 * <div class="brainxr-view">) from the JSON data inside that element, whose
 * arrays are zlib-compressed and base64-encoded.
 */
(function () {
  "use strict";
  if (window.brainxrViews) { return; }

  var library = null;   // Promise of Plotly once a view has provided it
  var waiting = [];     // views waiting for it

  function bytesOf(text) {
    var binary = atob(text);
    var bytes = new Uint8Array(binary.length);
    for (var n = 0; n < binary.length; n++) { bytes[n] = binary.charCodeAt(n); }
    return bytes;
  }

  function inflate(text, format) {
    if (typeof DecompressionStream === "undefined") {
      return Promise.reject(new Error("this browser cannot decompress the view (no DecompressionStream): " +
                                      "open it in Chrome 80+, Firefox 113+ or Safari 16.4+"));
    }
    var stream = new Blob([bytesOf(text)]).stream().pipeThrough(new DecompressionStream(format));
    return new Response(stream).arrayBuffer().then(function (buffer) { return new Uint8Array(buffer); });
  }

  function providePlotly(compressed) {
    if (library) { return library; }
    library = inflate(compressed, "gzip").then(function (bytes) {
      var previous = window.Plotly;
      var script = document.createElement("script");
      // run as a plain script (module/exports/define hidden), so that plotly.js sets window.Plotly
      script.text = "(function (module, exports, define) {\n" + new TextDecoder().decode(bytes) + "\n}).call(window);";
      document.head.appendChild(script);
      script.remove();
      var plotly = window.Plotly;
      if (previous !== undefined) { window.Plotly = previous; }  // another plotly.js of the page stays
      if (!plotly) { throw new Error("plotly.js did not load"); }
      return plotly;
    });
    waiting.forEach(function (resolve) { resolve(library); });
    waiting = [];
    return library;
  }

  function plotlyReady() {
    return library || new Promise(function (resolve) { waiting.push(resolve); });
  }

  function decode(text, Type) {
    return inflate(text, "deflate").then(function (bytes) { return Array.from(new Type(bytes.buffer)); });
  }

  function meshTrace(mesh, vertices, faces) {
    var trace = { type: "mesh3d", x: [], y: [], z: [], i: [], j: [], k: [], color: mesh.color,
                  opacity: mesh.opacity, hoverinfo: "skip", name: "brain",
                  lighting: { ambient: 0.6, diffuse: 0.6, specular: 0.1, roughness: 0.9 } };
    for (var v = 0; v < vertices.length; v += 3) {
      trace.x.push(vertices[v]); trace.y.push(vertices[v + 1]); trace.z.push(vertices[v + 2]);
    }
    for (var f = 0; f < faces.length; f += 3) {
      trace.i.push(faces[f]); trace.j.push(faces[f + 1]); trace.k.push(faces[f + 2]);
    }
    return trace;
  }

  function nodeTrace(nodes, coords) {
    var trace = { type: "scatter3d", mode: "markers", x: [], y: [], z: [], text: nodes.labels,
                  hoverinfo: nodes.labels ? "text" : "x+y+z", name: "nodes",
                  marker: { size: nodes.size, color: nodes.color, line: { width: 0 }, opacity: 1 } };
    for (var n = 0; n < coords.length; n += 3) {
      trace.x.push(coords[n]); trace.y.push(coords[n + 1]); trace.z.push(coords[n + 2]);
    }
    return trace;
  }

  function edgeTrace(edges, coords, source, target, weight, threshold) {
    var trace = { type: "scatter3d", mode: "lines", x: [], y: [], z: [], hoverinfo: "text", text: [],
                  name: "edges", connectgaps: false,
                  line: { width: edges.linewidth, color: [], colorscale: edges.colorscale,
                          cmin: edges.cmin, cmax: edges.cmax, showscale: edges.colorbar,
                          colorbar: { len: edges.colorbar_height, tickfont: { size: edges.colorbar_fontsize } } } };
    var shown = 0;
    for (var e = 0; e < weight.length; e++) {
      var w = weight[e];
      if (Math.abs(w) <= threshold) { continue; }
      var a = 3 * source[e], b = 3 * target[e];
      trace.x.push(coords[a], coords[b], null);
      trace.y.push(coords[a + 1], coords[b + 1], null);
      trace.z.push(coords[a + 2], coords[b + 2], null);
      trace.line.color.push(w, w, w);
      var label = w.toPrecision(3);
      trace.text.push(label, label, "");
      shown += 1;
    }
    return { trace: trace, shown: shown };
  }

  function setState(root, name, value) {
    root.setAttribute("data-" + name, value);
    if (root.hasAttribute("data-standalone")) { document.body.setAttribute("data-" + name, value); }
  }

  function show(root, text) {
    var message = root.querySelector(".brainxr-message");
    message.textContent = text;
    message.style.display = text ? "block" : "none";
  }

  function render(root) {
    var view = JSON.parse(root.querySelector("script.brainxr-data").textContent);
    var plot = root.querySelector(".brainxr-plot");
    var slider = root.querySelector(".brainxr-threshold");
    var hint = setTimeout(function () {
      show(root, "Waiting for plotly.js: the first brainxr view of this notebook brings it. If that output " +
                 "was cleared, run brainxr.plotting.reset_notebook_views() and show this view again.");
    }, 8000);
    var arrays = [view.nodes.coords ? decode(view.nodes.coords, Float32Array) : Promise.resolve([]),
                  view.mesh ? decode(view.mesh.vertices, Float32Array) : Promise.resolve(null),
                  view.mesh ? decode(view.mesh.faces, Int32Array) : Promise.resolve(null),
                  view.edges ? decode(view.edges.source, Int32Array) : Promise.resolve([]),
                  view.edges ? decode(view.edges.target, Int32Array) : Promise.resolve([]),
                  view.edges ? decode(view.edges.weight, Float32Array) : Promise.resolve([])];
    return Promise.all([plotlyReady()].concat(arrays)).then(function (loaded) {
      clearTimeout(hint);
      show(root, "");
      var Plotly = loaded[0], coords = loaded[1];
      var traces = view.mesh ? [meshTrace(view.mesh, loaded[2], loaded[3])] : [];
      var nodes = nodeTrace(view.nodes, coords);
      var edges = view.edges;
      var axis = { visible: false, showgrid: false, zeroline: false, showspikes: false };
      var layout = {
        margin: { l: 0, r: 0, t: view.title ? 40 : 0, b: 0 },
        showlegend: false, paper_bgcolor: "#fff", hovermode: "closest",
        scene: { xaxis: axis, yaxis: axis, zaxis: axis, aspectmode: "data",
                 camera: { eye: { x: -1.6, y: 0.1, z: 0.3 }, up: { x: 0, y: 0, z: 1 } } },
        title: view.title ? { text: view.title, font: { size: view.title_fontsize }, x: 0.02, xanchor: "left" }
                          : undefined
      };
      var config = { responsive: true, displaylogo: false };

      function draw(threshold) {
        var data = traces.slice();
        var shown = 0;
        if (edges) {
          var built = edgeTrace(edges, coords, loaded[4], loaded[5], loaded[6], threshold);
          data.push(built.trace);
          shown = built.shown;
        }
        data.push(nodes);
        setState(root, "n-edges", String(shown));
        setState(root, "threshold", String(threshold));
        root.querySelector(".brainxr-n-edges").textContent = String(shown);
        root.querySelector(".brainxr-threshold-value").textContent = Number(threshold).toPrecision(3);
        return Plotly.react(plot, data, layout, config).then(function () { setState(root, "rendered", "true"); });
      }

      if (edges) {
        slider.min = 0;
        slider.max = edges.max_abs_weight;
        slider.step = edges.max_abs_weight / 200 || 1;
        slider.value = edges.threshold;
        slider.addEventListener("input", function () { draw(Number(slider.value)); });
      } else {
        root.querySelector(".brainxr-controls").style.display = "none";
      }
      root.brainxrSetThreshold = function (value) { slider.value = value; return draw(Number(value)); };
      return draw(edges ? edges.threshold : 0);
    }).catch(function (error) {
      clearTimeout(hint);
      show(root, "brainxr view: " + error.message);
      setState(root, "error", error.message);
    });
  }

  window.brainxrViews = { providePlotly: providePlotly, render: render };
})();
