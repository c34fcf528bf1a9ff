"""Procedurally drawn scenes for the synthetic demo data set.

A :class:`Scene` holds two flat, outlined geometric objects -- a *main*
object and a smaller *minor* object of a different shape and colour -- plus
their spatial layout, an atmosphere (the background / time of day) and an
action that is drawn visibly.  :func:`sample_scene` draws a scene from a
``random.Random``; :func:`render` paints it with PIL.  Both are fully
deterministic: every random detail of the picture (jitter, tilt, star and
rain positions) is stored in the scene itself.

Vocabularies (all attributes are plain strings):

* ``SHAPES``: the main object's shape is the zero-shot class.
* ``COLOURS``: named palette with RGB values.
* ``PATTERNS``: solid, striped, dotted, checkered, gradient (coarse enough to
  be visible at 64 px; the second tone is a lighter or darker shade of the
  object's colour, see :func:`pattern_shade`).
* ``SIZES``: tiny, small, medium, large on one absolute scale
  (``SIZE_RADIUS``).  The main object is small, medium or large; the minor
  object gets a strictly smaller size, so it is always the smaller one.
* ``LAYOUTS``: where the main object is relative to the minor one: ``left``
  (main to the left of minor), ``right``, ``above``, ``below`` and ``front``
  (main overlaps / is in front of minor).
* ``ATMOSPHERES``: day (sky-blue gradient), night (dark, with stars), sunset
  (purple-to-orange gradient), fog (grey washed-out overlay), rain (grey sky
  with slanted rain streaks).
* ``ACTIONS``: ``moving fast`` (motion streaks and after-images behind the
  main object), ``falling`` (tilted, with drop lines above it),
  ``colliding`` (the objects touch, an impact burst marks the contact),
  ``bouncing`` (dotted bounce arc and a shadow on the ground), ``spinning``
  (two curved arrows around it), ``resting`` (flat shadow on a ground line).

Pictures are drawn at ``SUPERSAMPLE`` times the requested size and
downsampled with LANCZOS, so they are anti-aliased at 64 px as well as 224 px.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter

RGB = tuple[int, int, int]
Point = tuple[float, float]

SUPERSAMPLE = 4

COLOURS: dict[str, RGB] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (245, 215, 40),
    "green": (50, 170, 70),
    "teal": (20, 150, 150),
    "blue": (40, 90, 220),
    "purple": (140, 60, 190),
    "pink": (240, 120, 180),
    "brown": (130, 80, 40),
    "white": (245, 245, 245),
}
PATTERNS = ("solid", "striped", "dotted", "checkered", "gradient")
SIZES = ("tiny", "small", "medium", "large")
LAYOUTS = ("left", "right", "above", "below", "front")
ATMOSPHERES = ("day", "night", "sunset", "fog", "rain")
ACTIONS = ("moving fast", "falling", "colliding", "bouncing", "spinning", "resting")

SIZE_RADIUS = {"tiny": 0.07, "small": 0.11, "medium": 0.15, "large": 0.2}  # fraction of the image side
GAP = 0.08  # space between the objects when they do not touch
JITTER = 0.05
TILT_RANGES = {"falling": (20.0, 35.0), "spinning": (10.0, 40.0), "resting": (0.0, 0.0)}
DEFAULT_TILT_RANGE = (-8.0, 8.0)

# Unit vector from the main object's centre towards the minor object's centre.
LAYOUT_DIRECTIONS: dict[str, Point] = {
    "left": (1.0, 0.0),
    "right": (-1.0, 0.0),
    "above": (0.0, 1.0),
    "below": (0.0, -1.0),
    "front": (math.sqrt(0.5), -math.sqrt(0.5)),
}


def _regular_polygon(sides: int, start_deg: float = -90.0, dy: float = 0.0) -> tuple[Point, ...]:
    """Vertices of a regular polygon inscribed in the unit circle."""
    step = 2 * math.pi / sides
    start = math.radians(start_deg)
    return tuple((math.cos(start + i * step), math.sin(start + i * step) + dy) for i in range(sides))


def _star_polygon(points: int = 5, inner: float = 0.45) -> tuple[Point, ...]:
    """Vertices of a star with ``points`` spikes, alternating outer and inner radius."""
    vertices = []
    for i in range(2 * points):
        radius = 1.0 if i % 2 == 0 else inner
        angle = -math.pi / 2 + i * math.pi / points
        vertices.append((radius * math.cos(angle), radius * math.sin(angle) + 0.08))
    return tuple(vertices)


def _heart_polygon(steps: int = 60) -> tuple[Point, ...]:
    """Vertices of the classic parametric heart curve, scaled into the unit square."""
    vertices = []
    for i in range(steps):
        t = 2 * math.pi * i / steps
        x = 16 * math.sin(t) ** 3
        y = -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t))
        vertices.append((x / 16.5, (y - 2.5) / 15.0))
    return tuple(vertices)


# Drawing operations per shape in [-1, 1] unit coordinates: (ImageDraw method,
# mask value, points).  Value 255 adds to the shape's mask, 0 cuts a hole.
ShapeOp = tuple[str, int, tuple[Point, ...]]
_FULL_DISC: ShapeOp = ("ellipse", 255, ((-1.0, -1.0), (1.0, 1.0)))
SHAPE_OPS: dict[str, tuple[ShapeOp, ...]] = {
    "circle": (_FULL_DISC,),
    "square": (("polygon", 255, ((-0.82, -0.82), (0.82, -0.82), (0.82, 0.82), (-0.82, 0.82))),),
    "triangle": (("polygon", 255, _regular_polygon(3, dy=0.2)),),
    "star": (("polygon", 255, _star_polygon()),),
    "heart": (("polygon", 255, _heart_polygon()),),
    "hexagon": (("polygon", 255, _regular_polygon(6, start_deg=0.0)),),
    "cross": (
        (
            "polygon",
            255,
            (
                (-0.32, -1.0), (0.32, -1.0), (0.32, -0.32), (1.0, -0.32), (1.0, 0.32), (0.32, 0.32),
                (0.32, 1.0), (-0.32, 1.0), (-0.32, 0.32), (-1.0, 0.32), (-1.0, -0.32), (-0.32, -0.32),
            ),
        ),
    ),
    "ring": (_FULL_DISC, ("ellipse", 0, ((-0.5, -0.5), (0.5, 0.5)))),
    "diamond": (("polygon", 255, ((0.0, -1.0), (0.68, 0.0), (0.0, 1.0), (-0.68, 0.0))),),
    "crescent": (_FULL_DISC, ("ellipse", 0, ((-0.4, -1.1), (1.3, 0.6)))),
    "arrow": (
        (
            "polygon",
            255,
            ((-1.0, -0.28), (0.2, -0.28), (0.2, -0.72), (1.0, 0.0), (0.2, 0.72), (0.2, 0.28), (-1.0, 0.28)),
        ),
    ),
    "pentagon": (("polygon", 255, _regular_polygon(5, dy=0.1)),),
}
SHAPES = tuple(SHAPE_OPS)


@dataclass(frozen=True)
class SceneObject:
    """One drawn object: shape category, palette colour, surface pattern and size."""

    shape: str
    colour: str
    pattern: str
    size: str


@dataclass(frozen=True)
class Scene:
    """Everything needed to draw (and describe) one picture deterministically."""

    main: SceneObject
    minor: SceneObject
    layout: str
    atmosphere: str
    action: str
    tilt: float  # degrees, counter-clockwise, applied to the main object
    jitter: Point  # offset of the object pair, fraction of the image side
    detail_seed: int  # seeds star and rain positions

    def attributes(self) -> dict[str, str]:
        """The semantic attributes as a flat dict of plain strings."""
        flat = {"layout": self.layout, "atmosphere": self.atmosphere, "action": self.action}
        for role, obj in (("main", self.main), ("minor", self.minor)):
            for field in ("shape", "colour", "pattern", "size"):
                flat[f"{role}_{field}"] = getattr(obj, field)
        flat["dominant_colour"] = dominant_colour(self)
        return flat


def _sample_object(
    rng: random.Random, shapes: tuple[str, ...], colours: tuple[str, ...], sizes: tuple[str, ...]
) -> SceneObject:
    """Draw one object's attributes from the given choices."""
    shape = rng.choice(shapes)
    colour = rng.choice(colours)
    pattern = rng.choice(PATTERNS)
    return SceneObject(shape, colour, pattern, rng.choice(sizes))


