/* chatweb chat page: the few behaviours htmx does not cover.
 *
 * - Tell the server which conversation the page shows whenever the socket opens or
 *   the conversation changes (the server then resyncs the transcript).
 * - Composer: Enter sends, Shift+Enter adds a line, Enter during IME composition never
 *   sends; the textarea grows; empty input is not sent; a visible length limit; text
 *   that the server refuses is put back; nothing is sent while an answer of the
 *   conversation on screen is still being written.
 * - A sent message shows at once: the server draws it from the frame ("pending") and
 *   swaps in the saved one. One it could not save stays, as an error, until it is sent
 *   again; one the socket closed on before any answer is dropped and its text put back.
 * - The address bar always names the conversation on screen: a new conversation's
 *   address is pushed once, by the tab that created it, while it is still shown.
 * - Rename in place: the title becomes a small form (Enter saves, Esc cancels).
 * - Reconnect when the socket closes for any reason but a refused login; a message the
 *   server refused because it was restarting is sent again once reconnected.
 * - Copy buttons, scroll that follows the stream unless the reader scrolled up.
 */
(function () {
  "use strict";

  let socket = null;
  let pendingText = "";
  let composing = false;
  let compositionEndedAt = 0;
  let followStream = true;
  let linkPending = false;
  let pendingEdit = null;
  // The form whose frame went out last, and the one to send again after a reconnect
  // because the server was restarting (it closes the socket with 4503 after saying so).
  let lastSentForm = null;
  let retryForm = null;

  const $ = (selector) => document.querySelector(selector);
  // Django's JavaScript catalogue (/jsi18n/, loaded first) translates; English without it.
  const gettext = window.gettext || ((text) => text);

  function conversationId() {
    const input = $("#composer-conversation");
    return input ? input.value : "";
  }

  function sendWatch() {
    if (socket) {
      socket.send(JSON.stringify({ action: "watch", conversation: conversationId() }));
    }
  }

  function markActiveConversation() {
    const current = conversationId();
    document.querySelectorAll(".conversation-link").forEach((link) => {
      const active = link.dataset.conversationId === current;
      link.classList.toggle("active", active);
      if (active) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    });
  }

  // Back or Forward pressed while this page was still loading: htmx, not listening
  // yet, missed the history event, and the address names another conversation than
  // the one shown. Load the address, as htmx does for an entry it keeps no copy of.
  // Checked when this script runs and again once the document is parsed, when htmx
  // (whose listener comes first) has started listening.
  function loadTheAddressIfNotShown() {
    const app = $("#app");
    if (app && app.dataset.path && app.dataset.path !== location.pathname) location.reload();
  }
  loadTheAddressIfNotShown();
  document.addEventListener("DOMContentLoaded", loadTheAddressIfNotShown, { once: true });

  // --- Socket lifecycle -------------------------------------------------------------

  document.addEventListener("htmx:wsOpen", (event) => {
    socket = event.detail.socketWrapper;
    $("#connection").hidden = true;
    sendWatch();
    dropUnansweredTurns();
    // After the watch, so a message for a new chat is not followed by a watch of none;
    // right away, so an edit form is read before the transcript is redrawn.
    const form = retryForm;
    retryForm = null;
    if (form && document.contains(form)) form.requestSubmit();
  });

  // Bubbles drawn for a send whose socket closed before the server said how it went.
  // Left, they would keep the composer waiting: drop them and put their text back. A
  // turn that was saved all the same comes back with the transcript the watch resyncs.
  function dropUnansweredTurns() {
    const unanswered = document.querySelectorAll("#messages [data-pending]:not(.status-failed)");
    if (!unanswered.length) return;
    unanswered.forEach((bubble) => bubble.remove());
    restoreText();
    updateSendState();
  }

  // Put the last text sent back in the composer, unless something new was typed since.
  function restoreText() {
    const textarea = $("#composer-text");
    if (textarea && !textarea.value && pendingText) {
      textarea.value = pendingText;
      resize(textarea);
      updateCount(textarea);
    }
  }

  // The server names its sign-in page and the close codes that lead there (a socket
  // without a session, or one whose access was taken away) on #app.
  document.addEventListener("htmx:wsClose", (event) => {
    const code = event.detail.event.code;
    const app = $("#app");
    if (app && app.dataset.signInCodes.split(" ").map(Number).includes(code)) {
      window.location.href = app.dataset.signInUrl + "?next=" + encodeURIComponent(location.pathname);
      return;
    }
    $("#connection").hidden = false;
    // The extension itself retries after the abnormal closes below; Daphne's timeout and
    // server restarts close normally, so reconnect those ourselves, as for the consumer's
    // own codes (too much left unread, a session signed out): the reconnect resyncs.
    if (![1006, 1011, 1012, 1013].includes(code)) {
      const wrapper = event.detail.socketWrapper;
      setTimeout(() => wrapper.reconnect(), 500 + Math.random() * 1500);
    }
  });

  document.addEventListener("htmx:wsConfigSend", (event) => {
    // The socket is already authenticated by its session; leave htmx's headers out.
    event.detail.headers = null;
    if (event.target.id !== "composer") return;
    const textarea = $("#composer-text");
    const images = document.querySelector("#composer-attachments [data-attachment-id]");
    if ((!textarea.value.trim() && !images) || tooLong(textarea) || answerStreaming()) {
      event.preventDefault();
      return;
    }
    pendingText = textarea.value;
  });

  document.addEventListener("htmx:wsAfterSend", (event) => {
    lastSentForm = event.target;
    if (event.target.classList.contains("edit-form")) {
      // Hidden until the server answers; shown again, text intact, if it refuses.
      event.target.hidden = true;
      pendingEdit = event.target;
    }
    if (event.target.id !== "composer") return;
    const textarea = $("#composer-text");
    // Sending a message that failed again: its error bubble gives way to the new one.
    document.querySelectorAll("#messages .status-failed[data-pending]").forEach((bubble) => {
      const text = bubble.querySelector(".plain-text");
      if ((text ? text.textContent : "") === textarea.value.trim()) bubble.remove();
    });
    textarea.value = "";
    resize(textarea);
    updateCount(textarea);
    followStream = true;
  });

  // Live updates move a conversation's link to the top of the sidebar (the server
  // deletes the old one), so a page of older conversations loaded on scroll may hold a
  // link already shown at the top: keep that one. Then mark the one on screen.
  document.addEventListener("htmx:afterSwap", (event) => {
    const group = event.target;
    if (!group.matches || !group.matches("#conversation-list > .sidebar-group")) return;
    group.querySelectorAll(".conversation-link").forEach((link) => {
      if (document.getElementById(link.id) !== link) link.remove();
    });
    markActiveConversation();
  });

  // A turn's acceptance names the conversation the page sent from ("" for a new chat).
  // If the page has moved on to another conversation since, it is not for this screen.
  document.addEventListener("htmx:oobBeforeSwap", (event) => {
    const incoming = event.detail.fragment && event.detail.fragment.firstElementChild;
    if (incoming && incoming.dataset && incoming.dataset.sentFrom !== undefined) {
      if (incoming.dataset.sentFrom !== conversationId()) event.detail.shouldSwap = false;
    }
  });

  // A send that created a conversation: the new chat on screen becomes it, once.
  function adoptNewConversation() {
    const accepted = $("#turn-accepted");
    if (!accepted || !accepted.dataset.conversation) return;
    const { conversation, url } = accepted.dataset;
    delete accepted.dataset.conversation;
    delete accepted.dataset.url;
    const input = $("#composer-conversation");
    if (!input || input.value) return;
    input.value = conversation;
    const messages = $("#messages");
    if (messages) messages.dataset.conversationId = conversation;
    // htmx's own state on both entries, so Back and Forward reach htmx's history
    // handling (which loads the address afresh) instead of only changing the address.
    if (url !== location.pathname) {
      history.replaceState({ htmx: true }, "", location.href);
      history.pushState({ htmx: true }, "", url);
    }
    markActiveConversation();
  }

  document.addEventListener("htmx:wsAfterMessage", () => {
    const error = $("#composer-error");
    if (error && error.dataset.retry) {
      delete error.dataset.retry;
      retryForm = lastSentForm;
    }
    if (error && error.dataset.restore) {
      delete error.dataset.restore;
      restoreText();
      if (pendingEdit && document.contains(pendingEdit)) pendingEdit.hidden = false;
    }
    pendingEdit = null;
    adoptNewConversation();
    updateSendState();
    if (linkPending) {
      // The resync after watching redrew the transcript: show the linked message again.
      linkPending = false;
      showLinkedMessage();
    } else if (followStream) {
      scrollToLatest();
    }
  });

  // A conversation was switched by htmx: watch the new one.
  // History restores fire afterSwap without a target: only htmx requests have one.
  document.addEventListener("htmx:afterSwap", (event) => {
    if (!event.detail.target || event.detail.target.id !== "chat-main") return;
    followStream = true;
    linkPending = Boolean(new URLSearchParams(location.search).get("m"));
    sendWatch();
    markActiveConversation();
    if (!showLinkedMessage()) scrollToLatest();
    setSidebar(false, false);
    setHeadMenu(false, false);
    const textarea = $("#composer-text");
    if (textarea) textarea.focus();
    updateSendState();
  });

  // --- Composer ----------------------------------------------------------------------

  // Grow the box by rows, not by a style attribute: htmx copies an element's old style
  // onto its replacement during a swap, which the Content-Security-Policy blocks.
  function resize(textarea) {
    const style = getComputedStyle(textarea);
    const line = parseFloat(style.lineHeight) || 24;
    const padding = parseFloat(style.paddingTop) + parseFloat(style.paddingBottom);
    const most = Math.max(1, Math.floor((window.innerHeight * 0.4 - padding) / line));
    textarea.rows = 1;
    const needed = Math.round((textarea.scrollHeight - padding) / line);
    textarea.rows = Math.max(1, Math.min(needed, most));
  }

  // An answer of the conversation on screen is still being written. In a group people
  // talk while the model writes: only the server refuses a second question to it.
  function answerStreaming() {
    if (document.querySelector("#messages[data-group]")) return false;
    return Boolean(document.querySelector("#messages article.status-streaming"));
  }

  // Send waits while an answer streams (the reason is shown) or the text is too long.
  function updateSendState() {
    const send = $(".send-button");
    const textarea = $("#composer-text");
    if (!send || !textarea) return;
    const streaming = answerStreaming();
    send.disabled = streaming || tooLong(textarea);
    const wait = $("#composer-wait");
    if (wait) wait.hidden = !streaming;
  }

  function tooLong(textarea) {
    return textarea.value.length > Number(textarea.dataset.maxChars || Infinity);
  }

  function updateCount(textarea) {
    const count = $("#composer-count");
    const limit = Number(textarea.dataset.maxChars || 0);
    if (!count || !limit) return;
    const length = textarea.value.length;
    const over = length > limit;
    count.textContent =
      length > limit * 0.8
        ? `${length.toLocaleString()} / ${limit.toLocaleString()}` + (over ? gettext(" · too long to send") : "")
        : "";
    count.classList.toggle("over", over);
    if (over) count.setAttribute("role", "alert");
    else count.removeAttribute("role");
    updateSendState();
  }

  document.addEventListener("compositionstart", (event) => {
    if (event.target.id === "composer-text") composing = true;
  });
  document.addEventListener("compositionend", (event) => {
    if (event.target.id === "composer-text") {
      composing = false;
      compositionEndedAt = event.timeStamp;
    }
  });

  document.addEventListener("keydown", (event) => {
    const textarea = event.target;
    if (textarea.id !== "composer-text" || event.key !== "Enter") return;
    if (event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) return;
    // Enter that confirms an IME candidate must not send: isComposing covers Chrome and
    // Firefox, keyCode 229 and the just-ended composition cover Safari.
    if (event.isComposing || composing || event.keyCode === 229) return;
    if (event.timeStamp - compositionEndedAt < 50) return;
    event.preventDefault();
    // While an answer streams the text stays in the box, for when it is done.
    if (answerStreaming()) return;
    const images = document.querySelector("#composer-attachments [data-attachment-id]");
    if (textarea.value.trim() || images) textarea.form.requestSubmit();
  });

  // The rename form: Enter during IME composition picks a candidate, Escape cancels.
  document.addEventListener("keydown", (event) => {
    if (event.target.id !== "rename-title") return;
    if (event.key === "Enter" && (event.isComposing || event.keyCode === 229)) {
      event.preventDefault();
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopImmediatePropagation();
      closeRename();
    }
  });

  document.addEventListener("input", (event) => {
    if (event.target.id !== "composer-text") return;
    resize(event.target);
    updateCount(event.target);
  });

  // --- Keyboard shortcuts -----------------------------------------------------------

  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  function toggleShortcuts(show) {
    const dialog = $("#shortcuts");
    if (!dialog) return;
    if (show === undefined) show = !dialog.open;
    if (show && !dialog.open) dialog.showModal();
    else if (!show && dialog.open) dialog.close();
  }

  document.addEventListener("keydown", (event) => {
    const mod = event.ctrlKey || event.metaKey;
    const key = event.key.toLowerCase();
    if (mod && event.shiftKey && key === "o") {
      event.preventDefault();
      $("#new-chat").click();
    } else if (mod && key === "k") {
      event.preventDefault();
      const search = $("#sidebar-search");
      if (search) {
        setSidebar(true);
        search.focus();
        search.select();
      }
    } else if (event.shiftKey && key === "escape") {
      event.preventDefault();
      const textarea = $("#composer-text");
      if (textarea) textarea.focus();
    } else if (key === "escape" && !event.shiftKey && document.body.classList.contains("sidebar-open")) {
      event.preventDefault();
      setSidebar(false);
    } else if (key === "escape" && !event.shiftKey && document.body.classList.contains("head-menu-open")) {
      event.preventDefault();
      setHeadMenu(false);
    } else if (key === "escape" && !event.shiftKey) {
      if (document.querySelector(".stop-button") && !$("#shortcuts")?.open) {
        event.preventDefault();
        stopAll();
      }
    } else if (event.key === "?" && !typing(event.target)) {
      event.preventDefault();
      toggleShortcuts();
    }
  });

  // Stop every answer streaming in the conversation on screen, not only the first.
  function stopAll() {
    document.querySelectorAll("#messages .stop-button").forEach((button) => {
      button.form.requestSubmit();
    });
  }

  // --- Rename in place ---------------------------------------------------------------

  function openRename() {
    const form = $("#rename-form");
    const title = $("#conversation-title");
    if (!form || !title) return;
    const input = form.querySelector("input[name=title]");
    input.value = title.dataset.title || "";
    title.hidden = true;
    form.hidden = false;
    input.focus();
    input.select();
  }

  function closeRename() {
    const form = $("#rename-form");
    const title = $("#conversation-title");
    if (form) form.hidden = true;
    if (title) title.hidden = false;
    const button = document.querySelector("[data-rename]");
    const target = button && button.offsetParent ? button : $("[data-toggle-head-menu]");
    if (target && target.offsetParent) target.focus();
  }

  document.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.elt && event.detail.elt.id === "rename-form" && event.detail.successful) {
      closeRename();
    }
  });

  // A model change may make the last refusal moot ("does not accept images"): drop it.
  document.addEventListener("change", (event) => {
    if (event.target.id !== "composer-model") return;
    const error = $("#composer-error");
    if (error) error.replaceChildren();
  });

  // --- Copy buttons, sidebar, scrolling ----------------------------------------------

  // On a phone the sidebar is a drawer over the chat: opening it moves focus into it,
  // closing it (toggle, backdrop, Escape, a conversation picked) returns focus to the
  // toggle that opened it.
  function drawerMode() {
    return window.matchMedia("(max-width: 760px)").matches;
  }

  function setSidebar(open, restoreFocus = true) {
    const wasOpen = document.body.classList.contains("sidebar-open");
    document.body.classList.toggle("sidebar-open", open);
    // Behind the open drawer the chat is out of reach of Tab and screen readers.
    const main = $("#chat-main");
    if (main) main.inert = open && drawerMode();
    document.querySelectorAll("[data-toggle-sidebar]").forEach((button) => {
      button.setAttribute("aria-expanded", String(open));
    });
    if (open && !wasOpen && drawerMode()) {
      const search = $("#sidebar-search");
      if (search && document.activeElement !== search) search.focus();
    } else if (!open && wasOpen && restoreFocus && drawerMode()) {
      const sidebar = $("#sidebar");
      if (!sidebar || sidebar.contains(document.activeElement) || document.activeElement === document.body) {
        const toggle = document.querySelector("#chat-main [data-toggle-sidebar]");
        if (toggle) toggle.focus();
      }
    }
  }

  window.matchMedia("(max-width: 760px)").addEventListener("change", (event) => {
    if (!event.matches) {
      setSidebar(false, false);
      setHeadMenu(false, false);
    }
  });

  // The conversation's actions: a row on wide screens, a menu behind "⋯" on a phone.
  function setHeadMenu(open, restoreFocus = true) {
    const wasOpen = document.body.classList.contains("head-menu-open");
    if (open === wasOpen) return;
    document.body.classList.toggle("head-menu-open", open);
    const toggle = $("[data-toggle-head-menu]");
    if (toggle) toggle.setAttribute("aria-expanded", String(open));
    if (open) {
      const first = document.querySelector("#chat-head-menu summary, #chat-head-menu button");
      if (first) first.focus();
    } else if (restoreFocus && toggle) {
      toggle.focus();
    }
  }

  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-toggle-sidebar]")) {
      setSidebar(!document.body.classList.contains("sidebar-open"));
      return;
    }
    if (event.target.closest("[data-close-sidebar]")) {
      setSidebar(false);
      return;
    }
    if (event.target.closest("[data-toggle-head-menu]")) {
      setHeadMenu(!document.body.classList.contains("head-menu-open"));
      return;
    }
    if (event.target.closest(".stop-button")) {
      event.preventDefault();
      stopAll();
      return;
    }
    if (event.target.closest("[data-rename]")) {
      setHeadMenu(false, false);
      openRename();
      return;
    }
    if (event.target.closest("[data-cancel-rename]")) {
      closeRename();
      return;
    }
    // A click outside the actions menu, or on an action in it, closes it.
    const inMenu = event.target.closest("#chat-head-menu");
    if (!inMenu || (event.target.closest("button, a") && !event.target.closest("details"))) {
      setHeadMenu(false, false);
    }
    const example = event.target.closest("[data-example-prompt]");
    if (example) {
      const textarea = $("#composer-text");
      if (textarea) {
        textarea.value = example.dataset.examplePrompt;
        resize(textarea);
        updateCount(textarea);
        textarea.focus();
        textarea.setSelectionRange(textarea.value.length, textarea.value.length);
      }
      return;
    }
    const edit = event.target.closest("[data-edit-message]");
    if (edit) {
      const form = document.getElementById(`message-${edit.dataset.editMessage}-edit`);
      form.hidden = false;
      const area = form.querySelector("textarea");
      area.focus();
      area.setSelectionRange(area.value.length, area.value.length);
      return;
    }
    const cancel = event.target.closest("[data-cancel-edit]");
    if (cancel) {
      document.getElementById(`message-${cancel.dataset.cancelEdit}-edit`).hidden = true;
      return;
    }
    if (event.target.closest("#jump-latest")) {
      followStream = true;
      scrollToLatest();
    }
  });

  function transcript() {
    return $("#transcript");
  }

  // A search result opens the conversation at its message: /c/12/?m=345.
  function showLinkedMessage() {
    const id = new URLSearchParams(location.search).get("m");
    const message = id && document.getElementById(`message-${id}`);
    if (!message) return false;
    followStream = false;
    linkPending = !socket || linkPending;
    message.scrollIntoView({ block: "center" });
    message.classList.add("highlight");
    return true;
  }

  function scrollToLatest() {
    const box = transcript();
    if (box) box.scrollTop = box.scrollHeight;
    const jump = $("#jump-latest");
    if (jump) jump.hidden = true;
  }

  document.addEventListener(
    "scroll",
    (event) => {
      const box = transcript();
      if (event.target !== box) return;
      const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
      followStream = nearBottom;
      const jump = $("#jump-latest");
      if (jump) jump.hidden = nearBottom;
    },
    true
  );

  document.addEventListener("htmx:historyRestore", () => {
    sendWatch();
    markActiveConversation();
  });

  // On a phone the open drawer keeps Tab inside it: the chat behind is inert, and Tab
  // past its last control would otherwise leave the page.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Tab" || !drawerMode() || !document.body.classList.contains("sidebar-open")) {
      return;
    }
    const sidebar = $("#sidebar");
    const stops = [...sidebar.querySelectorAll("a[href], button, input, select, textarea, summary")]
      .filter((element) => !element.disabled && element.offsetParent !== null);
    if (!stops.length) return;
    const first = stops[0];
    const last = stops[stops.length - 1];
    const inside = sidebar.contains(document.activeElement);
    if (event.shiftKey && (document.activeElement === first || !inside)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
      event.preventDefault();
      first.focus();
    }
  });

  // The sidebar's language picker switches as soon as a language is chosen.
  document.addEventListener("change", (event) => {
    if (event.target.matches && event.target.matches("[data-submit-on-change]")) {
      event.target.form.requestSubmit();
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    const textarea = $("#composer-text");
    if (textarea) resize(textarea);
    updateSendState();
    if (!showLinkedMessage()) scrollToLatest();
  });
})();
