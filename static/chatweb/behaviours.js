// Small page behaviours kept out of the markup, so the Content-Security-Policy needs no
// inline script, no eval (htmx's hx-on) and no inline style attributes.
(function () {
  "use strict";

  // Quota meters: the fill's width comes from the bar's aria-valuenow (0-100).
  function fillMeters(root) {
    root.querySelectorAll(".meter[aria-valuenow]").forEach(function (meter) {
      var fill = meter.querySelector(".meter-fill");
      var value = Number(meter.getAttribute("aria-valuenow"));
      if (fill && isFinite(value)) {
        fill.style.width = Math.max(0, Math.min(100, value)) + "%";
      }
    });
  }

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

  function setUp(root) {
    fillMeters(root);
    openDialogs(root);
  }

  document.addEventListener("focusin", function (event) {
    var target = event.target;
    if (target instanceof HTMLInputElement && target.hasAttribute("data-select-on-focus")) {
      target.select();
    }
  });

  document.addEventListener("click", function (event) {
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
    });
  });

  document.addEventListener("htmx:load", function (event) { setUp(event.detail.elt); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { setUp(document); });
  } else {
    setUp(document);
  }
})();
