"""Simulated web search: a query from the question, two sources, and a cited answer.

Sources live on reserved example domains so nothing looks like a real citation. The
answer links each source in Markdown, and each link is covered by a `url_citation`
annotation whose indices are character offsets into the answer text, as on real gateways.
"""

# Chinese answers use full-width punctuation on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from .answers import snippet
from .tokens import is_cjk

__all__ = ["Citation", "compose_search_reply", "search_query"]


@dataclass(frozen=True, slots=True)
class Citation:
    url: str
    title: str
    start_index: int
    end_index: int

    def to_dict(self) -> dict[str, object]:
        """Return the wire annotation."""
        return {
            "type": "url_citation",
            "url": self.url,
            "title": self.title,
            "start_index": self.start_index,
            "end_index": self.end_index,
        }


def search_query(text: str) -> str:
    """Return the query the model would type for `text`."""
    query = re.sub(
        r"^\s*(?:please\s+)?(?:search(?: the web)?(?: for)?|look up|find)\s+", "", text, flags=re.I
    )
    query = snippet(query.strip().rstrip("?？.!。！"), 80)
    return query or "latest news"


def compose_search_reply(query: str) -> tuple[str, list[Citation]]:
    """Return the answer text and its citations for a search on `query`."""
    slug = quote(re.sub(r"\s+", "_", query.strip())[:60], safe="_")
    sources = [
        (
            f"https://en.example.org/wiki/{slug}",
            f"{query} - Example Encyclopedia",
            "en.example.org",
        ),
        (
            f"https://news.example.com/search?q={slug}",
            f"Latest on {query} - Example News",
            "news.example.com",
        ),
    ]
    links = [f"[{host}]({url})" for url, _, host in sources]
    if is_cjk(query):
        text = (
            f"以下是关于“{query}”的搜索结果：\n\n"
            f"- 百科条目给出了概览（{links[0]}）。\n"
            f"- 新闻网站汇总了最新报道（{links[1]}）。\n\n"
            "这些结果来自离线模拟器，并非真实网页。"
        )
    else:
        text = (
            f"Here's what I found about “{query}”:\n\n"
            f"- An overview is on Example Encyclopedia ({links[0]}).\n"
            f"- Recent coverage is summarised by Example News ({links[1]}).\n\n"
            "These results come from the offline simulator, not the real web."
        )
    citations = []
    for (url, title, _), link in zip(sources, links, strict=True):
        start = text.index(link)
        citations.append(Citation(url, title, start, start + len(link)))
    return text, citations
