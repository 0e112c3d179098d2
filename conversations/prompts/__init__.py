"""Saved prompts: snippets of text a person inserts by typing `/command` in the composer,
kept for themselves or shared with groups or the whole team."""
