"""Captions for demo scenes: English long/short captions, alt-text and translations.

* :func:`long_caption`: a 6-8 sentence English description (roughly 70-180
  words) covering every facet of the scene -- main object (category, colour,
  pattern, size), minor object (category, colour, pattern), spatial layout,
  action, atmosphere / time of day and the image's dominant colour.  The
  first sentence introduces the main object; the others come in random
  order, each drawn from several templates with synonyms.
* :func:`short_captions`: distinct one-sentence captions such as
  ``"A red striped star falling to the left of a small blue circle at sunset."``
* :func:`alt_text`: a few noisy, web-alt-text-like words (missing facets,
  typos, unrelated tokens such as ``img_0423`` or ``wallpaper``).
* :func:`translate_short` / :func:`translate_long`: template-based captions in
  German, French, Spanish and Italian built from per-language word lists
  (:data:`LEXICONS`) with simplified gender/case agreement.
* :func:`class_name`: the zero-shot class of a scene (its main shape).

Everything is deterministic given the scene and the ``random.Random`` passed
in; all variation is drawn from that rng.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from .scenes import Scene, SceneObject, dominant_colour, pattern_shade

LANGUAGES = ("en", "de", "fr", "es", "it")
VOWELS = "aeiouhàâéèêëîïôœùûü"

# ------------------------------------------------------------------ English --

SIZE_WORDS = {
    "tiny": ("tiny", "very small", "miniature"),
    "small": ("small", "little", "compact"),
    "medium": ("medium-sized", "mid-sized", "moderately sized"),
    "large": ("large", "big", "sizeable"),
}
PATTERN_WORDS = {
    "solid": ("solid", "plain", "single-coloured"),
    "striped": ("striped", "stripy", "banded"),
    "dotted": ("dotted", "polka-dot", "spotted"),
    "checkered": ("checkered", "chequered", "checked"),
    "gradient": ("gradient", "softly shaded", "gradient-filled"),
}
PATTERN_DETAILS = {
    "solid": ("filled with one flat, even {colour}", "painted in a single uniform shade of {colour}"),
    "striped": (
        "covered in broad diagonal stripes of {colour} and a {shade} {colour}",
        "decorated with bold slanted bands alternating between {colour} and a {shade} tone",
    ),
    "dotted": (
        "sprinkled with large round dots in a {shade} shade of {colour}",
        "covered in a staggered grid of {shade} polka dots on {colour}",
    ),
    "checkered": (
        "laid out as a checkerboard of {colour} and {shade} {colour} squares",
        "marked with a bold grid of alternating {colour} and {shade} squares",
    ),
    "gradient": (
        "shaded with a smooth left-to-right fade from {colour} to a {shade} tone",
        "fading gently from pure {colour} into a {shade} shade",
    ),
}
# Where the main object is relative to the minor one ...
LAYOUT_WORDS = {
    "left": ("to the left of", "on the left-hand side of", "just left of"),
    "right": ("to the right of", "on the right-hand side of", "just right of"),
    "above": ("above", "high above", "directly over"),
    "below": ("below", "underneath", "beneath"),
    "front": ("in front of", "partly covering", "overlapping"),
}
# ... and where the minor object is, seen from the main one.
LAYOUT_REVERSE = {
    "left": ("to its right", "on its right-hand side"),
    "right": ("to its left", "on its left-hand side"),
    "above": ("below it", "underneath it"),
    "below": ("above it", "over it"),
    "front": ("partly hidden behind it", "behind it"),
}
RELATIONAL_ACTIONS = frozenset({"colliding"})  # their short form takes the minor object as its object
ACTION_SHORT = {
    "moving fast": ("moving fast", "speeding along", "racing"),
    "falling": ("falling", "tumbling down", "dropping"),
    "colliding": ("colliding with", "crashing into", "bumping into"),
    "bouncing": ("bouncing", "bouncing along", "hopping"),
    "spinning": ("spinning", "rotating", "twirling"),
    "resting": ("resting", "sitting still", "standing still"),
}
ACTION_LONG = {
    "moving fast": ("is moving fast", "is speeding across the frame", "races through the scene at high speed"),
    "falling": ("is falling", "is tumbling downward", "drops through the air"),
    "colliding": ("is colliding with the {minor}", "crashes into the {minor}", "slams into the {minor}"),
    "bouncing": ("is bouncing", "bounces along the ground", "is in the middle of a bounce"),
    "spinning": ("is spinning", "spins rapidly", "is rotating in place"),
    "resting": ("is resting", "sits perfectly still", "rests quietly on the ground"),
}
ACTION_EVIDENCE = {
    "moving fast": ("motion streaks and faded after-images trail behind it", "speed lines stretch out behind it"),
    "falling": ("it is tilted and drop lines above it trace its fall", "short vertical lines above it show the fall"),
    "colliding": (
        "a bright burst marks the point where the two shapes touch",
        "a jagged yellow impact star flashes where they meet",
    ),
    "bouncing": ("a dashed arc traces its path up from the ground", "a curved dashed trail and a soft shadow show the bounce"),
    "spinning": ("curved arrows circle around it", "two curved arrows show the direction of the spin"),
    "resting": ("a soft shadow lies directly beneath it", "it casts a flat shadow on a thin ground line"),
}
ATMOSPHERE_SHORT = {
    "day": ("during the day", "on a sunny day", "in daylight"),
    "night": ("at night", "on a starry night", "in the night"),
    "sunset": ("at sunset", "during sunset", "under a sunset sky"),
    "fog": ("in the fog", "on a foggy day", "in thick fog"),
    "rain": ("in the rain", "on a rainy day", "in heavy rain"),
}
ATMOSPHERE_LONG = {
    "day": ("in the middle of the day", "on a bright day", "under a clear day sky"),
    "night": ("late at night", "in the middle of the night", "on a clear night"),
    "sunset": ("at sunset", "during a warm sunset", "just as the sunset begins"),
    "fog": ("on a foggy morning", "in dense fog", "deep in the fog"),
    "rain": ("in the rain", "on a rainy afternoon", "during steady rain"),
}
BACKGROUND_DETAILS = {
    "day": ("the background is a soft gradient of pale sky blue", "a light blue daytime sky stretches behind the shapes"),
    "night": ("the dark sky behind the shapes is sprinkled with small stars", "a deep navy background is speckled with twinkling stars"),
    "sunset": ("the sky fades from purple at the top to glowing orange below", "a purple-to-orange gradient fills the background"),
    "fog": ("a grey haze washes out all the colours", "everything is softened by a pale grey mist"),
    "rain": (
        "grey clouds fill the background and thin slanted rain streaks cross the whole picture",
        "slanted streaks of rain fall across a dull grey sky",
    ),
}

LONG_INTRO = (
    "This image shows {main_np}.",
    "The main subject of this picture is {main_np}, drawn in a flat cartoon style.",
    "At the heart of the illustration sits {main_np}.",
    "The picture is centred on {main_np} that immediately draws the eye.",
)
LONG_DETAIL = (
    "The {main}'s surface is {main_pattern}, and a thin dark outline traces its edge.",
    "Looking closer, the {main} is {main_pattern}.",
)
LONG_MINOR = (
    "A second, smaller object is also visible: {minor_np}.",
    "Sharing the frame is {minor_np}, which is noticeably smaller than the {main}.",
    "The scene also contains {minor_np}, whose surface is {minor_pattern}.",
)
LONG_LAYOUT = (
    "The {main} is placed {layout} the {minor}.",
    "Seen from the viewer, the {minor} appears {reverse}, with the {main} {layout} it.",
    "In terms of composition, the {main} sits {layout} the smaller {minor}.",
)
LONG_ACTION = (
    "The {main} {action}; {evidence}.",
    "In this moment the {main} {action}, and {evidence}.",
    "The action is easy to read: the {main} {action}, as {evidence}.",
)
LONG_ATMOSPHERE = (
    "The scene takes place {atmosphere}: {background}.",
    "Everything happens {atmosphere}; {background}.",
    "The picture is set {atmosphere}, where {background}.",
)
LONG_DOMINANT = (
    "Overall, the dominant colour of the image is {dominant}, while the {colour} {main} provides the strongest accent.",
    "{dominant} is the most prominent colour in the picture, set off by the {colour} of the {main} and the {minor_colour} of the {minor}.",
    "The colour palette is dominated by {dominant} tones, against which the {colour} {main} stands out clearly.",
)
LONG_STYLE = (
    "The whole image is drawn in a simple, flat, clip-art style with clean edges.",
    "There is no text anywhere in the picture, only these simple geometric shapes.",
    "The composition is minimal, leaving plenty of empty space around the two shapes.",
)
DETAIL_PROBABILITY = 0.6
STYLE_PROBABILITY = 0.5

SHORT_TEMPLATES = (
    "{main_np} {relation} {atmosphere}.",
    "{atmosphere}, {main_np} {relation}.",
    "illustration of {main_np} {relation} {atmosphere}.",
    "cartoon drawing of {main_np} {relation} {atmosphere}.",
    "{main_np} {relation}, {atmosphere}.",
)
# Attribute combinations used to name the objects in short captions.
SHORT_MAIN_FORMS = (("colour", "pattern"), ("size", "colour"), ("pattern", "colour"), ("size", "colour", "pattern"))
SHORT_MINOR_FORMS = (("size", "colour"), ("colour", "pattern"), ("colour",))

ALT_FILLERS = (
    "wallpaper", "hd", "stock", "vector", "clipart", "free", "download", "png", "4k", "background",
    "design", "icon", "cute", "art", "illustration", "image", "cartoon", "kids", "print", "sticker",
    "simple", "flat", "royalty", "pic",
)
ALT_IDS = ("img_{:04d}", "DSC{:05d}", "IMG-{:04d}", "photo{:03d}", "{:06d}")
ALT_SEPARATORS = (" ", " ", " ", "-", "_")
ALT_FACET_PROBABILITY = {"main": 0.9, "colour": 0.7, "atmosphere": 0.45, "minor": 0.35, "pattern": 0.35, "action": 0.3}
TYPO_PROBABILITY = 0.1


def _sentence(text: str) -> str:
    """Capitalise the first letter of a sentence."""
    return text[:1].upper() + text[1:]


def _with_article(phrase: str) -> str:
    """Prefix an English noun phrase with "a" or "an"."""
    return f"{'an' if phrase[0] in 'aeiou' else 'a'} {phrase}"


def _english_words(obj: SceneObject, rng: random.Random) -> dict[str, str]:
    """Randomly chosen English words for an object's attributes."""
    return {"size": rng.choice(SIZE_WORDS[obj.size]), "colour": obj.colour, "pattern": rng.choice(PATTERN_WORDS[obj.pattern])}


