"""The admin, one module per feature; Django's autodiscovery imports this package.

- `catalogue`: the models people may chat with, checked against the gateway.
- `assistants`: every assistant, to feature, disable, review its versions and export.
- `prompts`: every saved prompt, whoever may use it.
- `quotas`: users' and groups' token limits, and the site's default.
- `usage`: the usage report (records, totals, daily chart, CSV).
- `sharing`: the sharing switch, every share link, and admin review of conversations.
- `retention`: frozen copies of deleted users' conversations.
- `audit`: the log of transcript reads.
- `groups`: the log of who joined and left group conversations.

Everything is guarded by Django's model permissions, and reading other people's
conversations by the review permission (`mixins.ReviewPermissionMixin`).
"""

from django.utils.translation import gettext_noop

from conversations.admin import (
    assistants,
    audit,
    catalogue,
    groups,
    prompts,
    quotas,
    retention,
    sharing,
    usage,
)

__all__ = [
    "assistants",
    "audit",
    "catalogue",
    "groups",
    "prompts",
    "quotas",
    "retention",
    "sharing",
    "usage",
]

# Labels of Django's own admin templates that its Simplified Chinese catalogue lacks (new
# in Django 5.1); marked here so our catalogue, which takes precedence, translates them.
DJANGO_ADMIN_GAPS = (
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
)
