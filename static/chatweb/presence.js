/* chatweb chat page: "… is typing" for the others in a group conversation.
 *
 * - The composer tells the server its person is typing ({"action": "typing"}) at most
 *   once every 3 s: on input, but not while an input method composes (on compositionend
 *   instead), never for an empty composer, never for a new chat, and only where someone
 *   else could read it (a group conversation, or one whose presence bar shows).
 * - The server draws the presence bar and the typing line (groups/presence.py) and marks
 *   them with their conversation (data-presence-for): one that arrives after the page
 *   moved on to another conversation is not swapped in.
 */
(function () {
  "use strict";

  // As the server's TYPING_INTERVAL_SECONDS: a frame sent sooner would be dropped.
  const INTERVAL_MS = 3000;
  let socket = null;
  let lastSent = -Infinity;

  function conversationId() {
    const input = document.getElementById("composer-conversation");
    return input ? input.value : "";
  }

  function othersCouldRead() {
    return Boolean(
      document.querySelector("#messages[data-group]") ||
        document.querySelector("#presence-bar:not([hidden])")
    );
  }

  function sayTyping(textarea) {
    if (!socket || !textarea.value.trim()) return;
    const conversation = conversationId();
    if (!conversation || !othersCouldRead()) return;
    const now = performance.now();
    if (now - lastSent < INTERVAL_MS) return;
    lastSent = now;
    socket.send(JSON.stringify({ action: "typing", conversation: conversation }));
  }

  // A closed socket's wrapper queues frames until it reconnects: typing that old is
  // not worth sending, so nothing is sent until the socket is open again.
  document.addEventListener("htmx:wsOpen", (event) => {
    socket = event.detail.socketWrapper;
    lastSent = -Infinity;
  });
  document.addEventListener("htmx:wsClose", () => {
    socket = null;
  });

  document.addEventListener("input", (event) => {
    if (event.target.id !== "composer-text" || event.isComposing) return;
    sayTyping(event.target);
  });
  document.addEventListener("compositionend", (event) => {
    if (event.target.id === "composer-text") sayTyping(event.target);
  });

  document.addEventListener("htmx:oobBeforeSwap", (event) => {
    const incoming = event.detail.fragment && event.detail.fragment.firstElementChild;
    const shownFor = incoming && incoming.dataset ? incoming.dataset.presenceFor : undefined;
    if (shownFor !== undefined && shownFor !== conversationId()) {
      event.detail.shouldSwap = false;
    }
  });
})();