def _english_np(obj: SceneObject, attributes: tuple[str, ...], rng: random.Random) -> str:
    """An indefinite noun phrase naming ``obj`` by the given attributes."""
    words = _english_words(obj, rng)
    return _with_article(" ".join([words[a] for a in attributes] + [obj.shape]))


def _pattern_detail(obj: SceneObject, rng: random.Random) -> str:
    """A phrase describing an object's surface pattern."""
    return rng.choice(PATTERN_DETAILS[obj.pattern]).format(colour=obj.colour, shade=pattern_shade(obj.colour))


def _long_slots(scene: Scene, rng: random.Random) -> dict[str, str]:
    """Values for every placeholder of the long-caption templates."""
    main, minor = scene.main, scene.minor
    return {
        "main": main.shape,
        "minor": minor.shape,
        "colour": main.colour,
        "minor_colour": minor.colour,
        "main_np": _english_np(main, ("size", "colour", "pattern"), rng),
        "minor_np": _english_np(minor, ("size", "colour", "pattern"), rng),
        "main_pattern": _pattern_detail(main, rng),
        "minor_pattern": _pattern_detail(minor, rng),
        "layout": rng.choice(LAYOUT_WORDS[scene.layout]),
        "reverse": rng.choice(LAYOUT_REVERSE[scene.layout]),
        "action": rng.choice(ACTION_LONG[scene.action]).format(minor=minor.shape),
        "evidence": rng.choice(ACTION_EVIDENCE[scene.action]),
        "atmosphere": rng.choice(ATMOSPHERE_LONG[scene.atmosphere]),
        "background": rng.choice(BACKGROUND_DETAILS[scene.atmosphere]),
        "dominant": dominant_colour(scene),
    }


