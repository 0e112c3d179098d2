"""Streaming fast paths (conversations/rendering/): every flush shows the right HTML.

The renderer skips the block parser when text only extends the last line of a paragraph,
list item or heading, and sanitises an open code fence line by line. These tests check the
page (finished blocks + tail) after *every* flush against rendering the text so far, with
the fast paths on and off (``fast_paths``), and count the parser's work (``parser_work``).
"""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.rendering.markdown import render_markdown
from conversations.rendering.streaming import StreamingMarkdown

# Every comparison with rendering the whole text runs with the fast paths and without.
both_ways = pytest.mark.parametrize("fast_paths", [True, False], ids=["fast", "slow"])


def assert_every_flush_matches(
    pieces: list[str], *, open_fence_colours: bool = False, fast_paths: bool = True
) -> StreamingMarkdown:
    """Feed `pieces` one flush each; after each, blocks + tail must equal a full render.

    With `open_fence_colours`, an answer ending in an open fence may differ in Pygments
    spans only: it is highlighted line by line, and its last line not at all (documented
    in StreamingMarkdown).
    """
    renderer = StreamingMarkdown(fast_paths=fast_paths)
    shown = ""
    for piece in pieces:
        update = renderer.feed(piece)
        shown += update.appended_html
        page, expected = shown + update.tail_html, render_markdown(renderer.text)
        if page != expected and open_fence_colours and renderer._fence is not None:
            page, expected = without_spans(page), without_spans(expected)
        assert page == expected, renderer.text
        assert page_of(renderer) == shown + update.tail_html
    return renderer


def page_of(renderer: StreamingMarkdown) -> str:
    """Return what a page joining now is sent: the finished blocks and the open tail."""
    return renderer.blocks_html() + renderer.tail_html()


def without_spans(html: str) -> str:
    return re.sub(r"</?span[^>]*>", "", html)


def split_at(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted(cuts), len(text)]
    return [text[start:end] for start, end in itertools.pairwise(bounds)]


EDGE_CASES = {
    "digit_then_list_marker": ["Intro words\n1", ". item"],
    "digit_then_list_marker_after_text": ["Intro words\nand 1", ". item"],
    "two_then_list_after_list": ["1. a\n\n2", ". b"],
    "emphasis_closes_later": ["Some *em", "phasis goes", " on* here"],
    "strong_closes_later": ["a **b c", " d** e"],
    "underscore_after_closer": ["say _a_", "b and more"],
    "backtick_closes_later": ["use `foo", " bar` now"],
    "link_completes_later": ["see [docs", "](https://e.com", ") now"],
    "entity_completes_later": ["fish &am", "p chips"],
    "backslash_then_star": ["two \\", "*three*"],
    "trailing_spaces_then_newline": ["line one  ", "\nline two"],
    "trailing_space_then_words": ["words ", " ", "more words"],
    "table_header_then_delimiter": ["Intro\n\na | b", "\n--|--", "\n1 | 2"],
    "table_row_grows": ["| a | b |\n|---|---|\n| 1", " | 2", " | 3 |"],
    "table_without_columns": ["|\n", "| "],
    "table_dash_space_delimiter": ["| a | b |\n", "- |-"],
    "table_delimiter_typed": ["| a | *b* |\n", "|-", "-|", ":-", "-:|", "\n| 1 | 2 |"],
    "table_delimiter_then_paragraph": ["| a | b |\n|-", "|x", "\nmore"],
    "table_header_typed": ["| a", " | *b*", " |  ", "\n", "|-", "-|-", "-|", "\n| 1"],
    "pipe_line_then_text": ["| a |", "\nmore words", "\n|-|"],
    "pipe_line_then_list": ["| a |", "\n- item", "\n|-|"],
    "pipe_line_then_setext": ["| a |", "\n--", "-"],
    "task_item_then_lazy_line": ["- [ ] todo\n- [x] done\nP", "lain *words*"],
    "setext_underline": ["Title words", "\n===", "\n\nnext"],
    "heading_closing_hashes": ["## Heading words", " #", "#"],
    "heading_grows": ["# Head", "ing with words", " and more"],
    "reference_definition": ["[ref]:", " https://e.com", " 'T'\n\nuse [ref]"],
    "task_list": ["- [", " ] task", " words"],
    "fence_closes": ["Text\n\n```\ncode line\n", "``", "`\n\nafter words"],
    "fence_in_list_item": ["- item words\n  ```\n  code", "\n  ```\n- next"],
    "blockquote_grows": ["> quoted words", " and more", "\nlazy words"],
    "nbsp_and_tabs": ["words\u00a0more", "\tand\u3000more", " end"],
    "html_is_escaped": ["words <b", ">bold</b> & more"],
    "long_paragraph_with_markup": [
        "A long paragraph with **strong** words and `code` and *em* in it, ",
        "growing past the freeze point so a finished prefix is cached; then ",
        "an *emphasis that opens here and closes much later, after the freeze ",
        "point* and a [link](https://e.com/x) and more words to finish.",
    ],
    "cr_lf_split_between_deltas": ["a\r", "\nb\r", "\r\n", "c\r", "", "\n\r"],
    "cr_in_open_fence": ["Intro\n\n```\n\r", "\n", "x\r"],
    "list_items_one_by_one": ["- one", "\n", "-", " two *em*", "\n- ", "three", "\n\n- four"],
    "list_item_after_nested": ["- a\n  - b", "\n- c", " d"],
    "snake_case_prose": ["call sort_numbers_report", " with the items and _then_ ", "x"],
}


