"""Tests for conversations/rendering/: Markdown, plain text, streaming, and XSS."""

from __future__ import annotations

import html
import itertools
import re
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversations.rendering.markdown import render_markdown, render_plain
from conversations.rendering.streaming import StreamingMarkdown

# The copy button has no words: the page labels it in its reader's language.
CODE_HEAD = (
    '<div class="code-block"><div class="code-head"><span class="code-lang">{}</span>'
    '<button type="button" class="copy-button"></button></div><pre class="highlight"><code>'
)

# Every comparison with rendering the whole text runs with the fast paths and without.
both_ways = pytest.mark.parametrize("fast_paths", [True, False], ids=["fast", "slow"])


def stream(text: str, cuts: list[int], *, fast_paths: bool = True) -> tuple[StreamingMarkdown, str]:
    """Feed `text` split at `cuts`; return the renderer and appended blocks + final tail."""
    renderer = StreamingMarkdown(fast_paths=fast_paths)
    bounds = [0, *sorted(cuts), len(text)]
    updates = [renderer.feed(text[start:end]) for start, end in itertools.pairwise(bounds)]
    return renderer, "".join(u.appended_html for u in updates) + renderer.tail_html()


def stream_in_pieces(text: str, size: int, *, fast_paths: bool = True) -> str:
    return stream(text, list(range(size, len(text), size)), fast_paths=fast_paths)[1]


def text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def assert_inert(fragment: str) -> None:
    """Assert the HTML can run no script and fetch nothing by itself."""
    parser = _Tags()
    parser.feed(fragment)
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, tag
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            squashed = re.sub(r"[\s\x00-\x20]+", "", value or "").lower()
            assert not squashed.startswith(("javascript:", "data:", "vbscript:")), (tag, value)
    assert "<script" not in fragment.lower()
    without_values = re.sub(r'"[^"]*"', '""', fragment)
    assert not re.search(r"<[a-z][^>]*\son\w+\s*=", without_values, re.IGNORECASE)


ALLOWED_TAGS = (
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr", "br", "ul", "ol", "li"}
    | {"a", "em", "strong", "s", "del", "code", "span"}
    | {"div", "pre", "button", "input"}
    | {"table", "thead", "tbody", "tr", "th", "td"}
)

# --- render_markdown ------------------------------------------------------------------


def test_render_markdown_paragraph_with_emphasis():
    assert render_markdown("Hello *big* **world**") == (
        "<p>Hello <em>big</em> <strong>world</strong></p>\n"
    )


def test_render_markdown_raw_html_is_escaped():
    assert render_markdown("<b>hi</b>") == "<p>&lt;b&gt;hi&lt;/b&gt;</p>\n"


def test_render_markdown_strikethrough():
    assert render_markdown("~~old~~ new") == "<p><s>old</s> new</p>\n"


def test_render_markdown_task_list():
    out = render_markdown("- [x] done\n- [ ] todo")
    assert '<ul class="contains-task-list">' in out
    assert '<input class="task-list-item-checkbox" checked="checked" disabled="disabled"' in out


def test_render_markdown_table_in_scroll_container():
    out = render_markdown("| a | b |\n|:--|--:|\n| 1 | 2 |")
    assert out.startswith('<div class="table-scroll"><table>')
    assert out.endswith("</table></div>\n")
    assert '<td class="align-right">2</td>' in out


def test_render_markdown_code_block_markup():
    out = render_markdown("```python\nx = 1\n```")
    assert out.startswith(CODE_HEAD.format("python"))
    assert out.endswith("</code></pre></div>\n")


def test_render_markdown_code_block_highlighted():
    assert '<span class="k">def</span>' in render_markdown("```py\ndef f(): pass\n```")


def test_render_markdown_code_block_text_is_exact():
    code = "if a < b and c > \"d\" & e:\n\tpass  # 'quoted'\n\n"
    out = render_markdown(f"```python\n{code}```")
    assert text_of(out.split("<code>")[1].split("</code>")[0]) == code


def test_render_markdown_unknown_language_is_plain():
    assert render_markdown("```nosuchlang\n<x>\n```") == (
        CODE_HEAD.format("nosuchlang") + "&lt;x&gt;\n</code></pre></div>\n"
    )


def test_render_markdown_indented_code_gets_copy_button():
    assert render_markdown("    code here").startswith(CODE_HEAD.format("text"))