def sample_scene(rng: random.Random, main_shape: str | None = None) -> Scene:
    """Draw a random scene; ``main_shape`` forces the main object's category."""
    if main_shape is not None and main_shape not in SHAPE_OPS:
        raise ValueError(f"unknown shape {main_shape!r}; expected one of {SHAPES}")
    main = _sample_object(rng, (main_shape,) if main_shape else SHAPES, tuple(COLOURS), SIZES[1:])
    minor = _sample_object(
        rng,
        tuple(s for s in SHAPES if s != main.shape),
        tuple(c for c in COLOURS if c != main.colour),
        SIZES[: SIZES.index(main.size)],
    )
    layout = rng.choice(LAYOUTS)
    atmosphere = rng.choice(ATMOSPHERES)
    action = rng.choice(ACTIONS)
    low, high = TILT_RANGES.get(action, DEFAULT_TILT_RANGE)
    tilt = rng.uniform(low, high) * rng.choice((-1, 1))
    jitter = (rng.uniform(-JITTER, JITTER), rng.uniform(-JITTER, JITTER))
    return Scene(main, minor, layout, atmosphere, action, tilt, jitter, rng.getrandbits(32))


def _mix(colour: RGB, other: RGB, amount: float) -> RGB:
    """Linear blend ``amount`` of the way from ``colour`` to ``other``."""
    return tuple(round(a + (b - a) * amount) for a, b in zip(colour, other))  # type: ignore[return-value]


