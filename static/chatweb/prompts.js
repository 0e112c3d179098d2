/* chatweb saved prompts in the composer: "/" opens a menu, a pick inserts its text.
 *
 * - A "/" at the start of the message or after a space opens a list of the user's saved
 *   prompts above the composer, filtered by what follows it (command and title, any
 *   case, any script; NFKC, so the full-width letters and slash an input method types
 *   match too). A space, or the caret leaving the "/query", closes it. Nothing opens for
 *   someone with no saved prompts: a "/" is then only a slash.
 * - While it is open, ArrowUp/ArrowDown move, Enter or Tab inserts, Escape closes, and a
 *   click inserts. chat.js sends on Enter, so these keys are taken by a capturing
 *   listener on window, before chat.js's listener on document sees them.
 * - IME safe: a key pressed while a composition is open (isComposing, keyCode 229, or
 *   just after compositionend, as Safari sends it) belongs to the input method, so the
 *   Enter that picks a candidate neither inserts nor sends; the list filters again when
 *   the composition ends.
 * - Inserting puts the prompt's text in place of the "/query" and selects its first
 *   {{placeholder}}; while placeholders remain, Tab selects the next one and Shift+Tab
 *   the previous one instead of leaving the message box.
 * - The list comes from the server once per page (JSON: filtering needs no request per
 *   letter) and again on focus when it is more than a minute old.
 */