@both_ways
@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_streaming_edge_case_matches_at_every_flush(name, fast_paths):
    pieces = EDGE_CASES[name]
    renderer = assert_every_flush_matches(pieces, fast_paths=fast_paths)
    assert renderer.text == "".join(pieces).replace("\r\n", "\n").replace("\r", "\n")


@both_ways
@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_streaming_edge_case_one_character_at_a_time(name, fast_paths):
    assert_every_flush_matches(list("".join(EDGE_CASES[name])), fast_paths=fast_paths)


def test_streaming_plain_words_skip_the_parser(parser_work):
    renderer = StreamingMarkdown()
    renderer.feed("# Title\n\nSome *text* here")
    parsed = parser_work.chars
    update = renderer.feed(" and more plain words, 42 of them.")
    assert parser_work.chars == parsed
    assert update.tail_html == "<p>Some <em>text</em> here and more plain words, 42 of them.</p>\n"


def test_streaming_without_fast_paths_parses_the_open_block_every_flush(parser_work):
    renderer = StreamingMarkdown(fast_paths=False)
    renderer.feed("# Title\n\nSome *text* here")
    parsed = parser_work.chars
    update = renderer.feed(" and more plain words, 42 of them.")
    assert parser_work.chars - parsed == len("Some *text* here and more plain words, 42 of them.")
    assert update.tail_html == "<p>Some <em>text</em> here and more plain words, 42 of them.</p>\n"


def test_streaming_long_paragraph_reparses_a_bounded_suffix(parser_work):
    renderer = StreamingMarkdown()
    renderer.feed("Start ")
    sentence = "a *b* c `d` e. "
    parsed = []
    for _ in range(40):
        before = parser_work.chars
        renderer.feed(sentence)
        parsed.append(parser_work.chars - before)
    assert max(parsed[10:]) < 8 * len(sentence)
    assert page_of(renderer) == render_markdown(renderer.text)


# Words and punctuation that take the fast paths, mixed with every Markdown special.
STREAM_PIECES = [*"ab cd.,'\"-=:?1 2\n\n\t*_~`[]()!<>&#|\\", "word", " more words", "日本語"]
STREAM_PIECES += ["- ", "1. ", "> ", "## ", "```\n", "~~~", "| x |", "|---|", "\n\n", "===", "  \n"]
STREAM_PIECES += ["\u00a0", "**bold**", "_em_", "[a](https://e.com)", "&amp;", "    "]


