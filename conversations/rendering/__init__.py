"""Message text to safe HTML: Markdown, code highlighting, citations, the notes on a bubble."""