def _is_light(colour: RGB) -> bool:
    """Whether a colour is light enough that its pattern tone must be darker."""
    r, g, b = colour
    return 0.299 * r + 0.587 * g + 0.114 * b > 150


def pattern_shade(colour: str) -> str:
    """``"lighter"`` or ``"darker"``: the second tone used in the colour's patterns."""
    return "darker" if _is_light(COLOURS[colour]) else "lighter"


def _tint(colour: RGB) -> RGB:
    """The second pattern tone for a colour (see :func:`pattern_shade`)."""
    return _mix(colour, (0, 0, 0), 0.4) if _is_light(colour) else _mix(colour, (255, 255, 255), 0.55)


# ---------------------------------------------------------------- patterns --

PatternPainter = Callable[[Image.Image, RGB, float], None]


def _paint_solid(image: Image.Image, tint: RGB, cell: float) -> None:
    """Leave the base colour untouched."""


def _paint_stripes(image: Image.Image, tint: RGB, cell: float) -> None:
    """Broad 45-degree stripes, one ``cell`` wide (measured horizontally)."""
    draw = ImageDraw.Draw(image)
    side = image.width
    x = -float(side)
    while x < side:
        draw.polygon([(x, 0), (x + cell, 0), (x + cell + side, side), (x + side, side)], fill=tint)
        x += 2 * cell


def _paint_dots(image: Image.Image, tint: RGB, cell: float) -> None:
    """Large round dots on a staggered grid."""
    draw = ImageDraw.Draw(image)
    spacing, radius = 1.25 * cell, 0.38 * cell
    for row in range(int(image.height / spacing) + 2):
        shift = spacing / 2 if row % 2 else 0.0
        for col in range(int(image.width / spacing) + 2):
            x, y = col * spacing + shift, row * spacing
            draw.ellipse([(x - radius, y - radius), (x + radius, y + radius)], fill=tint)


def _paint_checks(image: Image.Image, tint: RGB, cell: float) -> None:
    """A checkerboard of ``cell``-sized squares."""
    draw = ImageDraw.Draw(image)
    count = int(image.width / cell) + 1
    for row in range(count):
        for col in range(row % 2, count, 2):
            draw.rectangle([(col * cell, row * cell), ((col + 1) * cell, (row + 1) * cell)], fill=tint)


def _paint_gradient(image: Image.Image, tint: RGB, cell: float) -> None:
    """A left-to-right fade from the base colour to the tint."""
    ramp = Image.linear_gradient("L").rotate(90).resize(image.size, Image.BILINEAR)
    image.paste(Image.composite(Image.new("RGB", image.size, tint), image, ramp))


PATTERN_PAINTERS: dict[str, PatternPainter] = {
    "solid": _paint_solid,
    "striped": _paint_stripes,
    "dotted": _paint_dots,
    "checkered": _paint_checks,
    "gradient": _paint_gradient,
}


# ----------------------------------------------------------------- objects --


def _line_width(side: int) -> int:
    """Stroke width for outlines and decorations on a ``side``-pixel canvas."""
    return max(2, round(side / 110))


