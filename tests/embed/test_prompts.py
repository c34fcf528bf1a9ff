"""Prompt templates and the two text layouts: the paper's template and facet sets, and the released strings."""

import pytest

from pipeline.embed.prompts import (
    FACET_SETS,
    FACETS,
    PREFIX,
    clean_official,
    clean_quotes,
    facet_slots,
    paper_template,
    resolve_facets,
    templates_hash,
    text_layout,
)

# The released strings (MIV-XJTU/FLAME src/training/embed_cc3m_mask.py, `_` -> ` `), written out independently.
RELEASED_LONG = ('Detailed Image description : "*sent 0*" . After thinking step by step , <s> this image description '
                 'means in just one word:" the category of the main object in this image means in just one word:" '
                 'the prominent characteristic or pattern of the main object in this image means in just one word:" '
                 'the category of the minor object in this image means in just one word:" the prominent '
                 'characteristic or pattern of the minor object in this image means in just one word:" the primary '
                 'action or event taking place in this image means in just one word:" the overall atmosphere or '
                 'emotion of this image means in just one word:"')
RELEASED_SHORT = ('Image description : "*sent 0*" . After thinking step by step , <s> this image description means in '
                  'just one word:" the category of the main object in this image means in just one word:" the '
                  'prominent characteristic or pattern of the main object in this image means in just one word:"')
RELEASED_RAW = ('Image description : "*sent 0*" . After thinking step by step , this image description means in just '
                'one word:"')


# The paper's nine suffixes (supplementary B), typed out from the paper, in its order.
PAPER_SUFFIXES = [
    'the category of the main object in this image means in just one word:"',
    'the prominent characteristic or pattern of the main object in this image means in just one word:"',
    'the category of the minor object in this image means in just one word:"',
    'the prominent characteristic or pattern of the minor object in this image means in just one word:"',
    'the primary action or event taking place in this image means in just one word:"',
    'the positioning layout or spatial relationship in this image means in just one word:"',
    'this image description means in just one word:"',
    'the overall atmosphere or emotion of this image means in just one word:"',
    'the dominant color or color combination of this image means in just one word:"',
]


def test_the_nine_facets_are_the_papers_strings_and_all_is_the_nine():
    assert sorted(FACETS.values()) == sorted(PAPER_SUFFIXES)
    assert sorted(resolve_facets("all")[1]) == sorted(PAPER_SUFFIXES)
    assert paper_template("all").prompts("A red star.") == [
        'Detailed image description: "A red star.". After thinking step by step, ' + suffix
        for suffix in resolve_facets("all")[1]]
    named = {"main_category": 0, "main_pattern": 1, "minor_category": 2, "minor_pattern": 3, "action": 4,
             "spatial": 5, "description": 6, "atmosphere": 7, "colour": 8}
    assert {name: FACETS[name] for name in named} == {name: PAPER_SUFFIXES[i] for name, i in named.items()}


def test_nine_facets_all_end_in_one_word_quote():
    assert len(FACETS) == 9 and all(s.endswith('in just one word:"') for s in FACETS.values())
    assert len(FACET_SETS["long"]) == 7 and FACET_SETS["short"] == ("description",)


def test_paper_layout_defaults_long_to_seven_facets_and_short_and_raw_to_the_description():
    layout = text_layout("paper")
    assert [t.num_facets for t in layout.values()] == [1, 1, 7]
    assert layout["raw"].prompts('A "red" star') == [
        'Detailed image description: "A \'red\' star". After thinking step by step, ' + FACETS["description"]]
    long = layout["long"].prompts("A red star.")
    assert [p[len(PREFIX.format(caption="A red star.")):] for p in long] == [FACETS[n] for n in FACET_SETS["long"]]
    assert text_layout("paper", {"raw": ["colour"]})["raw"].names == ("colour",)
    assert text_layout("paper", "long")["short"].num_facets == 7


def test_official_layout_reproduces_the_released_strings_and_eleven_rows():
    layout = text_layout("official")
    assert [layout[s].num_facets for s in ("raw", "short", "long")] == [1, 3, 7]  # 11 rows per image
    for source, released in (("long", RELEASED_LONG), ("short", RELEASED_SHORT), ("raw", RELEASED_RAW)):
        template = layout[source]
        prompts = template.prompts("*sent 0*")
        head = template.prefix_of("*sent 0*")
        assert all(p.startswith(head) for p in prompts)
        # the released packed sequence is the shared prefix followed by the facet questions, space-separated
        assert (head + " ".join(p[len(head):] for p in prompts)).replace("*sent 0*.", "*sent 0*") == released
    assert layout["long"].prompts('It is "big"?')[0].startswith(
        "Detailed Image description : \"It is 'big'.\" . After thinking step by step , <s> this image")


@pytest.mark.parametrize("caption, cleaned", [
    ("A red star", "A red star."), ("A red star.", "A red star."), ("Is it red?", "Is it red."),
    ('He said "hi"', "He said 'hi'"), ("  ends with a quote'  ", "ends with a quote'"), ("", ""),
])
def test_official_cleaning_follows_the_released_order(caption, cleaned):
    assert clean_official(caption) == cleaned


def test_paper_cleaning_only_protects_the_quotes():
    assert clean_quotes(' A "red" star ') == "A 'red' star"


def test_official_layout_takes_no_facets_and_unknown_layouts_are_refused():
    with pytest.raises(ValueError, match="paper layout only"):
        text_layout("official", "long")
    with pytest.raises(ValueError, match="unknown text layout"):
        text_layout("released")
    with pytest.raises(ValueError, match="unknown caption sources"):
        text_layout("paper", {"alt": "long"})


def test_custom_suffixes_and_names():
    names, suffixes = resolve_facets(["colour", 'the mood in this image means in just one word:"'])
    assert names[0] == "colour" and suffixes[0] == FACETS["colour"]
    assert suffixes[1] == 'the mood in this image means in just one word:"'


@pytest.mark.parametrize("bad", ["everything", [], ["colour", "colour"], [""], ["colur"]])
def test_bad_facets_are_refused(bad):
    with pytest.raises(ValueError):
        resolve_facets(bad)


def test_templates_hash_changes_with_any_prompt_or_cleaning():
    assert templates_hash(text_layout("paper")) == templates_hash(text_layout("paper", {"long": "long"}))
    assert templates_hash(text_layout("paper")) != templates_hash(text_layout("official"))
    assert templates_hash({"raw": paper_template(["a:\""])}) != templates_hash({"raw": paper_template(["b:\""])})


def test_facet_slots_align_facets_of_different_sources_by_name():
    assert facet_slots(text_layout("official"), ["raw", "short"]) == FACET_SETS["long"][:3]
    assert facet_slots(text_layout("paper"), ["raw", "short", "long"]) == FACET_SETS["long"]
    assert facet_slots(text_layout("paper", {"raw": ["colour"]}), ["raw", "long"]) == ("colour", *FACET_SETS["long"])