@both_ways
@settings(max_examples=400, deadline=None)
@given(text=st.lists(st.sampled_from(STREAM_PIECES), max_size=50).map("".join), data=st.data())
def test_streaming_every_flush_matches_render_markdown(text, data, fast_paths):
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=40))
    assert_every_flush_matches(split_at(text, cuts), open_fence_colours=True, fast_paths=fast_paths)


@settings(max_examples=200, deadline=None)
@given(
    code=st.text(st.characters(blacklist_characters="`~", blacklist_categories=["Cs"])),
    data=st.data(),
)
def test_streaming_open_fence_every_flush_matches(code, data):
    text = "Intro\n\n```\n" + code
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=30))
    assert_every_flush_matches(split_at(text, cuts))


TABLE_CELLS = [
    "a",
    "word two",
    "42%",
    "",
    " x ",
    "*em*",
    "`co|de`",
    "a \\| b",
    "**b**",
    "[l](https://e.com)",
]
TABLE_CELLS += ["&amp;", "<b>", "~~s~~", "\\", "_u", "日本"]
ALIGNMENTS = ["---", ":--", "--:", ":-:"]
# Second lines that are, or are nearly, delimiter rows for some column count.
ODD_DELIMITERS = ["| |", "|", "||", "|-|-", "--|--", "-", "---", "|x|", ":-", "| - |", "- -"]
ODD_DELIMITERS += ["|-|\t"]
ODD_DELIMITERS += ["-|-", " |-|", "|:-:|--:", "|---|---|---|---|", "=", "|-- -|", "|-|-|", "| "]
ODD_DELIMITERS += ["- |-", "-\t|-", "- |", "|-|-|-"]
# Lines after a table: rows without outer pipes, and lines that end it or start other blocks.
TABLE_ENDINGS = ["", "\n", "\n\nafter words", "\n> quote", "\n- item", "\n# head", "\n```\ncode"]
TABLE_ENDINGS += ["\nplain | cells", "\n    indented", "\n1. one", "\n---", "\nlazy line"]


def table_row(cells: list[str], outer: bool) -> str:
    inner = " | ".join(cells)
    return f"| {inner} |" if outer else inner


@st.composite
def tables(draw) -> str:
    columns = draw(st.integers(1, 4))
    header_cells = st.sampled_from(["h", "head", "*h*", "a\\|b", "", "`a|b`"])
    header = [draw(header_cells) for _ in range(columns)]
    delimiter = "|" + "|".join(draw(st.sampled_from(ALIGNMENTS)) for _ in range(columns)) + "|"
    if draw(st.integers(0, 3)) == 0:
        delimiter = draw(st.sampled_from(ODD_DELIMITERS))
    rows = draw(
        st.lists(
            st.lists(st.sampled_from(TABLE_CELLS), min_size=0, max_size=columns + 1),
            max_size=6,
        )
    )
    lines = [table_row(header, draw(st.booleans())), delimiter]
    if draw(st.integers(0, 9)) == 0:
        lines[0] = "|"  # no columns: never a table
    lines += [table_row(row, draw(st.booleans())) for row in rows]
    intro = draw(st.sampled_from(["", "Intro words\n\n", "```\nx\n```\n"]))
    return intro + "\n".join(lines) + draw(st.sampled_from(TABLE_ENDINGS))


@settings(max_examples=300, deadline=None)
@given(text=tables(), data=st.data())
def test_streaming_table_every_flush_matches(text, data):
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=30))
    assert_every_flush_matches(split_at(text, cuts))


