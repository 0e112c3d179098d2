/* Copy buttons, on the chat page and the shared transcript alike: the code of a code
 * block, and the Markdown source of a message (kept in a <template> beside it). */
(function () {
  "use strict";

  const gettext = window.gettext || ((text) => text);

  async function copyText(text, button) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (error) {
      // No clipboard API outside secure contexts: fall back to a selection copy.
      const scratch = document.createElement("textarea");
      scratch.value = text;
      document.body.appendChild(scratch);
      scratch.select();
      document.execCommand("copy");
      scratch.remove();
    }
    if (window.chatwebToast) window.chatwebToast(gettext("Copied to clipboard"));
    const label = button.textContent;
    button.textContent = gettext("Copied");
    button.classList.add("copied");
    setTimeout(() => {
      button.textContent = label;
      button.classList.remove("copied");
    }, 1500);
  }

  document.addEventListener("click", (event) => {
    const codeButton = event.target.closest(".copy-button");
    if (codeButton) {
      copyText(codeButton.closest(".code-block").querySelector("code").innerText, codeButton);
      return;
    }
    const messageButton = event.target.closest("[data-copy-message]");
    if (messageButton) {
      const source = document.getElementById(`message-${messageButton.dataset.copyMessage}-source`);
      copyText(source.content.textContent, messageButton);
    }
  });

  // Code blocks come from the Markdown renderer in English; label them in the page's language.
  function labelCopyButtons(root) {
    if (!root.querySelectorAll) return;
    root.querySelectorAll(".copy-button").forEach((button) => {
      if (button.classList.contains("copied")) return;
      button.textContent = gettext("Copy");
      button.setAttribute("aria-label", gettext("Copy code"));
    });
  }

  document.addEventListener("htmx:load", (event) => labelCopyButtons(event.detail.elt));
  document.addEventListener("htmx:oobAfterSwap", (event) => labelCopyButtons(event.detail.target));
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => labelCopyButtons(document));
  } else {
    labelCopyButtons(document);
  }
})();