def test_render_markdown_link_opens_in_new_tab():
    assert render_markdown("[docs](https://example.com/a?b=1&c=2)") == (
        '<p><a href="https://example.com/a?b=1&amp;c=2" target="_blank" '
        'rel="noopener noreferrer">docs</a></p>\n'
    )


def test_render_markdown_relative_link_becomes_text():
    assert render_markdown("[admin](/admin/) [top](#top)") == "<p>admin top</p>\n"


def test_render_markdown_image_becomes_link():
    assert render_markdown("![a *cat*](https://example.com/cat.png)") == (
        '<p><a href="https://example.com/cat.png" class="image-link" target="_blank" '
        'rel="noopener noreferrer">a cat</a></p>\n'
    )


def test_render_markdown_image_never_fetches():
    assert "<img" not in render_markdown(
        "![x](https://e.com/i.png)\n\n![y](data:image/png;base64,AA==)"
    )


def test_render_markdown_image_inside_link_is_text():
    out = render_markdown("[![logo](https://e.com/l.png)](https://e.com)")
    assert out == (
        '<p><a href="https://e.com" target="_blank" rel="noopener noreferrer">logo</a></p>\n'
    )


def test_render_markdown_cjk_text():
    assert render_markdown("这是**重要**的内容。日本語も") == (
        "<p>这是<strong>重要</strong>的内容。日本語も</p>\n"
    )


# --- render_plain ---------------------------------------------------------------------


def test_render_plain_escapes_and_keeps_lines():
    assert render_plain("<b>hi</b> & *x*\r\n  indented") == (
        '<div class="plain-text">&lt;b&gt;hi&lt;/b&gt; &amp; *x*\n  indented</div>'
    )


def test_render_plain_quotes_are_escaped():
    assert render_plain("\"'") == '<div class="plain-text">&quot;&#x27;</div>'


# --- XSS ------------------------------------------------------------------------------

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<!-- <script>alert(1)</script> -->",
    "<scr<script>ipt>alert(1)</script>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="java\nscript:alert(1)">x</a>',
    '<iframe src="javascript:alert(1)"></iframe>',
    "<style>body{display:none}</style>",
    "<div style=\"background:url('javascript:alert(1)')\">x</div>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](javascript&#58;alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](<javascript:alert(1)>)",
    "[x]( javascript:alert(1) )",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](vbscript:msgbox(1))",
    "[x](%6Aavascript:alert(1))",
    "[x][r]\n\n[r]: javascript:alert(1)",
    '[x](https://ok.example "t\\" onmouseover=\\"alert(1)")',
    "<javascript:alert(1)>",
    "<data:text/html,<script>alert(1)</script>>",
    "<vbscript:msgbox(1)>",
    "![x](javascript:alert(1))",
    "![x](data:image/png;base64,iVBORw0KGgo=)",
    '![x" onerror="alert(1)](https://e.com/i.png)',
    '```python" onmouseover="alert(1)\nx\n```',
    "``` onmouseover=alert(1)\nx\n```",
    "~~~<script>alert(1)</script>\nx\n~~~",
    "`<script>alert(1)</script>`",
    "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
    "- [ ] <img src=x onerror=alert(1)>",
    "> <iframe srcdoc='<script>alert(1)</script>'>",
    "\x00<script>alert(1)</script>",
]


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_render_markdown_xss_payload_is_inert(payload):
    assert_inert(render_markdown(payload))


@both_ways
@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_streaming_xss_payload_is_inert(payload, fast_paths):
    renderer = StreamingMarkdown(fast_paths=fast_paths)
    updates = [renderer.feed(payload[i : i + 3]) for i in range(0, len(payload), 3)]
    for update in updates:
        assert_inert(update.appended_html + update.tail_html)


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_render_plain_xss_payload_is_text(payload):
    out = render_plain(payload)
    assert out.count("<") == 2
    assert_inert(out)


# --- Streaming ------------------------------------------------------------------------

