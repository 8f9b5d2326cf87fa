"""A web page read back as elements and text, to check what a page shows (and what it
must not: a script, an event handler) without a browser; used on Chromium's DOM too."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

_VOID = frozenset({"br", "hr", "img", "meta", "input", "link", "source", "wbr", "area", "col"})


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parts: list[str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    @property
    def text(self) -> str:
        return " ".join("".join(self.parts).split())


@dataclass
class Page:
    elements: list[Element]
    text: str

    def find(self, tag: str | None = None, cls: str | None = None) -> list[Element]:
        return [
            e
            for e in self.elements
            if (tag is None or e.tag == tag) and (cls is None or cls in e.classes)
        ]

    def handlers(self) -> list[tuple[str, str]]:
        """(tag, attribute) for every on… event handler attribute in the page."""
        return [(e.tag, name) for e in self.elements for name in e.attrs if name.startswith("on")]


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.open: list[Element] = []
        self.parts: list[str] = []
        self.in_head = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.elements.append(element)
        if tag in ("head", "style", "title"):
            self.in_head += 1
        if tag not in _VOID:
            self.open.append(element)
        elif tag == "br":
            self.handle_data("\n")  # a line break reads as a space, as in innerText

    def handle_endtag(self, tag: str) -> None:
        if tag in ("head", "style", "title"):
            self.in_head -= 1
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index].tag == tag:
                del self.open[index:]
                break

    def handle_data(self, data: str) -> None:
        for element in self.open:
            element.parts.append(data)
        if not self.in_head:
            self.parts.append(data)


def read_page(html: str) -> Page:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return Page(reader.elements, " ".join("".join(reader.parts).split()))
