"""Assistants: reusable setups (instructions, model, options, starter prompts) that a
team shares, and the conversations bound to them."""
