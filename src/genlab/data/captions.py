"""Captions for class-labelled images: many phrasings per class, and held-out phrasings training never sees.

A caption is a template filled with one of the class's names: ``"a handwritten {d}"`` -> ``"a handwritten 7"``,
``"the digit {w}"`` -> ``"the digit seven"``. Training draws a random training caption of the image's class at
every step; the held-out templates (different wording, same classes) measure whether the text encoder carries
the meaning to phrasings the image model never saw.
"""

from __future__ import annotations

from dataclasses import dataclass

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

DIGIT_TRAIN = (
    "a handwritten {d}",
    "the digit {w}",
    "number {w}, written by hand",
    "{d}",
    "{w}",
    "the number {d}",
    "an image of the digit {d}",
    "a picture of the number {w}",
    "digit {d}",
    "a scribbled {w}",
    "handwritten number {w}",
    "the numeral {d}",
    "a black and white {d}",
    "a drawing of a {w}",
    "an ink {w} on white paper",
    "someone wrote the digit {d}",
)
DIGIT_HELDOUT = (
    "a sketch of the number {w}",
    "please draw a {d}",
    "the handwritten digit {w}",
    "a neat {w}",
    "{w}, drawn with a pen",
)

FASHION_NAMES = (
    ("t-shirt", "tee", "top"),
    ("pair of trousers", "pair of pants", "pair of jeans"),
    ("pullover", "sweater", "jumper"),
    ("dress", "summer dress", "gown"),
    ("coat", "jacket", "winter coat"),
    ("sandal", "flip-flop", "open shoe"),
    ("shirt", "button-up shirt", "blouse"),
    ("sneaker", "running shoe", "trainer"),
    ("bag", "handbag", "purse"),
    ("ankle boot", "boot", "leather boot"),
)
FASHION_TRAIN = (
    "a {n}",
    "a photo of a {n}",
    "a picture of a {n}",
    "{n}",
    "a product photo of a {n}",
    "a grey {n}",
    "an image of a {n}",
    "a small picture of a {n}",
)
FASHION_HELDOUT = ("a catalogue shot of a {n}", "show me a {n}", "a {n} on a plain background")


@dataclass(frozen=True)
class Captions:
    """Every caption of a dataset, with its class and whether it is a training or a held-out phrasing."""

    texts: tuple[str, ...]
    labels: tuple[int, ...]
    heldout: tuple[bool, ...]

    def of(self, label: int, heldout: bool = False) -> list[int]:
        """Indices of the captions of class ``label`` (training or held-out phrasings)."""
        return [i for i, (y, h) in enumerate(zip(self.labels, self.heldout)) if y == label and h == heldout]

    def first(self, label: int, heldout: bool = False) -> str:
        return self.texts[self.of(label, heldout)[0]]

    def label_of(self, text: str) -> int | None:
        """The class a prompt names, if it is one of these captions (else None)."""
        try:
            return self.labels[self.texts.index(text)]
        except ValueError:
            return None


def _article(text: str) -> str:
    """'a eight' -> 'an eight'; 'a ankle boot' -> 'an ankle boot'."""
    out = []
    words = text.split(" ")
    for i, word in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        out.append("an" if word == "a" and nxt[:1] in tuple("aeiou8") else word)
    return " ".join(out)


def make_captions(dataset: str, num_classes: int = 10) -> Captions:
    """The captions of ``dataset`` (``fashion`` gets clothing names, every other set digit words)."""
    texts, labels, heldout = [], [], []

    def add(text: str, y: int, h: bool) -> None:
        text = _article(text)
        if text not in texts:
            texts.append(text)
            labels.append(y)
            heldout.append(h)

    for y in range(num_classes):
        if dataset == "fashion":
            names = FASHION_NAMES[y]
            for h, templates in ((False, FASHION_TRAIN), (True, FASHION_HELDOUT)):
                for tpl in templates:
                    for n in names:
                        add(tpl.format(n=n), y, h)
        else:
            for h, templates in ((False, DIGIT_TRAIN), (True, DIGIT_HELDOUT)):
                for tpl in templates:
                    add(tpl.format(d=y, w=WORDS[y]), y, h)
    return Captions(tuple(texts), tuple(labels), tuple(heldout))


# ------------------------------------------------------------------------------------ 2x2 canvases

QUADRANTS = ("top left", "top right", "bottom left", "bottom right")
CANVAS_TEMPLATES = ("a {d} in the {q}", "the digit {w} in the {q}", "{w} at the {q}")


@dataclass(frozen=True)
class CanvasCaptions:
    """Prompts for 2x2 canvases that name the digit of one or two quadrants ("a 3 in the top left and a 7 in
    the bottom right"); the unnamed quadrants are free. ``named[i]`` holds the class each quadrant of caption
    ``i`` must show (top left, top right, bottom left, bottom right), -1 where the caption says nothing."""

    texts: tuple[str, ...]
    named: tuple[tuple[int, int, int, int], ...]

    def index(self, parts: list[tuple[int, int]], template: int = 0) -> int:
        """The index of the caption naming ``parts`` (quadrant, class) in that order, with ``template``."""
        return self._lookup[canvas_caption(parts, template)]

    @property
    def _lookup(self) -> dict[str, int]:
        cache = self.__dict__.get("_lookup_cache")
        if cache is None:
            cache = {t: i for i, t in enumerate(self.texts)}
            object.__setattr__(self, "_lookup_cache", cache)
        return cache


def canvas_caption(parts: list[tuple[int, int]], template: int = 0) -> str:
    """``[(0, 3), (3, 7)]`` -> "a 3 in the top left and a 7 in the bottom right" (digit classes)."""
    tpl = CANVAS_TEMPLATES[template]
    return " and ".join(_article(tpl.format(d=d, w=WORDS[d], q=QUADRANTS[q])) for q, d in parts)


def make_canvas_captions(num_classes: int = 10) -> CanvasCaptions:
    """Every caption naming one quadrant, or two different quadrants in either order, in every template
    (3 x (40 + 1200) = 3720 for ten digits)."""
    texts, named = [], []
    for template in range(len(CANVAS_TEMPLATES)):
        picks = [[(q, d)] for q in range(4) for d in range(num_classes)]
        picks += [
            [(q1, d1), (q2, d2)]
            for q1 in range(4)
            for q2 in range(4)
            if q1 != q2
            for d1 in range(num_classes)
            for d2 in range(num_classes)
        ]
        for parts in picks:
            row = [-1] * 4
            for q, d in parts:
                row[q] = d
            texts.append(canvas_caption(parts, template))
            named.append(tuple(row))
    return CanvasCaptions(tuple(texts), tuple(named))
