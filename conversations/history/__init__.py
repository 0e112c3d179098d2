"""A user's own conversations: the chat page, sidebar, branches, search and exports."""