@pytest.mark.parametrize("size", [1, 3, 8])
def test_streaming_table_fixed_chunks_match(size):
    text = (
        "| name | `code` | share |\n|:--|:-:|--:|\n| a *b* | `x\\|y` | 40% |\nplain | row\n"
        "| [l](https://e.com) | **s** | ~~d~~ | extra |\n|\n\nAfter the table."
    )
    assert_every_flush_matches([text[i : i + size] for i in range(0, len(text), size)])


def test_streaming_table_rows_skip_the_block_parser(parser_work):
    renderer = StreamingMarkdown()
    renderer.feed("| a | b |\n|---|---|\n")
    parsed = parser_work.chars
    for _ in range(30):
        renderer.feed("| 12 | some words |\n")
    # Plain cells are not parsed at all; the table is not parsed again.
    assert parser_work.chars == parsed
    renderer.feed("| *em* | x |")
    assert parser_work.chars == parsed + len("*em*")
    assert page_of(renderer) == render_markdown(renderer.text)


def test_streaming_table_keeps_markdown_its_cap_on_filled_in_cells():
    # markdown-it ends a table once it has filled in 65536 empty cells for short rows;
    # that count spans rows, so the row-by-row path must stop at the same line.
    header = "|a" * 256 + "|\n" + "|-" * 256 + "|\n"
    rows = "x\n" * 300
    assert_every_flush_matches([header, rows[:500], rows[500:], "y"])


LIST_ITEMS = ["word", "two words", "*em* x", "`code`", "a  ", "日本", "[l](https://e.com)", "x\\"]
LIST_ITEMS += ["[ ] task", "[x] done", "", "  nested", "# head", "---", "1. one", "> q"]
LIST_LINE_STARTS = ["- ", "- ", "- ", "* ", "+ ", "-  ", "  - ", "", "  ", "-"]


@st.composite
def lists(draw) -> str:
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        start = draw(st.sampled_from(LIST_LINE_STARTS))
        lines.append(start + draw(st.sampled_from(LIST_ITEMS)))
        if draw(st.integers(0, 5)) == 0:
            lines.append("")
    intro = draw(st.sampled_from(["", "Intro words\n\n", "Intro words\n"]))
    return intro + "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\nafter", "\n-"]))


@settings(max_examples=300, deadline=None)
@given(text=lists(), data=st.data())
def test_streaming_list_every_flush_matches(text, data):
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=30))
    assert_every_flush_matches(split_at(text, cuts))


def test_streaming_new_list_items_skip_the_block_parser(parser_work):
    renderer = StreamingMarkdown()
    renderer.feed("- first item")
    parsed = 0
    for piece in ["\n", "-", " ", "second item", "\n- ", "third", " item *em*"]:
        before = parser_work.chars
        renderer.feed(piece)
        parsed += parser_work.chars - before
        assert page_of(renderer) == render_markdown(renderer.text)
    # Only the new items' own text is parsed ("third" once more with its markup), never
    # the list.
    assert parsed == len("second itemthirdthird item *em*")


def test_streaming_open_fence_last_line_differs_in_colours_only():
    # Documented: the unfinished last line of an open fence is shown unhighlighted.
    assert_every_flush_matches(["~~~~c aaaa```\n", "a"], open_fence_colours=True)


@pytest.mark.parametrize(
    "block",
    [
        "A paragraph with *some* words",
        "## A heading",
        "- one\n- two *em*",
        "> quoted *words*",
        "| a | b |\n|---|---|\n| 1 | 2 |",
    ],
)
def test_streaming_finished_block_is_committed_without_parsing_it_again(block, parser_work):
    renderer = StreamingMarkdown()
    *lines, last = block.split("\n")
    for line in lines:
        renderer.feed(line + "\n")
    renderer.feed(last[:-1])
    renderer.feed(last[-1])
    parsed = parser_work.chars
    update = renderer.feed("\n\nNext")
    # Only the new paragraph is parsed; the finished block's HTML comes from the fast path.
    assert parser_work.chars - parsed == len("Next")
    assert update.appended_html == render_markdown(block)
    assert page_of(renderer) == render_markdown(renderer.text)
