"""The words of the grid map's layers (``web/maps.py``, ``web/layers.py``)."""

#: English message → Chinese. Keys are exactly the strings passed to ``_()``.
ZH_CN: dict[str, str] = {
    "%(level)s appear from zoom %(zoom)s on; zoom in to see them.": (
        "%(level)s在缩放级别 %(zoom)s 及以上显示，请放大地图查看。"
    ),
}
