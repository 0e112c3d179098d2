"""Trigram indexes for search (conversations/search.py), on PostgreSQL only.

Django writes `icontains` on PostgreSQL as `UPPER(col::text) LIKE UPPER(pattern)`, so
the GIN indexes are on those expressions: pg_trgm then answers substring searches in
any script (Chinese included) from the index. The indexes are built CONCURRENTLY, which
cannot run in a transaction, so that upgrading a large database does not block sending
messages while they build. SQLite has no such index and scans.
"""

from django.db import migrations

CREATE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS message_text_trgm ON conversations_message "
    "USING gin ((UPPER(text::text)) gin_trgm_ops)",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS conversation_title_trgm "
    "ON conversations_conversation USING gin ((UPPER(title::text)) gin_trgm_ops)",
]
# The extension stays: other database objects may have come to use it.
DROP = [
    "DROP INDEX CONCURRENTLY IF EXISTS message_text_trgm",
    "DROP INDEX CONCURRENTLY IF EXISTS conversation_title_trgm",
]


def run_on_postgresql(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("conversations", "0005_conversation_pin_and_branch"),
    ]

    operations = [
        migrations.RunPython(run_on_postgresql(CREATE), run_on_postgresql(DROP)),
    ]
