"""Turn an answer's `url_citation` annotations into numbered links and a source list.

Gateways mark the span of text that cites a source (typically an inline Markdown link
such as "([example.org](https://...))"). At rest the span becomes a compact numbered
link, "[1]", and the bubble lists the sources by number, title and domain; the same
URL cited twice keeps one number.
"""

from __future__ import annotations

__all__ = ["number_citations"]


def number_citations(text: str, citations: list[dict]) -> tuple[str, list[dict]]:
    """Return the text with each cited span replaced by its number, and the sources."""
    numbers: dict[str, int] = {}
    sources: list[dict] = []
    for citation in sorted(citations, key=lambda c: c["start_index"]):
        if citation["url"] not in numbers:
            numbers[citation["url"]] = len(numbers) + 1
            sources.append({**citation, "number": numbers[citation["url"]]})
    spans = [c for c in citations if 0 <= c["start_index"] < c["end_index"] <= len(text)]
    taken_until = len(text) + 1
    for citation in sorted(spans, key=lambda c: c["start_index"], reverse=True):
        start, end = citation["start_index"], citation["end_index"]
        if end > taken_until:
            continue  # overlapping spans: keep the later one
        if text[start - 1 : start] == "(" and text[end : end + 1] == ")":
            start, end = start - 1, end + 1  # "([site](url))" becomes "[1]", not "( [1])"
        number = numbers[citation["url"]]
        url = citation["url"].replace(")", "%29").replace(" ", "%20")
        text = f"{text[:start].rstrip()} [[{number}]]({url}){text[end:]}"
        taken_until = start
    return text, sources