def long_caption(scene: Scene, rng: random.Random) -> str:
    """A detailed multi-sentence English description of the scene."""
    slots = _long_slots(scene, rng)
    blocks = [[LONG_MINOR, LONG_LAYOUT], [LONG_ACTION], [LONG_ATMOSPHERE]]
    if rng.random() < DETAIL_PROBABILITY:
        blocks.append([LONG_DETAIL])
    rng.shuffle(blocks)
    order = [LONG_INTRO] + [templates for block in blocks for templates in block] + [LONG_DOMINANT]
    if rng.random() < STYLE_PROBABILITY:
        order.append(LONG_STYLE)
    return " ".join(_sentence(rng.choice(templates).format(**slots)) for templates in order)


def _short_relation(scene: Scene, rng: random.Random) -> str:
    """The action plus the minor object, e.g. "falling to the left of a small blue circle"."""
    minor_np = _english_np(scene.minor, rng.choice(SHORT_MINOR_FORMS), rng)
    action = rng.choice(ACTION_SHORT[scene.action])
    if scene.action in RELATIONAL_ACTIONS:
        return f"{action} {minor_np} {rng.choice(LAYOUT_REVERSE[scene.layout])}"
    return f"{action} {rng.choice(LAYOUT_WORDS[scene.layout])} {minor_np}"


def _short_caption(scene: Scene, rng: random.Random) -> str:
    """One single-sentence English caption."""
    return _sentence(
        rng.choice(SHORT_TEMPLATES).format(
            main_np=_english_np(scene.main, rng.choice(SHORT_MAIN_FORMS), rng),
            relation=_short_relation(scene, rng),
            atmosphere=rng.choice(ATMOSPHERE_SHORT[scene.atmosphere]),
        )
    )


