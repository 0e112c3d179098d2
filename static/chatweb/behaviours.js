// Small page behaviours kept out of the markup, so the Content-Security-Policy needs no
// inline script, no eval (htmx's hx-on) and no inline style attributes.
(function () {
  "use strict";

  // Dialogs marked data-modal open as modals when they arrive and leave the page on close.
  function openDialogs(root) {
    var dialogs = Array.prototype.slice.call(root.querySelectorAll("dialog[data-modal]"));
    if (root.matches && root.matches("dialog[data-modal]")) dialogs.push(root);
    dialogs.forEach(function (dialog) {
      if (dialog.dataset.modalReady) return;
      dialog.dataset.modalReady = "1";
      dialog.addEventListener("close", function () { dialog.remove(); });
      if (!dialog.open) dialog.showModal();
    });
  }

  // Toasts: short notes in the page's polite live region (#toasts), gone after a few
  // seconds. Server-sent toasts arrive in the same region and leave the same way.
  var TOAST_MS = 4000;

  function toastRegion() {
    var region = document.getElementById("toasts");
    if (!region) {
      region = document.createElement("div");
      region.id = "toasts";
      region.className = "toasts";
      region.setAttribute("aria-live", "polite");
      document.body.appendChild(region);
    }
    return region;
  }

  function dismissLater(toast) {
    if (toast.dataset.dismissing) return;
    toast.dataset.dismissing = "1";
    setTimeout(function () { toast.remove(); }, TOAST_MS);
  }

  function toast(text) {
    if (!text) return;
    var note = document.createElement("div");
    note.className = "toast";
    note.textContent = text;
    toastRegion().appendChild(note);
    dismissLater(note);
  }
  window.chatwebToast = toast;

  function dismissToasts(root) {
    if (!root || !root.querySelectorAll) return;
    root.querySelectorAll(".toast").forEach(dismissLater);
    if (root.matches && root.matches(".toast")) dismissLater(root);
  }

  function setUp(root) {
    dismissToasts(root);
    openDialogs(root);
  }

  document.addEventListener("focusin", function (event) {
    var target = event.target;
    if (target instanceof HTMLInputElement && target.hasAttribute("data-select-on-focus")) {
      target.select();
    }
  });

  document.addEventListener("click", function (event) {
    var noted = event.target instanceof Element && event.target.closest("[data-toast]");
    if (noted && !noted.hasAttribute("data-copy-previous")) toast(noted.getAttribute("data-toast"));
    var button = event.target instanceof Element && event.target.closest("[data-copy-previous]");
    if (!button) return;
    var input = button.previousElementSibling;
    if (!(input instanceof HTMLInputElement)) return;
    input.select();
    var copied = navigator.clipboard
      ? navigator.clipboard.writeText(input.value)
      : Promise.resolve(document.execCommand("copy"));
    copied.then(function () {
      button.textContent = button.getAttribute("data-copied-label") || button.textContent;
      toast(button.getAttribute("data-toast"));
    });
  });

  // Plain forms that destroy something ask first (no inline handlers: the CSP forbids them).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.hasAttribute("data-confirm")
        && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  document.addEventListener("htmx:load", function (event) { setUp(event.detail.elt); });
  document.addEventListener("htmx:oobAfterSwap", function (event) { dismissToasts(event.detail.target); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { setUp(document); });
  } else {
    setUp(document);
  }
})();