def _object_layer(obj: SceneObject, radius: float, tilt: float, side: int) -> Image.Image:
    """The object as an RGBA sprite: patterned fill, dark outline, rotated by ``tilt``."""
    outline_width = _line_width(side) | 1  # MaxFilter needs an odd size
    pad = outline_width + 2
    extent = 2 * math.ceil(radius) + 2 * pad
    centre = extent / 2
    mask = Image.new("L", (extent, extent), 0)
    draw = ImageDraw.Draw(mask)
    for method, value, points in SHAPE_OPS[obj.shape]:
        getattr(draw, method)([(centre + x * radius, centre + y * radius) for x, y in points], fill=value)
    base = COLOURS[obj.colour]
    fill = Image.new("RGB", (extent, extent), base)
    PATTERN_PAINTERS[obj.pattern](fill, _tint(base), max(radius * 0.5, side / 24))
    layer = Image.new("RGBA", (extent, extent), (0, 0, 0, 0))
    outline = mask.filter(ImageFilter.MaxFilter(outline_width))
    layer.paste(_mix(base, (0, 0, 0), 0.6) + (255,), (0, 0, extent, extent), outline)
    layer.paste(fill, (0, 0), mask)
    return layer.rotate(tilt, resample=Image.BICUBIC, expand=True) if tilt else layer


def _paste(canvas: Image.Image, layer: Image.Image, centre: Point, alpha: Image.Image | None = None) -> None:
    """Paste an RGBA sprite centred at ``centre``, optionally with another alpha mask."""
    x, y = centre
    canvas.paste(layer, (round(x - layer.width / 2), round(y - layer.height / 2)), alpha or layer)


# ------------------------------------------------------------------ frames --


@dataclass
class _Frame:
    """A canvas being painted, with the object placement in pixels."""

    canvas: Image.Image
    draw: ImageDraw.ImageDraw
    ink: RGB  # decoration colour that contrasts with the background
    main_xy: Point
    main_r: float
    minor_xy: Point
    minor_r: float
    toward: Point  # unit vector from the main to the minor object
    main_layer: Image.Image
    rng: random.Random  # star and rain positions

    @property
    def side(self) -> int:
        """Canvas side in pixels."""
        return self.canvas.width

    @property
    def trail(self) -> int:
        """Horizontal side (-1 left, +1 right) facing away from the minor object."""
        return -1 if self.toward[0] >= 0 else 1

    @property
    def width(self) -> int:
        """Stroke width for decorations."""
        return _line_width(self.side)


def _placement(scene: Scene) -> tuple[Point, float, Point, float]:
    """Centres and radii (fractions of the side) of the main and minor objects."""
    main_r = SIZE_RADIUS[scene.main.size]
    minor_r = SIZE_RADIUS[scene.minor.size]
    if scene.layout == "front":
        distance = main_r + 0.1 * minor_r
    elif scene.action == "colliding":
        distance = 0.92 * (main_r + minor_r)
    else:
        distance = main_r + minor_r + GAP
    dx, dy = LAYOUT_DIRECTIONS[scene.layout]
    offset = (distance + minor_r - main_r) / 2  # centres the pair's extent on the canvas
    main_xy = (0.5 - dx * offset + scene.jitter[0], 0.5 - dy * offset + scene.jitter[1])
    minor_xy = (main_xy[0] + dx * distance, main_xy[1] + dy * distance)
    return main_xy, main_r, minor_xy, minor_r


# ----------------------------------------------------------------- actions --


def _paint_motion(f: _Frame) -> None:
    """Speed lines and fading after-images behind the main object."""
    (x, y), r, s = f.main_xy, f.main_r, f.trail
    for dy, length in ((-0.5, 1.3), (0.0, 1.8), (0.5, 1.1)):
        start = (x + s * 0.8 * r, y + dy * r)
        f.draw.line([start, (start[0] + s * length * r, start[1])], fill=f.ink + (210,), width=f.width)
    alpha = f.main_layer.getchannel("A")
    for steps, fade in ((2, 0.2), (1, 0.4)):
        ghost = alpha.point(lambda a, fade=fade: round(a * fade))
        _paste(f.canvas, f.main_layer, (x + s * steps * 0.45 * r, y), ghost)


def _paint_fall(f: _Frame) -> None:
    """Vertical drop lines above the (tilted) main object."""
    (x, y), r = f.main_xy, f.main_r
    for dx, length in ((-0.45, 0.8), (0.0, 1.1), (0.45, 0.7)):
        top = y - (0.6 + length) * r
        f.draw.line([(x + dx * r, y - 0.6 * r), (x + dx * r, top)], fill=f.ink + (210,), width=f.width)


