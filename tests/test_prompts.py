import pytest

from pipeline.prompts import FACET_SETS, FACETS, build_caption_part, build_prompts, prompts_hash, resolve_facets


def test_nine_facets_all_end_in_one_word_quote():
    assert len(FACETS) == 9
    assert all(s.endswith('in just one word:"') for s in FACETS.values())


def test_named_sets():
    assert len(FACET_SETS["long"]) == 7
    assert FACET_SETS["short"] == ("description",)
    assert build_prompts("x", "short") == ['Detailed image description: "x". After thinking step by step, '
                                           'this image description means in just one word:"']


def test_build_prompts_share_prefix_and_follow_facet_order():
    prompts = build_prompts("A red star.", "long")
    assert len(prompts) == 7
    prefix = 'Detailed image description: "A red star.". After thinking step by step, '
    assert all(p.startswith(prefix) for p in prompts)
    assert [p[len(prefix):] for p in prompts] == [FACETS[n] for n in FACET_SETS["long"]]


def test_custom_suffixes_and_names_mix():
    names, suffixes = resolve_facets(["colour", 'the mood in this image means in just one word:"'])
    assert names[0] == "colour" and suffixes[0] == FACETS["colour"]
    assert suffixes[1] == names[1] == 'the mood in this image means in just one word:"'


@pytest.mark.parametrize("bad", ["medium", [], ["colour", "colour"], [""]])
def test_bad_facets_are_refused(bad):
    with pytest.raises(ValueError):
        resolve_facets(bad)


def test_prompts_hash_changes_with_any_prompt():
    assert prompts_hash("long") == prompts_hash(list(FACET_SETS["long"]))
    assert prompts_hash("long") != prompts_hash("short")
    assert prompts_hash(["a:"]) != prompts_hash(["b:"])


def test_caption_part_ends_with_closing_quote():
    assert build_caption_part("cat") == 'Detailed image description: "cat"'
