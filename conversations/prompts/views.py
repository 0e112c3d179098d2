"""The Prompts page (the user's own saved prompts and those shared with them), its form,
and the list the composer's `/` menu reads.

Edit and delete find the prompt among those the user may edit (`editable_prompts`), so
a prompt someone may not change answers 404 whether or not it exists, and a prompt
someone may not use never reaches their page or their menu.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django import forms
from django.contrib import messages
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conversations.assistants.library import shareable_groups
from conversations.models import PROMPT_TEXT_CHARS, SavedPrompt, Visibility
from conversations.params import query_text
from conversations.prompts.library import (
    COMMAND,
    clashing_prompt,
    command_from_input,
    editable_prompts,
    menu_entries,
    owner_name,
    usable_prompts,
)

PAGE = "conversations/prompts.html"
FORM_PAGE = "conversations/prompt_form.html"


def clash_message(clash: SavedPrompt, *, owner, editor) -> str:
    """Say which prompt already answers to the command, so the user knows what to rename.

    `owner` is whose menu the command must fit; `editor` is who is typing (staff may
    edit someone else's prompt).
    """
    values = {
        "command": clash.command,
        "title": clash.title or f"/{clash.command}",
        "owner": owner_name(clash),
    }
    if clash.owner_id != owner.pk:
        message = _(
            "/%(command)s is already the command of “%(title)s”, shared with you by "
            "%(owner)s. Choose another command."
        )
    elif owner.pk == editor.pk:
        message = _(
            "You already have a prompt with the command /%(command)s (“%(title)s”). "
            "Choose another command, or edit that prompt."
        )
    else:
        message = _(
            "%(owner)s already has a prompt with the command /%(command)s (“%(title)s”). "
            "Choose another command."
        )
    return message % values


class PromptForm(forms.ModelForm):
    class Meta:
        model = SavedPrompt
        fields = ["command", "title", "text", "visibility", "groups"]
        widgets = {
            "text": forms.Textarea(attrs={"rows": 10}),
            "visibility": forms.RadioSelect,
            "groups": forms.CheckboxSelectMultiple,
        }

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Whose menu the command must fit: the owner's, also when staff edit it.
        self.owner = self.instance.owner if self.instance.pk else user
        self.editor = user
        # Groups it is already shared with stay choosable, so saving an edit never drops
        # one silently because the editor has since left it.
        choosable = Q(pk__in=shareable_groups(user).values("pk"))
        if self.instance.pk:
            choosable |= Q(pk__in=self.instance.groups.values("pk"))
        self.fields["groups"].queryset = Group.objects.filter(choosable).order_by("name")
        # No maxlength on the text: a browser would cut a long paste without a word; the
        # server says how long it is instead, and the form keeps every character.
        self.fields["text"].widget.attrs.pop("maxlength", None)

    def clean_command(self) -> str:
        command = command_from_input(self.cleaned_data["command"])
        if not COMMAND.fullmatch(command):
            raise forms.ValidationError(
                _("Use letters, digits, - and _ only, with no spaces: for example fix-grammar.")
            )
        clash = clashing_prompt(self.owner, command, exclude_id=self.instance.pk)
        if clash is not None:
            raise forms.ValidationError(clash_message(clash, owner=self.owner, editor=self.editor))
        return command

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("visibility") != Visibility.GROUPS:
            # Kept groups would mislead: they give no one access under the other choices.
            cleaned["groups"] = self.fields["groups"].queryset.none()
        elif "groups" in cleaned and not cleaned["groups"]:
            self.add_error("groups", _("Choose at least one group to share it with."))
        return cleaned


def saved(form: PromptForm) -> bool:
    """Save the form; False if the same command was saved a moment before by another tab."""
    try:
        with transaction.atomic():
            form.save()
    except IntegrityError:
        form.add_error("command", _("You already have a prompt with this command."))
        return False
    return True


def form_page(request, form: PromptForm, editing: str = ""):
    """Render the form; `editing` is the prompt's saved command (the form may hold another)."""
    return render(
        request, FORM_PAGE, {"form": form, "editing": editing, "limit": PROMPT_TEXT_CHARS}
    )


@dataclass(frozen=True)
class PromptRow:
    """One prompt on the Prompts page, with what this reader may see and do with it."""

    prompt: SavedPrompt
    own: bool
    owner: str
    editable: bool
    # Whom it is shared with, for those who may edit it: others need not see group names.
    groups: list[str]


def prompt_row(prompt: SavedPrompt, user) -> PromptRow:
    own = prompt.owner_id == user.pk
    editable = own or user.is_staff
    return PromptRow(
        prompt=prompt,
        own=own,
        owner="" if own else owner_name(prompt),
        editable=editable,
        groups=[group.name for group in prompt.groups.all()] if editable else [],
    )


@require_GET
def prompts(request):
    """List the user's own prompts and the ones shared with them, optionally searched."""
    search = query_text(request, "q").strip()
    found = usable_prompts(request.user, search=search).prefetch_related("groups")
    rows = [prompt_row(prompt, request.user) for prompt in found]
    return render(
        request,
        PAGE,
        {
            "own": [row for row in rows if row.own],
            "shared": [row for row in rows if not row.own],
            "search": search,
        },
    )


@require_http_methods(["GET", "POST"])
def new_prompt(request):
    """Show an empty prompt form, and save a new prompt of the user's."""
    prompt = SavedPrompt(owner=request.user)
    form = PromptForm(request.POST or None, instance=prompt, user=request.user)
    if request.method == "POST" and form.is_valid() and saved(form):
        messages.success(request, _("Saved /%(command)s.") % {"command": prompt.command})
        return redirect("prompts")
    return form_page(request, form)


@require_http_methods(["GET", "POST"])
def edit_prompt(request, pk: int):
    """Show and save a prompt the user may edit: their own, or any for staff."""
    prompt = get_object_or_404(editable_prompts(request.user), pk=pk)
    editing = prompt.command
    form = PromptForm(request.POST or None, instance=prompt, user=request.user)
    if request.method == "POST" and form.is_valid() and saved(form):
        messages.success(request, _("Saved /%(command)s.") % {"command": prompt.command})
        return redirect("prompts")
    return form_page(request, form, editing)


@require_POST
def delete_prompt(request, pk: int):
    """Delete a prompt the user may edit; htmx removes its row, a plain form goes back."""
    prompt = get_object_or_404(editable_prompts(request.user), pk=pk)
    command = prompt.command
    prompt.delete()
    if request.htmx:
        return HttpResponse("")
    messages.success(request, _("Deleted /%(command)s.") % {"command": command})
    return redirect("prompts")


@never_cache
@require_GET
def prompt_menu(request):
    """Return the composer's `/` menu as JSON.

    JSON rather than an HTML fragment: the menu filters on every keystroke (and every
    input-method commit) in the page, with no request per letter, and inserts each
    prompt's text verbatim into the textarea, which HTML would have to escape and the
    script unescape again. The script builds the few elements itself, with textContent.
    """
    return JsonResponse({"prompts": [asdict(entry) for entry in menu_entries(request.user)]})