STREAM_CASES = {
    "paragraphs": "First paragraph\nstill first.\n\nSecond *one*.\n\n\nThird.",
    "fence_with_blank_lines": "Intro\n\n```python\ndef f():\n\n\n    return 1\n```\n\nAfter.",
    "tilde_fence": "~~~\n```\nnot a close\n```\n~~~\ntext",
    "long_fence": "````md\n```python\ninner\n```\n````\n\nout",
    "indented_fence": "  ```\n  code\n    more\n  ```\nafter",
    "fence_without_newline_at_end": "Text\n\n```js\nlet a = 1;\n```",
    "loose_list": "- one\n\n- two\n\n  still two\n- three\n\nafter",
    "ordered_list_resumes": "1. a\n\n2. b\n\n10. c\n\nend",
    "nested_list_with_code": "1. step\n   ```sh\n   ls\n   ```\n2. next\n\nDone.",
    "table_after_paragraph": "Here:\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nAfter.",
    "table_interrupts_paragraph": "Here:\n| a | b |\n|---|---|\n| 1 | 2 |\nmore row",
    "not_a_table": "Here:\n| a | b |\n|---|x|\nplain",
    "setext_headings": "Title\n=====\n\nSub\n---\ntext\n***",
    "blockquote_lazy": "> quoted\nlazy line\n\n> second\n\nplain",
    "indented_code": "    a\n\n    b\n\nc\n\n    d",
    "reference_before_use": "[ref]: https://example.com 'T'\n\nSee [ref] and [ref][].",
    "cjk": "# 标题\n\n中文段落。**加粗**。\n\n- 项目一\n- 項目二\n\n日本語の文章です。",
    "crlf": "a\r\n\r\nb\r\n```\r\nc\r\n```\r\n",
    "headings_and_rules": "# One\n## Two\n---\n* * *\n### Three",
    "open_fence_at_end": "Intro\n\n```\ncode <b>\n\nmore",
    "open_fence_ends_in_blanks": "Intro\n\n~~~\ncode\n  \n \t",
}


@both_ways
@pytest.mark.parametrize("size", [1, 2, 5, 13, 10_000])
@pytest.mark.parametrize("name", sorted(STREAM_CASES))
def test_streaming_matches_render_markdown(name, size, fast_paths):
    text = STREAM_CASES[name]
    assert stream_in_pieces(text, size, fast_paths=fast_paths) == render_markdown(text)


def test_streaming_open_fence_tail_is_code():
    renderer = StreamingMarkdown()
    renderer.feed("Intro\n\n```python\nx = 1\n\n")
    update = renderer.feed("print(x)")
    assert update.tail_html.startswith(CODE_HEAD.format("python"))
    assert "<p>" not in update.tail_html
    assert update.tail_html.endswith("\n\nprint(x)</code></pre></div>\n")


def test_streaming_open_fence_at_end_has_same_text():
    text = "Intro\n\n```python\ns = '''multi\n\nline'''\nprint(s)\n"
    renderer, streamed = stream(text, list(range(3, len(text), 3)))
    assert text_of(streamed) == text_of(render_markdown(text))
    assert renderer.text == text


def test_streaming_finished_block_is_appended_once():
    renderer = StreamingMarkdown()
    first = renderer.feed("One.\n\nT")
    second = renderer.feed("wo.")
    assert first.appended_html == "<p>One.</p>\n"
    assert second.appended_html == ""
    assert second.tail_html == "<p>Two.</p>\n"


def test_streaming_list_item_digit_does_not_close_list():
    renderer = StreamingMarkdown()
    update = renderer.feed("1. a\n\n2")
    assert update.appended_html == ""


def test_streaming_snapshot_is_blocks_plus_tail():
    renderer = StreamingMarkdown()
    renderer.feed("# Title\n\nBody ")
    assert renderer.blocks_html() == "<h1>Title</h1>\n"
    assert renderer.tail_html() == "<p>Body</p>\n"


def test_streaming_update_is_empty_when_the_page_would_not_change():
    renderer = StreamingMarkdown()
    assert not renderer.feed("a").is_empty
    # A trailing space renders as nothing, and a flush with nothing new has nothing.
    assert renderer.feed(" ").is_empty
    assert renderer.flush().is_empty
    assert not renderer.feed("b").is_empty


def test_streaming_crlf_split_across_deltas():
    renderer, streamed = stream("a\r\n\r\nb", [1, 2, 3, 4])
    assert renderer.text == "a\n\nb"
    assert streamed == "<p>a</p>\n<p>b</p>\n"