def _spiky_polygon(centre: Point, outer: float, inner: float, spikes: int) -> list[Point]:
    """A starburst polygon around ``centre``."""
    cx, cy = centre
    return [
        (cx + rad * math.cos(math.pi * i / spikes), cy + rad * math.sin(math.pi * i / spikes))
        for i, rad in enumerate([outer, inner] * spikes)
    ]


def _paint_burst(f: _Frame) -> None:
    """A yellow impact burst where the two objects touch."""
    (x, y), r, (tx, ty) = f.main_xy, f.main_r, f.toward
    outer = max(0.4 * r, f.side / 22)
    burst = _spiky_polygon((x + tx * 0.95 * r, y + ty * 0.95 * r), outer, 0.5 * outer, 9)
    f.draw.polygon(burst, fill=(255, 228, 60), outline=(215, 70, 20), width=f.width)


def _paint_bounce(f: _Frame) -> None:
    """A shadow on the ground and a dashed parabolic arc back to the last bounce."""
    (x, y), r, s = f.main_xy, f.main_r, f.trail
    ground = y + 1.45 * r
    f.draw.ellipse([(x - 0.65 * r, ground - 0.14 * r), (x + 0.65 * r, ground + 0.14 * r)], fill=(0, 0, 0, 80))
    arc = [(x + s * t * 2.4 * r, y + (ground - y) * t * t) for t in (i / 16 for i in range(6, 17))]
    for start, end in zip(arc[::2], arc[1::2]):
        f.draw.line([start, end], fill=f.ink + (230,), width=f.width)
    land = x + s * 2.4 * r
    for dx in (-0.22, 0.0, 0.22):
        tick = [(land + dx * r, ground - 0.12 * r), (land + 2 * dx * r, ground - 0.4 * r)]
        f.draw.line(tick, fill=f.ink + (230,), width=f.width)


def _arrowhead(centre: Point, radius: float, angle_deg: float, size: float) -> list[Point]:
    """A triangle at the end of a clockwise arc, pointing along its tangent."""
    a = math.radians(angle_deg)
    nx, ny = math.cos(a), math.sin(a)
    tx, ty = -ny, nx
    px, py = centre[0] + radius * nx, centre[1] + radius * ny
    return [
        (px + tx * size, py + ty * size),
        (px - tx * 0.2 * size + nx * 0.6 * size, py - ty * 0.2 * size + ny * 0.6 * size),
        (px - tx * 0.2 * size - nx * 0.6 * size, py - ty * 0.2 * size - ny * 0.6 * size),
    ]


def _paint_spin(f: _Frame) -> None:
    """Two curved arrows circling the main object."""
    (x, y), radius = f.main_xy, 1.3 * f.main_r
    head = max(0.3 * f.main_r, f.side / 22)
    for start in (200.0, 20.0):
        box = [(x - radius, y - radius), (x + radius, y + radius)]
        f.draw.arc(box, start, start + 100, fill=f.ink, width=round(1.4 * f.width))
        f.draw.polygon(_arrowhead((x, y), radius, start + 100, head), fill=f.ink)


def _paint_rest(f: _Frame) -> None:
    """A flat shadow on a thin ground line right under the main object."""
    (x, y), r = f.main_xy, f.main_r
    ground = y + 0.95 * r
    f.draw.line([(x - 2.2 * r, ground), (x + 2.2 * r, ground)], fill=f.ink + (170,), width=f.width)
    f.draw.ellipse([(x - 0.85 * r, ground - 0.15 * r), (x + 0.85 * r, ground + 0.15 * r)], fill=(0, 0, 0, 90))


# action -> (painter, drawn in front of the objects?)
ACTION_PAINTERS: dict[str, tuple[Callable[[_Frame], None], bool]] = {
    "moving fast": (_paint_motion, False),
    "falling": (_paint_fall, False),
    "colliding": (_paint_burst, True),
    "bouncing": (_paint_bounce, False),
    "spinning": (_paint_spin, True),
    "resting": (_paint_rest, False),
}


# ------------------------------------------------------------- atmospheres --


