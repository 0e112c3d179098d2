"""The turn pipeline: frame, turn rows, plan, gateway stream, answer, HTML fragments."""