def test_streaming_forward_reference_is_fixed_by_the_final_rendering():
    # Documented: a block finished before a reference's definition arrived shows it as
    # text while streaming; the finished answer is rendered whole, with the link.
    text = "See [ref].\n\nMore text.\n\n[ref]: https://example.com"
    renderer, streamed = stream(text, [11, 13, 20])
    assert streamed.startswith("<p>See [ref].</p>")
    assert render_markdown(renderer.text).startswith('<p>See <a href="https://example.com"')


SNIPPETS = [
    "Plain words, *emphasis*, `code`, and a [link](https://example.com/x).",
    "Second line\ncontinues the paragraph.",
    "# Heading",
    "Setext\n------",
    "- item one\n- item two\n  continued",
    "- loose\n\n- list",
    "1. first\n2. second\n\n   indented paragraph",
    "3) other\n4) style",
    "- [ ] todo\n- [x] done",
    "```python\ndef f(x):\n\n    return x * 2\n```",
    "~~~\nraw ``` text\n~~~",
    "````\n```\nnested\n```\n````",
    "    indented code\n\n    more code",
    "> quote\n> > nested\nlazy",
    "| h1 | h2 |\n|:---|---:|\n| a | b |\n| c | d |",
    "| x |\n|---|",
    "***",
    "\n[s1]: https://example.com/s1 'Title'\n\nUses [s1] and [s1][].",
    "中文段落包含**粗体**和`代码`。",
    "Text with <b>html</b> & entities &amp; ~~strike~~",
    "2. starts at two",
    "> ```\n> quoted code",
]


@both_ways
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_streaming_random_splits_of_documents(data, fast_paths):
    parts = data.draw(st.lists(st.sampled_from(SNIPPETS), min_size=1, max_size=8))
    joiners = data.draw(st.lists(st.sampled_from(["\n\n", "\n", "\n\n\n"]), min_size=len(parts)))
    text = "".join(part + joiner for part, joiner in zip(parts, joiners, strict=False))
    if data.draw(st.booleans()):
        text = text.rstrip("\n")
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=30))
    assert stream(text, cuts, fast_paths=fast_paths)[1] == render_markdown(text)


# No ":" (so no reference definitions, whose forward use is a documented difference) and
# no word that names a Pygments lexer (an open fence at the end is highlighted in pieces).
MARKDOWN_PIECES = [*"xy z \n\n\t-*+_`~#>|[]()!1.2)=\\&<中", "```", "```\n", "~~~\n", "    "]
MARKDOWN_PIECES += ["- ", "1. ", "| x |", "|---|", "\n\n", "> ", "---", "***", "==="]


@both_ways
@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from(MARKDOWN_PIECES), max_size=60).map("".join), data=st.data())
def test_streaming_random_splits_of_markdown_noise(text, data, fast_paths):
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=40))
    assert stream(text, cuts, fast_paths=fast_paths)[1] == render_markdown(text)


def realistic_answer(size: int) -> str:
    section = (
        "## Step {n}\n\nThe service reads its settings from the environment, so nothing "
        "secret lands in the repository. Set `APP_MODE` and see [the guide]"
        "(https://example.com/{n}) for the **full** list.\n\n"
        "1. Install the package.\n2. Create the config:\n   ```toml\n   port = 8000\n   ```\n"
        "3. Restart.\n\n```python\ndef load(environ):\n    mode = environ.get('MODE')\n"
        "    return Settings(mode=mode, workers={n})\n```\n\n"
        "| Setting | Default |\n|:--|--:|\n| `WORKERS` | {n} |\n| 模式 | 中文 |\n\n"
        "> **Note:** drain the node first.\n\n"
    )
    text = "".join(section.format(n=n) for n in range(size // len(section) + 1))
    return text[:size]


def streamed_parse_work(text: str, parser_work) -> int:
    """Return the characters the parser was given while ``text`` streamed in."""
    before = parser_work.chars
    renderer = StreamingMarkdown()
    for index in range(0, len(text), 4):
        renderer.append(text[index : index + 4])
        if index % 40 == 36:
            renderer.flush()
    renderer.flush()
    return parser_work.chars - before


def test_streaming_work_is_linear(parser_work):
    text = realistic_answer(20_000)
    work = streamed_parse_work(text, parser_work)
    assert work <= 3 * len(text)
    assert streamed_parse_work(realistic_answer(40_000), parser_work) <= 2.1 * work
