"""A legend for one map layer, shown only while its layer is on the map.

Maps with several thematic layers (the dashboard's heat map, rates, hotspots and
emerging hotspots) would otherwise pile their legends up in one corner; each
:class:`LayerLegend` follows its layer as the layer control switches it on and off.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

import folium
from branca.element import Element, Figure
from folium.template import Template


class LayerLegend(folium.MacroElement):
    """A legend for one layer: a title, a swatch, label and count per class, and a note.

    It is shown only while its layer is on the map, so four layers' legends do not
    pile up in the corner.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
        {{ this.get_name() }}.onAdd = function () {
            var div = L.DomUtil.create("div", "geogrid-legend geogrid-layer-legend");
            div.innerHTML = {{ this.html|tojson }};
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        (function (map, layer, legend) {
            function sync() {
                legend.getContainer().style.display = map.hasLayer(layer) ? "" : "none";
            }
            map.on("overlayadd overlayremove", sync);
            sync();
        })({{ this._parent.get_name() }}, {{ this.layer.get_name() }}, {{ this.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(
        self,
        title: str,
        entries: Sequence[tuple[str, str, int | None]],
        layer: folium.map.Layer,
        *,
        note: str = "",
        position: str = "bottomright",
    ) -> None:
        super().__init__()
        self._name = "LayerLegend"
        self.title = title
        self.entries = list(entries)
        self.layer = layer
        self.note = note
        self.position = position

    @property
    def html(self) -> str:
        """The legend's inner HTML, every label escaped."""
        rows = []
        for text, colour, count in self.entries:
            shown = escape(text) if count is None else f"{escape(text)} ({count})"
            rows.append(f'<div><i style="background:{colour}"></i>{shown}</div>')
        note = f'<p class="geogrid-legend-note">{escape(self.note)}</p>' if self.note else ""
        return f"<h4>{escape(self.title)}</h4>{''.join(rows)}{note}"

    def render(self, **kwargs: Any) -> None:
        """Render, with the legend style added once to the page head."""
        figure = self.get_root()
        if isinstance(figure, Figure):
            figure.header.add_child(Element(_LEGEND_STYLE), name="geogrid_layer_legend_style")
        super().render(**kwargs)


_LEGEND_STYLE = """<style>
.geogrid-layer-legend { background: rgba(255, 255, 255, 0.92); padding: 6px 10px;
    border-radius: 4px; box-shadow: 0 1px 4px rgba(0, 0, 0, 0.3); font: 12px/1.5 sans-serif;
    max-width: 20em; }
.geogrid-layer-legend h4 { font-size: 13px; font-weight: 600; margin: 0 0 4px; }
.geogrid-layer-legend i { display: inline-block; width: 16px; height: 11px; margin-right: 6px;
    vertical-align: -1px; border: 1px solid #888; }
.geogrid-legend-note { margin: 4px 0 0; color: #57606a; font-size: 11px; }
</style>"""