def distinct(make: Callable[[], str], n: int, attempts_per_item: int = 50) -> list[str]:
    """Call ``make`` until it has produced ``n`` different strings (in order)."""
    found: list[str] = []
    for _ in range(n * attempts_per_item):
        text = make()
        if text not in found:
            found.append(text)
            if len(found) == n:
                return found
    raise RuntimeError(f"could only produce {len(found)} of {n} distinct captions")


def short_captions(scene: Scene, rng: random.Random, n: int = 2) -> list[str]:
    """``n`` different one-sentence English captions."""
    return distinct(lambda: _short_caption(scene, rng), n)


def _typo(word: str, rng: random.Random) -> str:
    """Swap, drop or double one letter of ``word``."""
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    edits = (word[:i] + word[i + 1] + word[i] + word[i + 2 :], word[:i] + word[i + 1 :], word[:i] + word[i] + word[i:])
    return rng.choice(edits)


def alt_text(scene: Scene, rng: random.Random) -> str:
    """Noisy web-style alt-text: some facet words, filler tokens, maybe typos."""
    facets = {
        "main": scene.main.shape,
        "colour": scene.main.colour,
        "atmosphere": scene.atmosphere,
        "minor": scene.minor.shape,
        "pattern": scene.main.pattern,
        "action": scene.action.split()[0],
    }
    words = [word for facet, word in facets.items() if rng.random() < ALT_FACET_PROBABILITY[facet]] or [scene.main.shape]
    words = [_typo(w, rng) if rng.random() < TYPO_PROBABILITY else w for w in words]
    words += rng.sample(ALT_FILLERS, rng.randint(1, 3))
    if rng.random() < 0.5:
        words.append(rng.choice(ALT_IDS).format(rng.randrange(100000)))
    rng.shuffle(words)
    return rng.choice(ALT_SEPARATORS).join(words)


def class_name(scene: Scene) -> str:
    """The zero-shot classification label of a scene: its main object's shape."""
    return scene.main.shape


# ------------------------------------------------------------- translations --

# An adjective is either a (masculine, feminine) pair (Romance languages), or a
# single string: invariant in Romance languages, an inflected stem in German.
Adjective = str | tuple[str, str]


@dataclass(frozen=True)
class Lexicon:
    """Word lists and templates for one target language.

    Article tables are keyed ``"{case}_{gender}"`` with case ``nom`` or
    ``dat`` (only German distinguishes them).  ``layouts`` and ``with_prep``
    end in the preposition that fuses with a following article through
    ``contractions`` (``"de le" -> "du"``).
    """

    nouns: dict[str, tuple[str, str]]  # shape -> (noun, gender)
    colours: dict[str, Adjective]
    patterns: dict[str, Adjective]
    sizes: dict[str, Adjective]
    preposed_sizes: frozenset[str]  # sizes placed before the noun
    adjectives_first: bool  # colour and pattern before the noun
    indefinite: dict[str, str]
    definite: dict[str, str]
    endings: dict[str, str]  # adjective endings after an indefinite article, by case_gender
    elided: frozenset[str]  # articles that become "l'" before a vowel
    contractions: dict[str, str]
    layouts: dict[str, str]  # main relative to minor, followed by the minor's noun phrase
    with_prep: str
    atmospheres: dict[str, tuple[str, ...]]
    dominant: dict[str, str]  # dominant colour name -> form used in the dominant templates
    actions_short: dict[str, tuple[str, ...]]
    actions_long: dict[str, str]  # templates with {main} and {minor_with}
    short_templates: tuple[str, ...]
    intro: tuple[str, ...]
    minor: tuple[str, ...]
    layout: tuple[str, ...]
    atmosphere: tuple[str, ...]
    dominant_templates: tuple[str, ...]


def _both_cases(articles: dict[str, str]) -> dict[str, str]:
    """Article table for a language without case: same article for nom and dat."""
    return {f"{case}_{gender}": word for gender, word in articles.items() for case in ("nom", "dat")}


SHORT_ROMANCE = ("{main_np} {action} {layout_np} {atmosphere}.", "{atmosphere}, {main_np} {action} {layout_np}.")

