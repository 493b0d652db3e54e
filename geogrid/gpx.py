"""GPX read safely: the track points of a GPX 1.0 or 1.1 document, as written.

XML safety. The document is parsed by the standard library's expat, a real streaming
XML parser, with every document type declaration refused: a GPX file never needs a DTD,
and without one there can be no entity definitions, so no entity-expansion bomb
("billion laughs", quadratic blow-up) and no external entity (a local file, a URL) can
reach the parser; parameter entity parsing is switched off and entity declarations and
external references are refused as well, should expat ever report one. This is
defusedxml's ``forbid_dtd`` policy, applied without adding that dependency; lxml is not
needed either. A file is read as a stream, so its size only costs the points it holds.

Elements are matched by local name (any namespace, or none, as GPX 1.0, 1.1 and
careless exporters write them); only ``gpx/trk/trkseg/trkpt`` (``lat``, ``lon``, ``time``)
and ``gpx/trk/name`` are read, waypoints and route points are counted. Converting times
and making tracks of the points is :mod:`geogrid.trackfiles`' job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from xml.parsers import expat

from geogrid.errors import FileFormatError

# The elements whose text is read: a track's name and a track point's time.
_TEXT_ELEMENTS = ((("gpx", "trk"), "name"), (("gpx", "trk", "trkseg", "trkpt"), "time"))


def read_gpx(source: bytes | Any, *, file: str = "upload.gpx") -> GpxDocument:
    """The tracks, waypoint and route point counts of GPX bytes or a binary stream."""
    document = GpxDocument(file)
    document.read(source)
    return document


@dataclass
class GpxTrack:
    """The raw track points of one <trk>: times as written (None where absent), lines."""

    name: str = ""
    segments: int = 0
    lon: list[float] = field(default_factory=list)
    lat: list[float] = field(default_factory=list)
    times: list[str | None] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)


class GpxDocument:
    """A streaming expat reader of the track points of a GPX document; no DTD allowed."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.parser = expat.ParserCreate(namespace_separator=" ")
        self.parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.parser.StartDoctypeDeclHandler = self._refuse_doctype
        self.parser.EntityDeclHandler = self._refuse_entity
        self.parser.ExternalEntityRefHandler = self._refuse_entity
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._text
        self.parser.buffer_text = True
        self.path: list[str] = []
        self.tracks: list[GpxTrack] = []
        self.waypoints = 0
        self.route_points = 0
        self._text_parts: list[str] | None = None
        self._time: str | None = None

    def read(self, source: bytes | Any) -> None:
        """Parse the whole document; FileFormatError with the line on anything wrong."""
        try:
            if isinstance(source, bytes | bytearray):
                self.parser.Parse(source, True)
            else:
                self.parser.ParseFile(source)
        except expat.ExpatError as exc:
            what = expat.ErrorString(exc.code)
            raise FileFormatError(
                f"{self.file}, line {exc.lineno}, column {exc.offset + 1}: not well-formed "
                f"XML ({what})",
                file=self.file,
                line=exc.lineno,
            ) from None

    def _fail(self, message: str, **details: Any) -> FileFormatError:
        line = self.parser.CurrentLineNumber
        return FileFormatError(
            f"{self.file}, line {line}: {message}", file=self.file, line=line, **details
        )

    def _refuse_doctype(self, *_args: Any) -> None:
        raise self._fail(
            "a DOCTYPE declaration is not accepted in a GPX file (it could define entities "
            "that expand without bound or read other files); export the track again",
            refused="doctype",
        )

    def _refuse_entity(self, *_args: Any) -> int:
        raise self._fail("XML entities are not accepted in a GPX file", refused="entity")

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        local = name.rpartition(" ")[2]
        where = tuple(self.path)
        if not where and local != "gpx":
            raise self._fail(f"the document is <{local}>, not a GPX file (<gpx>)")
        if where == ("gpx",):
            if local == "trk":
                self.tracks.append(GpxTrack())
            elif local == "wpt":
                self.waypoints += 1
        elif where == ("gpx", "trk") and local == "trkseg":
            self.tracks[-1].segments += 1
        elif where == ("gpx", "trk", "trkseg") and local == "trkpt":
            self._point(attrs)
        elif where == ("gpx", "rte") and local == "rtept":
            self.route_points += 1
        if (where, local) in _TEXT_ELEMENTS:
            self._text_parts = []
        self.path.append(local)

    def _point(self, attrs: dict[str, str]) -> None:
        track = self.tracks[-1]
        values = []
        for axis in ("lon", "lat"):
            raw = attrs.get(axis)
            if raw is None:
                raise self._fail(f"a <trkpt> has no {axis} attribute", field=axis)
            try:
                values.append(float(raw))
            except ValueError:
                raise self._fail(f"<trkpt {axis}={raw!r}> is not a number", field=axis) from None
        track.lon.append(values[0])
        track.lat.append(values[1])
        track.lines.append(self.parser.CurrentLineNumber)
        self._time = None

    def _text(self, data: str) -> None:
        if self._text_parts is not None:
            self._text_parts.append(data)

    def _end(self, name: str) -> None:
        local = self.path.pop()
        where = tuple(self.path)
        if self._text_parts is not None and local in ("name", "time"):
            text = "".join(self._text_parts).strip()
            self._text_parts = None
            if local == "name":
                self.tracks[-1].name = text
            else:
                self._time = text or None
        elif where == ("gpx", "trk", "trkseg") and local == "trkpt":
            self.tracks[-1].times.append(self._time)
