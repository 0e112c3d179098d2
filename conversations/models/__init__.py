"""The data a chat keeps, one module per feature; Django finds every model here."""

from conversations.models.assistants import (
    ASSISTANT_INSTRUCTIONS_CHARS,
    PROMPT_TEXT_CHARS,
    STARTER_PROMPT_CHARS,
    STARTER_PROMPTS,
    Assistant,
    AssistantVersion,
    SavedPrompt,
    Shared,
    SharedQuerySet,
    Visibility,
)
from conversations.models.attachments import (
    Attachment,
    attachment_path,
)
from conversations.models.catalogue import (
    ModelChoice,
    ModelChoiceQuerySet,
    default_context_mode,
    open_to,
    preferred,
)
from conversations.models.chats import (
    AnswerMode,
    Conversation,
    ConversationMember,
    ConversationQuerySet,
    Message,
    heir_of,
)
from conversations.models.groups import (
    MembershipEvent,
)
from conversations.models.preferences import (
    UserPreference,
)
from conversations.models.running import (
    ORPHAN_AFTER,
    RunningAnswer,
    RunningAnswerQuerySet,
)
from conversations.models.sharing import (
    RetainedTranscript,
    ReviewedConversation,
    ShareLink,
    ShareLinkQuerySet,
    SharingPolicy,
    TranscriptAccess,
    new_share_token,
)
from conversations.models.usage import (
    DefaultQuota,
    GroupQuota,
    Quota,
    QuotaCounter,
    QuotaLimits,
    TurnGate,
    UsageRecord,
)

__all__ = [
    "ASSISTANT_INSTRUCTIONS_CHARS",
    "ORPHAN_AFTER",
    "PROMPT_TEXT_CHARS",
    "STARTER_PROMPTS",
    "STARTER_PROMPT_CHARS",
    "AnswerMode",
    "Assistant",
    "AssistantVersion",
    "Attachment",
    "Conversation",
    "ConversationMember",
    "ConversationQuerySet",
    "DefaultQuota",
    "GroupQuota",
    "MembershipEvent",
    "Message",
    "ModelChoice",
    "ModelChoiceQuerySet",
    "Quota",
    "QuotaCounter",
    "QuotaLimits",
    "RetainedTranscript",
    "ReviewedConversation",
    "RunningAnswer",
    "RunningAnswerQuerySet",
    "SavedPrompt",
    "ShareLink",
    "ShareLinkQuerySet",
    "Shared",
    "SharedQuerySet",
    "SharingPolicy",
    "TranscriptAccess",
    "TurnGate",
    "UsageRecord",
    "UserPreference",
    "Visibility",
    "attachment_path",
    "default_context_mode",
    "heir_of",
    "new_share_token",
    "open_to",
    "preferred",
]