LEXICONS: dict[str, Lexicon] = {
    "de": Lexicon(
        nouns={
            "circle": ("Kreis", "m"), "square": ("Quadrat", "n"), "triangle": ("Dreieck", "n"), "star": ("Stern", "m"),
            "heart": ("Herz", "n"), "hexagon": ("Sechseck", "n"), "cross": ("Kreuz", "n"), "ring": ("Ring", "m"),
            "diamond": ("Raute", "f"), "crescent": ("Halbmond", "m"), "arrow": ("Pfeil", "m"), "pentagon": ("Fünfeck", "n"),
        },
        colours={
            "red": "rot", "orange": "orangefarben", "yellow": "gelb", "green": "grün", "teal": "türkisfarben",
            "blue": "blau", "purple": "violett", "pink": "rosafarben", "brown": "braun", "white": "weiß",
        },
        patterns={"solid": "einfarbig", "striped": "gestreift", "dotted": "gepunktet", "checkered": "kariert", "gradient": "schattiert"},
        sizes={"tiny": "winzig", "small": "klein", "medium": "mittelgroß", "large": "groß"},
        preposed_sizes=frozenset({"tiny", "small", "medium", "large"}),
        adjectives_first=True,
        indefinite={"nom_m": "ein", "nom_f": "eine", "nom_n": "ein", "dat_m": "einem", "dat_f": "einer", "dat_n": "einem"},
        definite={"nom_m": "der", "nom_f": "die", "nom_n": "das", "dat_m": "dem", "dat_f": "der", "dat_n": "dem"},
        endings={"nom_m": "er", "nom_f": "e", "nom_n": "es", "dat_m": "en", "dat_f": "en", "dat_n": "en"},
        elided=frozenset(),
        contractions={"von dem": "vom"},
        layouts={"left": "links von", "right": "rechts von", "above": "über", "below": "unter", "front": "vor"},
        with_prep="mit",
        atmospheres={
            "day": ("am helllichten Tag", "bei Tageslicht"),
            "night": ("in der Nacht", "mitten in der Nacht"),
            "sunset": ("bei Sonnenuntergang", "in der Abenddämmerung"),
            "fog": ("im dichten Nebel", "im Nebel"),
            "rain": ("im Regen", "bei strömendem Regen"),
        },
        dominant={"light blue": "hellblaue", "dark navy blue": "dunkelblaue", "orange": "orangefarbene", "pale grey": "hellgraue", "slate grey": "schiefergraue"},
        actions_short={
            "moving fast": ("in schneller Bewegung", "in voller Fahrt"),
            "falling": ("im freien Fall", "im Sturz"),
            "colliding": ("mitten im Zusammenstoß", "beim Aufprall"),
            "bouncing": ("beim Hüpfen", "im Sprung"),
            "spinning": ("in schneller Drehung", "beim Drehen"),
            "resting": ("in Ruhe", "ganz ruhig"),
        },
        actions_long={
            "moving fast": "{main} bewegt sich sehr schnell; hinter der Figur sind Bewegungslinien zu sehen.",
            "falling": "{main} fällt nach unten; senkrechte Linien über der Figur zeigen den Sturz.",
            "colliding": "{main} stößt {minor_with} zusammen, und an der Berührungsstelle blitzt ein gelber Stern auf.",
            "bouncing": "{main} hüpft über den Boden, und ein gestrichelter Bogen zeigt die Flugbahn.",
            "spinning": "{main} dreht sich schnell, und zwei gebogene Pfeile zeigen die Drehung.",
            "resting": "{main} liegt ruhig auf dem Boden und wirft einen flachen Schatten.",
        },
        short_templates=("{main_np} {action} {layout_np} {atmosphere}.", "{atmosphere}: {main_np} {action} {layout_np}."),
        intro=("Auf dem Bild ist {main_np} zu sehen.", "Im Mittelpunkt der Illustration steht {main_np}."),
        minor=("Außerdem ist {minor_np} zu sehen.", "Daneben gibt es eine zweite, kleinere Figur: {minor_np}."),
        layout=("{main} befindet sich {layout}.", "{main} ist {layout} platziert."),
        atmosphere=("Die Szene spielt {atmosphere}.", "Das Ganze findet {atmosphere} statt."),
        dominant_templates=("Im Bild dominieren {dominant} Farbtöne.", "Insgesamt herrschen {dominant} Töne vor."),
    ),
    "fr": Lexicon(
        nouns={
            "circle": ("cercle", "m"), "square": ("carré", "m"), "triangle": ("triangle", "m"), "star": ("étoile", "f"),
            "heart": ("cœur", "m"), "hexagon": ("hexagone", "m"), "cross": ("croix", "f"), "ring": ("anneau", "m"),
            "diamond": ("losange", "m"), "crescent": ("croissant", "m"), "arrow": ("flèche", "f"), "pentagon": ("pentagone", "m"),
        },
        colours={
            "red": "rouge", "orange": "orange", "yellow": "jaune", "green": ("vert", "verte"), "teal": "turquoise",
            "blue": ("bleu", "bleue"), "purple": ("violet", "violette"), "pink": "rose", "brown": "marron",
            "white": ("blanc", "blanche"),
        },
        patterns={"solid": ("uni", "unie"), "striped": ("rayé", "rayée"), "dotted": "à pois", "checkered": "à carreaux", "gradient": "en dégradé"},
        sizes={"tiny": "minuscule", "small": ("petit", "petite"), "medium": "de taille moyenne", "large": ("grand", "grande")},
        preposed_sizes=frozenset({"tiny", "small", "large"}),
        adjectives_first=False,
        indefinite=_both_cases({"m": "un", "f": "une"}),
        definite=_both_cases({"m": "le", "f": "la"}),
        endings={},
        elided=frozenset({"le", "la"}),
        contractions={"de le": "du", "de un": "d'un", "de une": "d'une"},
        layouts={"left": "à gauche de", "right": "à droite de", "above": "au-dessus de", "below": "en dessous de", "front": "devant"},
        with_prep="avec",
        atmospheres={
            "day": ("en plein jour", "pendant la journée"),
            "night": ("la nuit", "en pleine nuit"),
            "sunset": ("au coucher du soleil", "au crépuscule"),
            "fog": ("dans le brouillard", "dans un épais brouillard"),
            "rain": ("sous la pluie", "par temps de pluie"),
        },
        dominant={"light blue": "bleu clair", "dark navy blue": "bleu nuit", "orange": "orange", "pale grey": "gris pâle", "slate grey": "gris ardoise"},
        actions_short={
            "moving fast": ("en mouvement rapide", "à toute vitesse"),
            "falling": ("en chute libre", "en pleine chute"),
            "colliding": ("en pleine collision", "au moment de l'impact"),
            "bouncing": ("en train de rebondir", "en plein rebond"),
            "spinning": ("en rotation", "en train de tourner"),
            "resting": ("au repos", "immobile"),
        },
        actions_long={
            "moving fast": "{main} se déplace très vite ; des traînées de mouvement s'étirent derrière la forme.",
            "falling": "{main} tombe vers le bas ; des lignes verticales au-dessus de la forme indiquent la chute.",
            "colliding": "{main} entre en collision {minor_with} ; une étoile jaune marque le point d'impact.",
            "bouncing": "{main} rebondit sur le sol ; un arc en pointillés montre sa trajectoire.",
            "spinning": "{main} tourne rapidement ; deux flèches courbes indiquent la rotation.",
            "resting": "{main} repose immobile sur le sol et projette une ombre plate.",
        },
        short_templates=SHORT_ROMANCE,
        intro=("L'image montre {main_np}.", "Au centre de l'illustration se trouve {main_np}."),
        minor=("On voit aussi {minor_np}.", "Une seconde forme, plus petite, apparaît également : {minor_np}."),
        layout=("{main} se trouve {layout}.", "{main} se situe {layout}."),
        atmosphere=("La scène se déroule {atmosphere}.", "Tout se passe {atmosphere}."),
        dominant_templates=("Les tons {dominant} dominent l'image.", "L'image est dominée par des tons {dominant}."),
    ),
    "es": Lexicon(
        nouns={
            "circle": ("círculo", "m"), "square": ("cuadrado", "m"), "triangle": ("triángulo", "m"), "star": ("estrella", "f"),
            "heart": ("corazón", "m"), "hexagon": ("hexágono", "m"), "cross": ("cruz", "f"), "ring": ("anillo", "m"),
            "diamond": ("rombo", "m"), "crescent": ("media luna", "f"), "arrow": ("flecha", "f"), "pentagon": ("pentágono", "m"),
        },
        colours={
            "red": ("rojo", "roja"), "orange": "naranja", "yellow": ("amarillo", "amarilla"), "green": "verde",
            "teal": "turquesa", "blue": "azul", "purple": ("morado", "morada"), "pink": "rosa", "brown": "marrón",
            "white": ("blanco", "blanca"),
        },
        patterns={"solid": ("liso", "lisa"), "striped": ("rayado", "rayada"), "dotted": "de lunares", "checkered": "a cuadros", "gradient": ("degradado", "degradada")},
        sizes={"tiny": ("diminuto", "diminuta"), "small": ("pequeño", "pequeña"), "medium": "de tamaño mediano", "large": "gran"},
        preposed_sizes=frozenset({"small", "large"}),
        adjectives_first=False,
        indefinite=_both_cases({"m": "un", "f": "una"}),
        definite=_both_cases({"m": "el", "f": "la"}),
        endings={},
        elided=frozenset(),
        contractions={"de el": "del", "a el": "al"},
        layouts={"left": "a la izquierda de", "right": "a la derecha de", "above": "encima de", "below": "debajo de", "front": "delante de"},
        with_prep="con",
        atmospheres={
            "day": ("a plena luz del día", "durante el día"),
            "night": ("de noche", "en plena noche"),
            "sunset": ("al atardecer", "durante la puesta de sol"),
            "fog": ("en medio de la niebla", "en una densa niebla"),
            "rain": ("bajo la lluvia", "en un día de lluvia"),
        },
        dominant={"light blue": "azul claro", "dark navy blue": "azul marino", "orange": "naranja", "pale grey": "gris pálido", "slate grey": "gris pizarra"},
        actions_short={
            "moving fast": ("en rápido movimiento", "a toda velocidad"),
            "falling": ("en caída libre", "cayendo"),
            "colliding": ("en plena colisión", "en el momento del choque"),
            "bouncing": ("rebotando", "en pleno rebote"),
            "spinning": ("girando", "en rotación"),
            "resting": ("en reposo", "inmóvil"),
        },
        actions_long={
            "moving fast": "{main} se mueve muy rápido; detrás de la figura se ven líneas de movimiento.",
            "falling": "{main} cae hacia abajo; unas líneas verticales sobre la figura indican la caída.",
            "colliding": "{main} choca {minor_with}; una estrella amarilla marca el punto de impacto.",
            "bouncing": "{main} rebota en el suelo; un arco discontinuo muestra su trayectoria.",
            "spinning": "{main} gira rápidamente; dos flechas curvas indican la rotación.",
            "resting": "{main} descansa inmóvil en el suelo y proyecta una sombra plana.",
        },
        short_templates=SHORT_ROMANCE,
        intro=("La imagen muestra {main_np}.", "En el centro de la ilustración aparece {main_np}."),
        minor=("También se ve {minor_np}.", "Hay además una segunda figura, más pequeña: {minor_np}."),
        layout=("{main} se encuentra {layout}.", "{main} aparece {layout}."),
        atmosphere=("La escena transcurre {atmosphere}.", "Todo sucede {atmosphere}."),
        dominant_templates=("En la imagen predominan los tonos {dominant}.", "Los tonos {dominant} dominan la imagen."),
    ),
    "it": Lexicon(
        nouns={
            "circle": ("cerchio", "m"), "square": ("quadrato", "m"), "triangle": ("triangolo", "m"), "star": ("stella", "f"),
            "heart": ("cuore", "m"), "hexagon": ("esagono", "m"), "cross": ("croce", "f"), "ring": ("anello", "m"),
            "diamond": ("rombo", "m"), "crescent": ("mezzaluna", "f"), "arrow": ("freccia", "f"), "pentagon": ("pentagono", "m"),
        },
        colours={
            "red": ("rosso", "rossa"), "orange": "arancione", "yellow": ("giallo", "gialla"), "green": "verde",
            "teal": "turchese", "blue": "blu", "purple": "viola", "pink": "rosa", "brown": "marrone",
            "white": ("bianco", "bianca"),
        },
        patterns={"solid": "in tinta unita", "striped": "a righe", "dotted": "a pois", "checkered": "a scacchi", "gradient": ("sfumato", "sfumata")},
        sizes={"tiny": ("minuscolo", "minuscola"), "small": ("piccolo", "piccola"), "medium": "di medie dimensioni", "large": "grande"},
        preposed_sizes=frozenset({"small", "large"}),
        adjectives_first=False,
        indefinite=_both_cases({"m": "un", "f": "una"}),
        definite=_both_cases({"m": "il", "f": "la"}),
        endings={},
        elided=frozenset({"il", "la"}),
        contractions={"di il": "del", "di la": "della", "di l'": "dell'", "a il": "al", "a la": "alla", "a l'": "all'"},
        layouts={"left": "a sinistra di", "right": "a destra di", "above": "sopra", "below": "sotto", "front": "davanti a"},
        with_prep="con",
        atmospheres={
            "day": ("in pieno giorno", "durante il giorno"),
            "night": ("di notte", "nel cuore della notte"),
            "sunset": ("al tramonto", "durante il tramonto"),
            "fog": ("nella nebbia", "in una fitta nebbia"),
            "rain": ("sotto la pioggia", "in una giornata di pioggia"),
        },
        dominant={"light blue": "azzurri", "dark navy blue": "blu notte", "orange": "arancioni", "pale grey": "grigio chiaro", "slate grey": "grigio ardesia"},
        actions_short={
            "moving fast": ("in rapido movimento", "a tutta velocità"),
            "falling": ("in caduta libera", "che cade"),
            "colliding": ("in piena collisione", "al momento dell'impatto"),
            "bouncing": ("che rimbalza", "in pieno rimbalzo"),
            "spinning": ("in rotazione", "che gira"),
            "resting": ("a riposo", "immobile"),
        },
        actions_long={
            "moving fast": "{main} si muove molto velocemente; dietro la figura si vedono scie di movimento.",
            "falling": "{main} cade verso il basso; alcune linee verticali sopra la figura indicano la caduta.",
            "colliding": "{main} si scontra {minor_with}; una stella gialla segna il punto d'impatto.",
            "bouncing": "{main} rimbalza sul terreno; un arco tratteggiato mostra la traiettoria.",
            "spinning": "{main} ruota rapidamente; due frecce curve indicano la rotazione.",
            "resting": "{main} riposa immobile a terra e proietta un'ombra piatta.",
        },
        short_templates=SHORT_ROMANCE,
        intro=("L'immagine mostra {main_np}.", "Al centro dell'illustrazione si trova {main_np}."),
        minor=("Si vede anche {minor_np}.", "C'è anche una seconda figura, più piccola: {minor_np}."),
        layout=("{main} si trova {layout}.", "{main} compare {layout}."),
        atmosphere=("La scena si svolge {atmosphere}.", "Tutto accade {atmosphere}."),
        dominant_templates=("Nell'immagine dominano i toni {dominant}.", "I toni {dominant} prevalgono nell'immagine."),
    ),
}
FULL_NP = ("size", "colour", "pattern")


