"""Group conversations: members, presence, typing, mentions."""
