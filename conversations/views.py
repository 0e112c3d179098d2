"""Chat pages. Views parse, authorise and render; the work lives in plain modules."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def chat(request):
    return render(request, "conversations/chat.html", {})
