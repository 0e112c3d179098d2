// The colour theme: "system" (the default) follows prefers-color-scheme; "light" and
// "dark" are the reader's choice, kept in localStorage. Loaded in <head> without defer,
// so the saved theme is on <html> before the first paint (no inline script: the CSP
// forbids them). app.css turns [data-theme="dark"|"light"] into the page's color-scheme,
// which picks every colour's light or dark value (markdown.css's too).
(function () {
  "use strict";

  var KEY = "chatweb-theme";
  var root = document.documentElement;

  function saved() {
    try {
      var value = window.localStorage.getItem(KEY);
      return value === "light" || value === "dark" ? value : "system";
    } catch (error) {
      return "system";
    }
  }

  function apply(choice) {
    if (choice === "light" || choice === "dark") root.dataset.theme = choice;
    else delete root.dataset.theme;
  }

  function mark(choice) {
    document.querySelectorAll("[data-theme-choice]").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.dataset.themeChoice === choice));
    });
  }

  apply(saved());

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element && event.target.closest("[data-theme-choice]");
    if (!button) return;
    var choice = button.dataset.themeChoice;
    try {
      if (choice === "system") window.localStorage.removeItem(KEY);
      else window.localStorage.setItem(KEY, choice);
    } catch (error) {
      // Storage refused (private mode): the choice lasts for this page only.
    }
    apply(choice);
    mark(choice);
  });

  // Another tab changed the theme.
  window.addEventListener("storage", function (event) {
    if (event.key !== KEY) return;
    apply(saved());
    mark(saved());
  });

  document.addEventListener("DOMContentLoaded", function () { mark(saved()); });
})();