def _inflect(lex: Lexicon, adjective: Adjective, case: str, gender: str) -> str:
    """The form of ``adjective`` agreeing with a noun of ``gender`` in ``case``."""
    if isinstance(adjective, tuple):
        return adjective[gender == "f"]
    return adjective + lex.endings.get(f"{case}_{gender}", "")


def _noun_phrase(
    lex: Lexicon,
    obj: SceneObject,
    case: str,
    definite: bool,
    attributes: tuple[str, ...] = (),
    preposition: str = "",
) -> str:
    """``obj``'s noun with article, agreeing adjectives and an optional preposition."""
    noun, gender = lex.nouns[obj.shape]
    tables = {"size": lex.sizes, "colour": lex.colours, "pattern": lex.patterns}
    words = {a: _inflect(lex, tables[a][getattr(obj, a)], case, gender) for a in attributes}
    size_first = obj.size in lex.preposed_sizes
    preposed_size = [words["size"]] if "size" in words and size_first else []
    postposed_size = [words["size"]] if "size" in words and not size_first else []
    colour_pattern = [words[a] for a in ("colour", "pattern") if a in words]
    if lex.adjectives_first:
        ordered = preposed_size + colour_pattern + [noun] + postposed_size
    else:
        ordered = preposed_size + [noun] + colour_pattern + postposed_size
    body = " ".join(ordered)
    article = (lex.definite if definite else lex.indefinite)[f"{case}_{gender}"]
    if article in lex.elided and body[0].lower() in VOWELS:
        article = "l'"
    lead, _, last = preposition.rpartition(" ")
    fused = f"{last} {article}".strip()
    head = f"{lead} {lex.contractions.get(fused, fused)}".strip()
    return head + body if head.endswith("'") else f"{head} {body}"


