"""Read-only transcripts: share links, continuing a shared chat, admin review."""
