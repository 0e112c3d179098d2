/* The read-only transcript page: copy buttons on messages and code blocks. */
(function () {
  "use strict";

  const gettext = window.gettext || ((text) => text);

  // Code blocks come from the Markdown renderer in English; label them in the page's language.
  function labelCopyButtons(root) {
    root.querySelectorAll(".copy-button").forEach((button) => {
      button.textContent = gettext("Copy");
      button.setAttribute("aria-label", gettext("Copy code"));
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => labelCopyButtons(document));
  } else {
    labelCopyButtons(document);
  }

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
    const label = button.textContent;
    button.textContent = gettext("Copied");
    setTimeout(() => {
      button.textContent = label;
    }, 1500);
  }

  document.addEventListener("click", (event) => {
    const code = event.target.closest(".copy-button");
    if (code) {
      copyText(code.closest(".code-block").querySelector("code").innerText, code);
      return;
    }
    const message = event.target.closest("[data-copy-message]");
    if (message) {
      const source = document.getElementById(`message-${message.dataset.copyMessage}-source`);
      copyText(source.content.textContent, message);
    }
  });
})();
