"""The signed-in user's custom instructions page (ChatGPT's "Customize ChatGPT")."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from conversations.models import UserPreference
from conversations.models.preferences import CUSTOM_INSTRUCTIONS_CHARS


class CustomInstructionsForm(forms.ModelForm):
    class Meta:
        model = UserPreference
        fields = ["about_me", "answer_style"]
        labels = {
            "about_me": gettext_lazy("What should chatweb know about you?"),
            "answer_style": gettext_lazy("How should chatweb answer?"),
        }
        help_texts = {
            "about_me": gettext_lazy(
                "For example: I am a backend developer in Shanghai; our stack is Django "
                "and PostgreSQL."
            ),
            "answer_style": gettext_lazy(
                "For example: answer in Chinese, briefly, with code in Python."
            ),
        }
        widgets = {
            "about_me": forms.Textarea(attrs={"rows": 6}),
            "answer_style": forms.Textarea(attrs={"rows": 6}),
        }


@require_http_methods(["GET", "POST"])
def custom_instructions(request):
    """Show and save what every conversation of the user tells the model about them."""
    preference = UserPreference.objects.filter(user=request.user).first()
    preference = preference or UserPreference(user=request.user)
    form = CustomInstructionsForm(request.POST or None, instance=preference)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(
            request,
            _("Saved. The next message in each of your conversations uses them."),
        )
        return redirect("custom_instructions")
    return render(
        request,
        "conversations/custom_instructions.html",
        {"form": form, "limit": CUSTOM_INSTRUCTIONS_CHARS},
    )
