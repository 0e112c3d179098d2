"""A user's own settings for what the models are told: custom instructions."""
