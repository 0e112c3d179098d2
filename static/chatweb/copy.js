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

  // Code blocks come from the Markdown renderer with wordless copy buttons: its HTML is
  // shared by readers of every language. The page's server-translated labels are on this
  // script's tag; label each button as it arrives, however it was inserted (page load,
  // htmx swap, websocket update).
  const script = document.currentScript;
  const buttonLabel = script.dataset.copyLabel;
  const buttonAriaLabel = script.dataset.copyAria;
  const unlabelled = ".copy-button:not([aria-label])";

  function labelCopyButtons(root) {
    const buttons = root.matches(unlabelled) ? [root] : root.querySelectorAll(unlabelled);
    buttons.forEach((button) => {
      button.textContent = buttonLabel;
      button.setAttribute("aria-label", buttonAriaLabel);
    });
  }

  labelCopyButtons(document.documentElement);
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType === Node.ELEMENT_NODE) labelCopyButtons(node);
      }
    }
  }).observe(document.documentElement, { childList: true, subtree: true });
})();