(function () {
  "use strict";

  const script = document.currentScript;
  const MENU_URL = script ? script.dataset.menuUrl : "";
  const MANAGE_URL = script ? script.dataset.manageUrl : "";
  const STALE_MS = 60 * 1000;
  // The "/query" just before the caret: a slash, then letters of any script, digits, _ and -.
  const SLASH_QUERY = /[/\uFF0F]([\p{L}\p{M}\p{N}_-]*)$/u;
  const PLACEHOLDER = /\{\{[^{}\n]+?\}\}/g;
  // Django's JavaScript catalogue (/jsi18n/, loaded first) translates; English without it.
  const gettext = window.gettext || ((text) => text);
  const interpolate =
    window.interpolate || ((format, values) => format.replace(/%\((\w+)\)s/g, (_, key) => values[key]));

  let prompts = [];
  let fetchedAt = 0;
  let loading = null;
  let composing = false;
  let compositionEndedAt = -Infinity;
  let inserting = false;
  // The open menu: where its "/query" starts and ends, what matches, which is active.
  let menu = null;
  // A "/" whose menu was closed with Escape (or that came with inserted text) stays shut.
  let dismissedAt = null;
  // Message boxes holding an inserted prompt whose placeholders Tab walks.
  const filling = new WeakSet();

  const isComposer = (element) => element instanceof HTMLTextAreaElement && element.id === "composer-text";
  const fold = (text) => String(text || "").normalize("NFKC").toLocaleLowerCase();

  // --- The list ---------------------------------------------------------------------

  function load() {
    if (!MENU_URL || loading) return;
    if (fetchedAt && performance.now() - fetchedAt < STALE_MS) return;
    loading = fetch(MENU_URL, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => {
        const json = (response.headers.get("content-type") || "").includes("json");
        return response.ok && json ? response.json() : null;
      })
      .then((data) => {
        if (!data || !Array.isArray(data.prompts)) return;
        prompts = data.prompts.map((prompt) => ({
          ...prompt,
          text: String(prompt.text).replace(/\r\n?/g, "\n"),
          commandKey: fold(prompt.command),
          titleKey: fold(prompt.title),
        }));
        fetchedAt = performance.now();
      })
      .catch(() => {})
      .finally(() => {
        loading = null;
        const textarea = document.getElementById("composer-text");
        if (textarea && document.activeElement === textarea && !composing) update(textarea, true);
      });
  }

  function matching(query) {
    const key = fold(query);
    // Commands that start with what was typed come first, then the server's order (own first).
    return prompts
      .filter((prompt) => prompt.commandKey.includes(key) || prompt.titleKey.includes(key))
      .map((prompt, index) => [prompt.commandKey.startsWith(key) ? 0 : 1, index, prompt])
      .sort((a, b) => a[0] - b[0] || a[1] - b[1])
      .map((entry) => entry[2]);
  }

  // --- Opening, filtering, closing ----------------------------------------------------

  function slashQuery(textarea) {
    if (textarea.selectionStart !== textarea.selectionEnd) return null;
    const caret = textarea.selectionEnd;
    const before = textarea.value.slice(0, caret);
    const tail = before.slice(-80); // a query is short: never scan the whole message
    const match = SLASH_QUERY.exec(tail);
    if (!match) return null;
    const start = before.length - tail.length + match.index;
    if (start > 0 && !/\s/.test(before[start - 1])) return null; // a path or a date, not a command
    return { start, end: caret, query: match[1] };
  }

  // Whether the menu is open on this message box (htmx may have swapped in another).
  function openOn(textarea) {
    const element = document.getElementById("prompt-menu");
    return Boolean(menu && menu.textarea === textarea && element && element.isConnected);
  }

  function update(textarea, reloaded = false) {
    const found = prompts.length ? slashQuery(textarea) : null;
    if (!found || found.start !== dismissedAt) dismissedAt = null;
    if (!found || found.start === dismissedAt) {
      if (menu || document.getElementById("prompt-menu")) close(textarea);
      return;
    }
    const open = openOn(textarea);
    if (open && !reloaded && menu.start === found.start && menu.query === found.query) return;
    const matches = matching(found.query);
    const activeId = open && menu.matches[menu.active] ? menu.matches[menu.active].id : null;
    const kept = matches.findIndex((prompt) => prompt.id === activeId);
    menu = { ...found, textarea, matches, active: kept >= 0 ? kept : 0 };
    render(textarea);
  }

  function popup(textarea) {
    const box = textarea.closest(".composer-box") || textarea.parentElement;
    let element = document.getElementById("prompt-menu");
    if (element && element.parentElement === box) return element;
    if (element) element.remove();
    element = document.createElement("div");
    element.id = "prompt-menu";
    element.className = "prompt-menu";
    const list = document.createElement("ul");
    list.id = "prompt-menu-list";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", gettext("Saved prompts"));
    const empty = document.createElement("p");
    empty.className = "prompt-menu-empty muted";
    const manage = document.createElement("a");
    manage.className = "prompt-menu-manage";
    manage.href = MANAGE_URL || "#";
    manage.textContent = gettext("Manage saved prompts");
    element.append(list, empty, manage);
    // Clicks choose without taking the focus from the message box.
    element.addEventListener("mousedown", (event) => event.preventDefault());
    element.addEventListener("click", (event) => {
      const option = event.target.closest("[role=option]");
      if (option && menu) insert(textarea, menu.matches[Number(option.dataset.index)]);
    });
    element.addEventListener("mousemove", (event) => {
      const option = event.target.closest("[role=option]");
      if (option && menu && menu.active !== Number(option.dataset.index)) {
        menu.active = Number(option.dataset.index);
        showActive(textarea);
      }
    });
    box.append(element);
    return element;
  }

  function render(textarea) {
    const element = popup(textarea);
    const list = element.querySelector("[role=listbox]");
    const options = menu.matches.map((prompt, index) => {
      const option = document.createElement("li");
      option.id = `prompt-option-${prompt.id}`;
      option.className = "prompt-option";
      option.setAttribute("role", "option");
      option.dataset.index = String(index);
      const command = document.createElement("span");
      command.className = "prompt-option-command";
      command.textContent = `/${prompt.command}`;
      option.append(command);
      if (prompt.title) {
        const title = document.createElement("span");
        title.className = "prompt-option-title";
        title.textContent = prompt.title;
        option.append(" ", title);
      }
      if (prompt.owner) {
        const owner = document.createElement("span");
        owner.className = "prompt-option-owner muted";
        owner.textContent = interpolate(gettext("by %(owner)s"), { owner: prompt.owner }, true);
        option.append(" ", owner);
      }
      const text = document.createElement("span");
      text.className = "prompt-option-text muted";
      text.textContent = prompt.text.split("\n", 1)[0];
      option.append(text);
      return option;
    });
    list.replaceChildren(...options);
    list.hidden = !options.length;
    const empty = element.querySelector(".prompt-menu-empty");
    empty.textContent = options.length ? "" : gettext("No saved prompt matches.");
    empty.hidden = Boolean(options.length);
    textarea.setAttribute("aria-controls", list.id);
    textarea.setAttribute("aria-autocomplete", "list");
    showActive(textarea);
  }

  function showActive(textarea) {
    const list = document.getElementById("prompt-menu-list");
    if (!list || !menu) return;
    let active = null;
    list.querySelectorAll("[role=option]").forEach((option) => {
      const selected = Number(option.dataset.index) === menu.active;
      option.setAttribute("aria-selected", selected ? "true" : "false");
      if (selected) active = option;
    });
    if (active) {
      textarea.setAttribute("aria-activedescendant", active.id);
      active.scrollIntoView({ block: "nearest" });
    } else {
      textarea.removeAttribute("aria-activedescendant");
    }
  }

  function close(textarea) {
    menu = null;
    const element = document.getElementById("prompt-menu");
    if (element) element.remove();
    const box = textarea || document.getElementById("composer-text");
    if (box) {
      box.removeAttribute("aria-activedescendant");
      box.removeAttribute("aria-controls");
    }
  }

  // --- Inserting and placeholders -----------------------------------------------------

  function placeholders(value) {
    return [...value.matchAll(PLACEHOLDER)].map((match) => ({
      start: match.index,
      end: match.index + match[0].length,
    }));
  }

  function insert(textarea, prompt) {
    if (!prompt || !menu) return;
    const { start, end } = menu;
    close(textarea);
    textarea.focus();
    textarea.setSelectionRange(start, end);
    inserting = true;
    try {
      // execCommand keeps the change on the box's undo stack (Ctrl+Z gives the "/query"
      // back) and fires "input", which chat.js grows the box and counts characters on.
      let done = false;
      try {
        done = document.execCommand("insertText", false, prompt.text);
      } catch (error) {
        done = false;
      }
      if (!done) {
        textarea.setRangeText(prompt.text, start, end, "end");
        textarea.dispatchEvent(new Event("input", { bubbles: true }));
      }
    } finally {
      inserting = false;
    }
    const inserted = { start, end: start + prompt.text.length };
    const first = placeholders(textarea.value).find(
      (place) => place.start >= inserted.start && place.end <= inserted.end
    );
    if (first) {
      filling.add(textarea);
      textarea.setSelectionRange(first.start, first.end);
    } else {
      textarea.setSelectionRange(inserted.end, inserted.end);
    }
    // Text that itself ends in "/word" must not open the menu again.
    const after = slashQuery(textarea);
    dismissedAt = after ? after.start : null;
  }

  // Select the next (or previous) placeholder, round the end; false when none is left.
  function selectPlaceholder(textarea, backwards) {
    const all = placeholders(textarea.value);
    if (!all.length) return false;
    const { selectionStart, selectionEnd } = textarea;
    const target = backwards
      ? [...all].reverse().find((place) => place.end <= selectionStart) || all[all.length - 1]
      : all.find((place) => place.start >= selectionEnd) || all[0];
    textarea.setSelectionRange(target.start, target.end);
    return true;
  }

  // --- Keys and events ----------------------------------------------------------------

  // Return true when the menu used the key (the caller then keeps it from chat.js).
  function menuKey(event, textarea) {
    const modified = event.altKey || event.ctrlKey || event.metaKey;
    if (event.key === "Escape" && !event.shiftKey && !modified) {
      dismissedAt = menu.start;
      close(textarea);
      return true;
    }
    if (modified || !menu.matches.length) return false;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const step = event.key === "ArrowDown" ? 1 : -1;
      menu.active = (menu.active + step + menu.matches.length) % menu.matches.length;
      showActive(textarea);
      return true;
    }
    if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
      // Safari's Enter that ends a composition comes just after compositionend.
      if (event.timeStamp - compositionEndedAt < 50) return false;
      insert(textarea, menu.matches[menu.active]);
      return true;
    }
    return false;
  }

  window.addEventListener(
    "keydown",
    (event) => {
      const textarea = event.target;
      if (!isComposer(textarea)) return;
      if (event.isComposing || composing || event.keyCode === 229) return;
      let used = false;
      if (openOn(textarea)) {
        used = menuKey(event, textarea);
      } else if (event.key === "Tab" && filling.has(textarea) && !(event.altKey || event.ctrlKey || event.metaKey)) {
        used = selectPlaceholder(textarea, event.shiftKey);
        if (!used) filling.delete(textarea);
      }
      if (used) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true
  );

  document.addEventListener("input", (event) => {
    if (!isComposer(event.target) || inserting || event.isComposing || composing) return;
    update(event.target);
  });
  document.addEventListener("compositionstart", (event) => {
    if (isComposer(event.target)) composing = true;
  });
  document.addEventListener("compositionend", (event) => {
    if (!isComposer(event.target)) return;
    composing = false;
    compositionEndedAt = event.timeStamp;
    update(event.target);
  });
  // The caret moved (a click, Home, the arrow keys) away from the "/query", or back to it.
  document.addEventListener("selectionchange", () => {
    const textarea = document.activeElement;
    if (isComposer(textarea) && !composing && !inserting && (menu || prompts.length)) update(textarea);
  });
  document.addEventListener("focusin", (event) => {
    if (isComposer(event.target)) load();
  });
  document.addEventListener("focusout", (event) => {
    if (isComposer(event.target) && menu) close(event.target);
  });
  // A sent message ends the menu (one that matched nothing lets Enter send "/word").
  document.addEventListener("submit", () => close(), true);

  load();
})();