def _translation_slots(scene: Scene, lex: Lexicon, rng: random.Random) -> dict[str, str]:
    """Values for every placeholder of a language's templates."""
    main, minor = scene.main, scene.minor
    return {
        "main": _noun_phrase(lex, main, "nom", definite=True),
        "main_np": _noun_phrase(lex, main, "nom", definite=False, attributes=FULL_NP),
        "minor_np": _noun_phrase(lex, minor, "nom", definite=False, attributes=FULL_NP),
        "layout": _noun_phrase(lex, minor, "dat", definite=True, preposition=lex.layouts[scene.layout]),
        "layout_np": _noun_phrase(lex, minor, "dat", definite=False, attributes=("size", "colour"), preposition=lex.layouts[scene.layout]),
        "minor_with": _noun_phrase(lex, minor, "dat", definite=True, preposition=lex.with_prep),
        "action": rng.choice(lex.actions_short[scene.action]),
        "atmosphere": rng.choice(lex.atmospheres[scene.atmosphere]),
        "dominant": lex.dominant[dominant_colour(scene)],
    }


def _lexicon(lang: str) -> Lexicon:
    """The lexicon of a translation language, with a helpful error otherwise."""
    if lang not in LEXICONS:
        raise ValueError(f"unsupported language {lang!r}; expected one of {LANGUAGES}")
    return LEXICONS[lang]


def translate_short(scene: Scene, lang: str, rng: random.Random) -> str:
    """A one-sentence caption in ``lang`` (``"en"`` gives an English short caption)."""
    if lang == "en":
        return _short_caption(scene, rng)
    lex = _lexicon(lang)
    return _sentence(rng.choice(lex.short_templates).format(**_translation_slots(scene, lex, rng)))


def translate_long(scene: Scene, lang: str, rng: random.Random) -> str:
    """A five-sentence description in ``lang`` (``"en"`` gives an English long caption)."""
    if lang == "en":
        return long_caption(scene, rng)
    lex = _lexicon(lang)
    slots = _translation_slots(scene, lex, rng)
    blocks = [[lex.minor, lex.layout], [(lex.actions_long[scene.action],)], [lex.atmosphere]]
    rng.shuffle(blocks)
    order = [lex.intro] + [templates for block in blocks for templates in block] + [lex.dominant_templates]
    return " ".join(_sentence(rng.choice(templates).format(**slots)) for templates in order)
