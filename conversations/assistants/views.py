"""The assistants pages: browse and search, make and edit one, its icon, and leaving a
conversation's assistant behind. Views parse, authorise and render; the rules live in
`library` (who may use or edit) and `rules` (what a valid setup is)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conversations.assistants import rules
from conversations.assistants.icons import IconError, store_icon
from conversations.assistants.library import (
    editable_assistants,
    record_version,
    shareable_groups,
    usable_assistant,
    usable_assistants,
)
from conversations.models import (
    ASSISTANT_INSTRUCTIONS_CHARS,
    STARTER_PROMPT_CHARS,
    STARTER_PROMPTS,
    Assistant,
    Conversation,
    ModelChoice,
    Visibility,
)
from conversations.params import query_text
from conversations.tools import REGISTRY

PAGE = "conversations/assistants.html"
FORM_PAGE = "conversations/assistant_form.html"
EFFORTS = ("minimal", "low", "medium", "high")
STARTER_FIELDS = tuple(f"starter_{number}" for number in range(1, STARTER_PROMPTS + 1))


class AssistantForm(forms.ModelForm):
    """An assistant as its owner edits it; the checks are `rules`', shared with the admin
    and JSON import."""

    icon_upload = forms.FileField(
        label=gettext_lazy("Icon"),
        required=False,
        help_text=gettext_lazy("A PNG, JPEG, WebP or GIF image, up to 1 MB; shown at 128 px."),
    )
    remove_icon = forms.BooleanField(label=gettext_lazy("Remove the icon"), required=False)
    reasoning_effort = forms.ChoiceField(
        label=gettext_lazy("Reasoning effort"),
        required=False,
        choices=[("", gettext_lazy("The model's default"))] + [(e, e) for e in EFFORTS],
    )
    tools = forms.MultipleChoiceField(
        label=gettext_lazy("Tools"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Offered to the model when its catalogue entry allows them."),
    )

    class Meta:
        model = Assistant
        fields = [
            "name",
            "description",
            "emoji",
            "instructions",
            "model",
            "reasoning_effort",
            "web_search",
            "tools",
            "lock_options",
            "visibility",
            "groups",
        ]
        widgets = {
            "instructions": forms.Textarea(attrs={"rows": 10}),
            "visibility": forms.RadioSelect,
            "groups": forms.CheckboxSelectMultiple,
        }
        help_texts = {
            "emoji": gettext_lazy("Shown when there is no icon, for example 🧑‍💻."),
            "instructions": gettext_lazy(
                "Sent to the model with every message of conversations with this assistant. "
                "People using it do not see them."
            ),
        }
        error_messages = {
            "model": {"invalid_choice": gettext_lazy("That model is not available to you.")}
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["model"].queryset = ModelChoice.objects.usable_by(user).order_by(
            "position", "label"
        )
        self.fields["model"].empty_label = _("Each person's default model")
        # An admin may have shared it with a group its owner is not in: keep that group
        # on offer (and ticked), or the owner's next save would drop it unasked.
        current = self.instance.groups.all() if self.instance.pk else Group.objects.none()
        self.fields["groups"].queryset = (shareable_groups(user) | current).distinct()
        self.fields["tools"].choices = [(name, name) for name in sorted(REGISTRY)]
        self.fields["instructions"].max_length = ASSISTANT_INSTRUCTIONS_CHARS
        self.fields["instructions"].widget.attrs["maxlength"] = ASSISTANT_INSTRUCTIONS_CHARS
        starters = list(self.instance.starter_prompts or ())
        for number, name in enumerate(STARTER_FIELDS):
            self.fields[name] = forms.CharField(
                label=_("Starter prompt %(number)d") % {"number": number + 1},
                required=False,
                max_length=STARTER_PROMPT_CHARS,
                initial=starters[number] if number < len(starters) else "",
            )
        # Who it is, what it says, what it runs on, who may use it.
        self.order_fields(
            [
                "name",
                "description",
                "emoji",
                "icon_upload",
                "remove_icon",
                "instructions",
                *STARTER_FIELDS,
                "model",
                "reasoning_effort",
                "web_search",
                "tools",
                "lock_options",
                "visibility",
                "groups",
            ]
        )

    def clean_model(self):
        return rules.clean_model(self.cleaned_data.get("model"))

    def clean_tools(self):
        return rules.clean_tools(self.cleaned_data.get("tools") or [])

    def clean(self):
        cleaned = super().clean()
        for field, error in rules.clean_dependent_fields(cleaned).items():
            self.add_error(field, error)
        try:
            self.instance.starter_prompts = rules.clean_starter_prompts(
                cleaned.get(name, "") for name in STARTER_FIELDS
            )
        except ValidationError as error:
            self.add_error(None, error)
        if cleaned.get("visibility") != Visibility.GROUPS:
            cleaned["groups"] = []
        return cleaned

    def save_assistant(self) -> Assistant:
        """Save the assistant (a new version when what it tells the model changed) and
        its icon; raise `IconError` for an icon that cannot be one, saving nothing."""
        assistant = self.instance
        if assistant.pk is None:
            assistant.owner = self.user
        upload = self.cleaned_data.get("icon_upload")
        if upload:
            store_icon(assistant, upload)
        elif self.cleaned_data.get("remove_icon") and assistant.icon:
            assistant.icon.delete(save=False)
        changed = None if assistant.pk is None else set(self.changed_data)
        self.save(commit=False)  # gives the form its save_m2m, for the groups
        record_version(assistant, changed)
        self.save_m2m()
        return assistant


@require_GET
def assistants(request):
    """The assistants the user may use, featured first, and their own disabled ones."""
    search = query_text(request, "q")
    usable = list(usable_assistants(request.user, search=search).select_related("owner"))
    own_disabled = Assistant.objects.filter(owner=request.user, enabled=False) if not search else []
    editable = set(editable_assistants(request.user).values_list("pk", flat=True))
    return render(
        request,
        PAGE,
        {"assistants": usable, "own_disabled": own_disabled, "editable": editable, "q": search},
    )


@require_http_methods(["GET", "POST"])
def new_assistant(request):
    return edit_page(request, Assistant(owner=request.user))


@require_http_methods(["GET", "POST"])
def edit_assistant(request, pk: int):
    return edit_page(request, get_object_or_404(editable_assistants(request.user), pk=pk))


def edit_page(request, assistant: Assistant):
    """Show the form; save it, keeping everything typed when something is refused."""
    form = AssistantForm(
        request.POST or None, request.FILES or None, instance=assistant, user=request.user
    )
    if request.method == "POST" and form.is_valid():
        try:
            saved = form.save_assistant()
        except IconError as error:
            form.add_error("icon_upload", error.user_message)
        else:
            messages.success(
                request,
                _("Saved “%(name)s”. Its conversations use this version from their next message.")
                % {"name": saved.name},
            )
            return redirect("assistant_edit", saved.pk)
    return render(request, FORM_PAGE, {"form": form, "assistant": assistant})


@require_POST
def delete_assistant(request, pk: int):
    """Delete the assistant; its conversations stay, and go on without it."""
    assistant = get_object_or_404(editable_assistants(request.user), pk=pk)
    name = assistant.name
    if assistant.icon:
        assistant.icon.delete(save=False)
    assistant.delete()
    messages.success(request, _("Deleted “%(name)s”.") % {"name": name})
    return redirect("assistants")


@require_GET
def assistant_icon(request, pk: int):
    """An assistant's icon, for those who may use it, staff, and people whose own
    conversations it spoke in (after they lost it). Shared transcripts show no icon."""
    assistant = get_object_or_404(Assistant.objects.only("icon", "owner_id"), pk=pk)
    may_see = (
        request.user.is_staff
        or usable_assistant(request.user, pk) is not None
        or Conversation.objects.for_user(request.user).filter(messages__assistant=pk).exists()
        or Assistant.objects.owned_by(request.user).filter(pk=pk).exists()
    )
    if not may_see or not assistant.icon:
        raise Http404("No icon.")
    response = FileResponse(assistant.icon.open("rb"), content_type="image/png")
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = 'inline; filename="icon.png"'
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_POST
def leave_assistant(request, pk: int):
    """Unbind the user's conversation from its assistant, so they can keep chatting
    after losing it; earlier answers keep saying which assistant wrote them."""
    conversation = get_object_or_404(Conversation.objects.for_user(request.user), pk=pk)
    conversation.assistant = None
    conversation.save(update_fields=["assistant"])
    if request.htmx:
        # The notice goes (the button's target) and the header's badge with it; the
        # composer stays as it is, with whatever the user had typed.
        return HttpResponse('<div hx-swap-oob="delete:#chat-assistant-badge"></div>')
    return redirect("conversation", pk)