def _paint_stars(f: _Frame) -> None:
    """Small pale stars scattered over the night sky."""
    for _ in range(45):
        x, y = f.rng.uniform(0, f.side), f.rng.uniform(0, f.side)
        radius = f.rng.uniform(f.side / 150, f.side / 85)
        f.draw.ellipse([(x - radius, y - radius), (x + radius, y + radius)], fill=(255, 255, 225, 230))


def _paint_fog(f: _Frame) -> None:
    """A translucent grey veil that washes out the whole picture."""
    f.draw.rectangle([(0, 0), (f.side, f.side)], fill=(212, 214, 218, 120))


def _paint_rain(f: _Frame) -> None:
    """Slanted translucent rain streaks over the whole picture."""
    width = max(2, f.side // 160)
    for _ in range(70):
        x, y = f.rng.uniform(-0.1, 1.1) * f.side, f.rng.uniform(-0.1, 1.0) * f.side
        length = f.rng.uniform(0.05, 0.09) * f.side
        f.draw.line([(x, y), (x - 0.3 * length, y + length)], fill=(215, 225, 245, 160), width=width)


@dataclass(frozen=True)
class Backdrop:
    """How an atmosphere looks: sky gradient, decoration ink and extra effects."""

    top: RGB
    bottom: RGB
    gamma: float  # < 1 lets the bottom colour dominate
    ink: RGB
    colour_name: str  # the image's dominant colour
    before: Callable[[_Frame], None] | None = None  # painted under the objects
    after: Callable[[_Frame], None] | None = None  # painted over everything


BACKDROPS: dict[str, Backdrop] = {
    "day": Backdrop((120, 190, 245), (225, 240, 252), 1.0, (50, 60, 90), "light blue"),
    "night": Backdrop((8, 12, 35), (30, 38, 80), 1.0, (225, 230, 255), "dark navy blue", before=_paint_stars),
    "sunset": Backdrop((110, 50, 140), (255, 150, 60), 0.45, (70, 25, 70), "orange"),
    "fog": Backdrop((175, 180, 185), (215, 217, 220), 1.0, (80, 85, 95), "pale grey", after=_paint_fog),
    "rain": Backdrop((85, 95, 110), (140, 150, 160), 1.0, (230, 235, 245), "slate grey", after=_paint_rain),
}


def dominant_colour(scene: Scene) -> str:
    """Name of the colour covering most of the picture (the background's)."""
    return BACKDROPS[scene.atmosphere].colour_name


def _sky(side: int, backdrop: Backdrop) -> Image.Image:
    """A vertical top-to-bottom gradient background."""
    ramp = Image.linear_gradient("L")
    if backdrop.gamma != 1.0:
        ramp = ramp.point(lambda v: round(255 * (v / 255) ** backdrop.gamma))
    ramp = ramp.resize((side, side), Image.BILINEAR)
    bottom, top = Image.new("RGB", (side, side), backdrop.bottom), Image.new("RGB", (side, side), backdrop.top)
    return Image.composite(bottom, top, ramp)


def render(scene: Scene, size: int) -> Image.Image:
    """Draw ``scene`` as a ``size`` x ``size`` RGB image."""
    if size < 16:
        raise ValueError(f"image size must be at least 16 px, got {size}")
    side = size * SUPERSAMPLE
    backdrop = BACKDROPS[scene.atmosphere]
    canvas = _sky(side, backdrop)
    (mx, my), main_r, (nx, ny), minor_r = _placement(scene)
    frame = _Frame(
        canvas=canvas,
        draw=ImageDraw.Draw(canvas, "RGBA"),
        ink=backdrop.ink,
        main_xy=(mx * side, my * side),
        main_r=main_r * side,
        minor_xy=(nx * side, ny * side),
        minor_r=minor_r * side,
        toward=LAYOUT_DIRECTIONS[scene.layout],
        main_layer=_object_layer(scene.main, main_r * side, scene.tilt, side),
        rng=random.Random(scene.detail_seed),
    )
    painter, in_front = ACTION_PAINTERS[scene.action]
    under = [backdrop.before] + ([] if in_front else [painter])
    over = ([painter] if in_front else []) + [backdrop.after]
    for step in filter(None, under):
        step(frame)
    _paste(canvas, _object_layer(scene.minor, frame.minor_r, 0.0, side), frame.minor_xy)
    _paste(canvas, frame.main_layer, frame.main_xy)
    for step in filter(None, over):
        step(frame)
    return canvas.resize((size, size), Image.LANCZOS)
