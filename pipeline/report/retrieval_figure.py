"""The retrieval figure (the paper's Fig. D2): for the first query texts of one retrieval benchmark, each model's top
images, best first, the query's own image framed green and any other red, with the rank numbers above the columns.

Drawn from the rankings the benchmark's evaluate jobs recorded (``rankings`` of :mod:`pipeline.io.results`); the
images are re-read by index with the evaluate stage's own reader of the benchmark's format, so no model runs again.
A recorded file that the reader now finds elsewhere (the benchmark changed since it was evaluated) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from pipeline.evaluate.benchmarks import FORMATS, Request
from pipeline.evaluate.readers import image_file
from pipeline.io.atomic import atomic_path
from pipeline.io.results import model_name

THUMB = 112  # pixels: the side of one drawn image
FRAME = 4  # pixels: the right/wrong frame around it
GAP = 8  # pixels between columns, rows and the figure's edge
LABEL_WIDTH = 150  # pixels: the model names' column
FONT_SIZE = 13
LINE = FONT_SIZE + 5  # pixels per line of text
QUERY_LINES = 4  # lines of query text at most; a longer text is cut at a word, with an ellipsis
RIGHT, WRONG = (0, 170, 0), (220, 0, 0)
BACKGROUND, INK = (255, 255, 255), (0, 0, 0)


@dataclass(frozen=True)
class Grid:
    """Where everything goes for ``models`` x ``queries`` rows of ``top`` images: per query a group of its text
    (:data:`QUERY_LINES` lines), a line of rank numbers and one row per model; sizes in pixels."""

    models: int
    queries: int
    top: int

    cell = THUMB + 2 * FRAME

    @property
    def group_height(self) -> int:
        return (QUERY_LINES + 1) * LINE + self.models * (self.cell + GAP) + GAP

    @property
    def size(self) -> tuple[int, int]:
        return GAP + LABEL_WIDTH + self.top * (self.cell + GAP), GAP + self.queries * self.group_height

    def text_origin(self, query: int) -> tuple[int, int]:
        return GAP, GAP + query * self.group_height

    def frame_box(self, query: int, model: int, rank: int) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)``, inclusive, of the frame of the ``rank``-th image (0-based) of ``model`` for
        ``query``; the image lies :data:`FRAME` pixels inside it."""
        x = GAP + LABEL_WIDTH + rank * (self.cell + GAP)
        y = self.text_origin(query)[1] + (QUERY_LINES + 1) * LINE + model * (self.cell + GAP)
        return x, y, x + self.cell - 1, y + self.cell - 1


def figure_rankings(results: list[dict], benchmark: str, language: str = "en") -> list[tuple[str, dict]]:
    """``(model name, rankings)`` of every result of ``benchmark`` in ``language`` that records rankings, in the
    results' order; raises naming the benchmark when none does, or naming the models when they ranked different
    queries or read different data."""
    found = [(model_name(r), r["rankings"]) for r in results
             if r["dataset"] == benchmark and r.get("language", "en") == language and r.get("rankings")]
    if not found:
        raise ValueError(f"retrieval figure: no result of benchmark {benchmark!r} ({language}) records rankings "
                         "(its evaluate jobs run with --rank-queries)")
    first_model, first = found[0]

    def what(rankings: dict) -> tuple:
        return rankings["format"], rankings["data"], [q["text"] for q in rankings["queries"]]

    for model, rankings in found[1:]:
        if what(rankings) != what(first):
            raise ValueError(f"retrieval figure: {model} and {first_model} ranked different queries or data of "
                             f"{benchmark!r} ((format, data, texts) {what(rankings)} vs {what(first)}): evaluate "
                             "them on the same data")
    return found


