// GeogridAreas: an L.GeoJSON that fetches its features by zoom bucket (and by chunk of the
// view for layers with minZoom), joins values onto them by code, colours and tooltips them.
// Rendered once into every page with a fetched layer (geogrid/maplayers.py).
if (!window.GeogridAreas) {
  window.geogridLayers = window.geogridLayers || {pending: 0, loaded: 0, failed: 0, ready: false, layers: {}};
  (function (status) {
    function settle() {
      if (status.pending !== 0) { return; }
      // Two frames: the canvas redraws on the next animation frame after addData.
      requestAnimationFrame(function () { requestAnimationFrame(function () {
        if (status.pending === 0 && !status.ready) {
          status.ready = true;
          document.dispatchEvent(new CustomEvent("geogrid:layers-ready", {detail: status}));
        }
      }); });
    }
    function fetchJson(url) {
      status.pending += 1; status.ready = false;
      return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) {
          if (!response.ok) { throw new Error(response.status + " " + url); }
          return response.json();
        })
        .then(function (body) { status.loaded += 1; return body; },
              function (error) { status.failed += 1; console.error("geogrid layer: " + error.message); return null; })
        .finally(function () { status.pending -= 1; settle(); });
    }
    function escapeHtml(value) {
      var div = document.createElement("div");
      div.textContent = value === null || value === undefined ? "" : String(value);
      return div.innerHTML;
    }
    function colourFor(rule, value) {
      if (value === null || value === undefined || value !== value) { return rule.missing; }
      if (rule.kind === "categories") {
        return Object.prototype.hasOwnProperty.call(rule.categories, String(value)) ? rule.categories[String(value)] : rule.missing;
      }
      var colour = rule.missing;
      for (var i = 0; i < rule.bins.length; i++) { if (value >= rule.bins[i][0]) { colour = rule.bins[i][1]; } }
      return colour;
    }
    function tile(lon, lat, z) {
      var n = Math.pow(2, z), rad = lat * Math.PI / 180;
      var x = Math.floor((lon + 180) / 360 * n);
      var y = Math.floor((1 - Math.log(Math.tan(rad) + 1 / Math.cos(rad)) / Math.PI) / 2 * n);
      return [Math.min(Math.max(x, 0), n - 1), Math.min(Math.max(y, 0), n - 1)];
    }
    window.GeogridAreas = L.GeoJSON.extend({
      initialize: function (url, options) {
        var self = this;
        L.GeoJSON.prototype.initialize.call(this, null, {
          style: function (feature) { return self._styleOf(feature); },
          onEachFeature: function (feature, layer) { self._bind(feature, layer); }
        });
        this._url = new URL(url, window.location.href);
        this._fixedZoom = this._url.searchParams.has("z") ? Number(this._url.searchParams.get("z")) : null;
        this._settings = options;
        this._values = options.values || {};
        this._codes = {};
        this._chunks = {};
        this._bucket = null;
        status.layers[options.name] = 0;
        if (options.valuesUrl) {
          fetchJson(options.valuesUrl).then(function (values) {
            if (values) { self._values = values; self._rejoin(); }
          });
        }
      },
      onAdd: function (map) {
        if (!map._geogridCanvas) { map._geogridCanvas = L.canvas({padding: 0.5, tolerance: 2}); }
        this.options.renderer = map._geogridCanvas;
        L.GeoJSON.prototype.onAdd.call(this, map);
        map.on("moveend", this._update, this);
        // The page's script fits the map to its areas after adding the layers: fetch for
        // the fitted view, not for the map's first one. Counted as pending meanwhile, so
        // the page is not "ready" before the fetch has even started.
        var self = this;
        status.pending += 1; status.ready = false;
        setTimeout(function () { status.pending -= 1; self._update(); settle(); }, 0);
      },
      onRemove: function (map) {
        map.off("moveend", this._update, this);
        L.GeoJSON.prototype.onRemove.call(this, map);
      },
      _bucketOf: function (zoom) {
        var buckets = this._settings.buckets, chosen = buckets[0];
        for (var i = 0; i < buckets.length; i++) { if (buckets[i] <= Math.floor(zoom)) { chosen = buckets[i]; } }
        return chosen;
      },
      _update: function () {
        var map = this._map;
        if (!map) { return; }
        var zoom = map.getZoom(), minZoom = this._settings.minZoom;
        if (minZoom !== null && minZoom !== undefined && zoom < minZoom) { this._reset(null); return; }
        var bucket = this._fixedZoom !== null ? this._fixedZoom : this._bucketOf(zoom);
        if (bucket !== this._bucket) { this._reset(bucket); }
        var wanted = [null];
        if (minZoom !== null && minZoom !== undefined) {
          var cz = Math.max(bucket - this._settings.chunkOffset, 0), b = map.getBounds();
          var low = tile(b.getWest(), b.getNorth(), cz), high = tile(b.getEast(), b.getSouth(), cz);
          wanted = [];
          for (var x = low[0]; x <= high[0]; x++) {
            for (var y = low[1]; y <= high[1]; y++) { wanted.push(cz + "/" + x + "/" + y); }
          }
        }
        var self = this;
        wanted.forEach(function (chunk) {
          var key = String(chunk);
          if (self._chunks[key]) { return; }
          self._chunks[key] = true;
          var url = new URL(self._url.href);
          if (self._fixedZoom === null) { url.searchParams.set("z", String(bucket)); }
          if (chunk !== null) { url.searchParams.set("tile", chunk); }
          fetchJson(url.href).then(function (collection) {
            if (collection && self._bucket === bucket) { self._addFeatures(collection.features); }
          });
        });
      },
      _reset: function (bucket) {
        this._bucket = bucket;
        this._chunks = {};
        this._codes = {};
        this.clearLayers();
        status.layers[this._settings.name] = 0;
      },
      _addFeatures: function (features) {
        var fresh = [];
        for (var i = 0; i < features.length; i++) {
          var code = features[i].properties.code;
          if (this._codes[code]) { continue; }
          this._codes[code] = true;
          this._join(features[i]);
          fresh.push(features[i]);
        }
        this.addData({type: "FeatureCollection", features: fresh});
        status.layers[this._settings.name] += fresh.length;
      },
      _join: function (feature) {
        var extra = this._values[feature.properties.code];
        if (extra) { for (var key in extra) { feature.properties[key] = extra[key]; } }
      },
      _rejoin: function () {
        var self = this;
        this.eachLayer(function (layer) { self._join(layer.feature); self.resetStyle(layer); });
      },
      _styleOf: function (feature) {
        var style = Object.assign({}, this._settings.style), rule = this._settings.colourRule;
        if (rule) { style.fill = true; style.fillColor = colourFor(rule, feature.properties[rule.property]); }
        return style;
      },
      _bind: function (feature, layer) {
        var tip = this._settings.tooltip, style = this._settings.style, self = this;
        if (style.fill === false && !this._settings.colourRule) {
          // On a canvas an outline would catch the pointer anywhere inside it (SVG only on
          // the line), hiding the finer areas beneath; let it catch only its line.
          layer._containsPoint = function (point) {
            return L.Polyline.prototype._containsPoint.call(this, point, true);
          };
        }
        if (tip.fields.length) {
          layer.bindTooltip(function () {
            var rows = tip.fields.map(function (field, i) {
              return "<tr><th>" + escapeHtml(tip.aliases[i]) + "</th><td>" + escapeHtml(feature.properties[field]) + "</td></tr>";
            });
            return "<table class=\"geogrid-tip\">" + rows.join("") + "</table>";
          }, {sticky: true});
        }
        layer.on("mouseover", function () { layer.setStyle({weight: style.weight + 2}); });
        layer.on("mouseout", function () { self.resetStyle(layer); });
      }
    });
  })(window.geogridLayers);
}