def load_images(ranked: list[tuple[str, dict]], language: str) -> dict[int, Image.Image]:
    """The benchmark's images that :func:`figure_rankings`' ``ranked`` name (by the reader's index), read once with
    the format's reader; raises naming the image when the reader finds another file at that index or cannot
    decode it."""
    rankings = ranked[0][1]
    images = FORMATS[rankings["format"]].read(Request(Path(rankings["data"]), language)).images
    named = [pair for _, mine in ranked for query in mine["queries"]
             for pair in [(query["image"], query["file"]), *zip(query["top"], query["top_files"])]]
    loaded = {}
    for index, recorded in named:
        if recorded is not None and image_file(images, index) != recorded:
            raise ValueError(f"retrieval figure: image {index} of {rankings['data']} is "
                             f"{image_file(images, index)} now, {recorded} when it was evaluated: evaluate again")
        if index not in loaded:
            image, _ = images[index]
            if image is None:
                raise ValueError(f"retrieval figure: image {index} ({recorded or rankings['data']}) is unreadable "
                                 "now")
            loaded[index] = image.convert("RGB")
    return loaded


def wrap(text: str, font, width: int, lines: int = QUERY_LINES) -> list[str]:
    """``text`` broken at spaces into at most ``lines`` lines of at most ``width`` pixels (a word longer than a
    line stands alone); a cut text ends its last line with an ellipsis."""
    out: list[str] = []
    for word in text.split():
        if out and font.getlength(f"{out[-1]} {word}") <= width:
            out[-1] = f"{out[-1]} {word}"
        else:
            out.append(word)
    if len(out) <= lines:
        return out
    last = out[lines - 1].split()
    while len(last) > 1 and font.getlength(" ".join(last) + " …") > width:
        last.pop()
    return [*out[:lines - 1], " ".join(last) + " …"]


def _thumbnail(image: Image.Image) -> Image.Image:
    """``image`` scaled to fit a :data:`THUMB` square, centred on the background."""
    scale = THUMB / max(image.size)
    resized = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                           Image.Resampling.BICUBIC)
    square = Image.new("RGB", (THUMB, THUMB), BACKGROUND)
    square.paste(resized, ((THUMB - resized.width) // 2, (THUMB - resized.height) // 2))
    return square


def draw_figure(ranked: list[tuple[str, dict]], images: dict[int, Image.Image]) -> Image.Image:
    """The figure of :func:`figure_rankings`' ``ranked`` with the ``images`` they name (by index)."""
    queries = ranked[0][1]["queries"]
    grid = Grid(len(ranked), len(queries), max(r["top"] for _, r in ranked))
    font = ImageFont.load_default(size=FONT_SIZE)
    figure = Image.new("RGB", grid.size, BACKGROUND)
    draw = ImageDraw.Draw(figure)
    for q, query in enumerate(queries):
        x, y = grid.text_origin(q)
        text = f"Query (text {query['text']}): {query['caption']}"
        for line, words in enumerate(wrap(text, font, grid.size[0] - 2 * GAP)):
            draw.text((x, y + line * LINE), words, fill=INK, font=font)
        for rank in range(grid.top):
            x0, y0, x1, _ = grid.frame_box(q, 0, rank)
            draw.text(((x0 + x1) / 2, y0 - LINE / 2), f"{rank + 1}", fill=INK, font=font, anchor="mm")
        for m, (model, rankings) in enumerate(ranked):
            mine = rankings["queries"][q]
            _, y0, _, _ = grid.frame_box(q, m, 0)
            draw.text((GAP, y0 + grid.cell / 2 - LINE / 2), model, fill=INK, font=font, anchor="lm")
            draw.text((GAP, y0 + grid.cell / 2 + LINE / 2), f"own image: #{mine['rank']}", fill=INK, font=font,
                      anchor="lm")
            for rank, index in enumerate(mine["top"]):
                box = grid.frame_box(q, m, rank)
                draw.rectangle(box, fill=RIGHT if index == mine["image"] else WRONG)
                figure.paste(_thumbnail(images[index]), (box[0] + FRAME, box[1] + FRAME))
    return figure


def write_retrieval_figure(results: list[dict], benchmark: str, language: str, path: Path) -> None:
    """Draw the retrieval figure of ``benchmark`` in ``language`` from ``results`` and write it to the PNG
    ``path`` atomically."""
    ranked = figure_rankings(results, benchmark, language)
    figure = draw_figure(ranked, load_images(ranked, language))
    with atomic_path(path) as tmp:
        figure.save(tmp, format="PNG")
