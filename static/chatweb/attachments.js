/* chatweb composer images: attach by button, paste or drag-and-drop, with previews.
 *
 * Each file is uploaded on its own; the server checks it (type by content, size,
 * pixels) and answers with a preview card carrying a hidden "attachments" input, or
 * with {"error": "..."} in words. The checks here only spare a pointless upload.
 *
 * Hooks in the composer (chat.html): form#composer[data-upload-url][data-images],
 * #composer-attachments, [data-attach], input#composer-file, #composer-text,
 * #composer-error. Optional: data-max-images and data-max-image-bytes on the form.
 * The composer is replaced when the conversation changes, so every listener is
 * delegated from the document.
 */
(function () {
  "use strict";

  const TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"];
  // Django's JavaScript catalogue (/jsi18n/, loaded first) translates; English without it.
  const gettext = window.gettext || ((text) => text);
  const ngettext = window.ngettext || ((one, many, count) => (count === 1 ? one : many));
  const interpolate =
    window.interpolate || ((text, values) => text.replace(/%\((\w+)\)s/g, (_, key) => values[key]));
  const NO_IMAGES = gettext("This model does not accept images. Pick another model to attach them.");

  // Previews taken off the composer by a send, kept until the server answers it, so a
  // refused send (which puts the text back) puts the images back too.
  let sent = null;

  const byId = (id) => document.getElementById(id);

  // The model picker swaps in #composer-options for the picked model; its data-images
  // is the freshest word on image support, the form's is the page's first render.
  function imagesAllowed() {
    const options = byId("composer-options");
    if (options && options.dataset.images !== undefined) return options.dataset.images === "1";
    const form = byId("composer");
    return Boolean(form) && form.dataset.images === "1";
  }

  function syncAttachButton() {
    const form = byId("composer");
    if (!form) return;
    const allowed = imagesAllowed();
    form.dataset.images = allowed ? "1" : "0";
    const button = form.querySelector("[data-attach]");
    if (button) button.hidden = !allowed;
  }

  document.addEventListener("htmx:afterSettle", syncAttachButton);

  // Django's CSRF token, from the <meta name="csrf-token"> base.html renders.
  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      body,
      headers: { "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
      // A signed-out session redirects to the login page; see that, do not follow it.
      redirect: "manual",
    });
  }

  function showError(text) {
    const box = byId("composer-error");
    if (!box) return;
    const message = document.createElement("p");
    message.className = "error";
    message.setAttribute("role", "alert");
    message.dataset.attachmentError = "";
    message.textContent = text;
    box.replaceChildren(message);
  }

  function clearErrors() {
    document.querySelectorAll("#composer-error [data-attachment-error]").forEach((p) => p.remove());
  }

  async function errorText(response) {
    if (response.type === "opaqueredirect") {
      return gettext("You have been signed out. Reload the page to sign in again.");
    }
    if (response.status === 413) return gettext("This image is too large to upload.");
    if (response.status === 403) {
      return gettext("The upload was refused. Reload the page and try again.");
    }
    try {
      const data = await response.json();
      if (data && data.error) return data.error;
    } catch (error) {
      // Not our JSON (a proxy's error page): fall through to the general message.
    }
    return gettext("The image could not be uploaded. Try again.");
  }

  function process(node) {
    if (window.htmx) window.htmx.process(node);
  }

  function uploadFiles(fileList) {
    const form = byId("composer");
    const list = byId("composer-attachments");
    const files = Array.from(fileList || []);
    if (!form || !list || !files.length) return;
    if (!imagesAllowed()) {
      showError(NO_IMAGES);
      return;
    }
    clearErrors();
    const maxImages = Number(form.dataset.maxImages || Infinity);
    const maxBytes = Number(form.dataset.maxImageBytes || Infinity);
    for (const file of files) {
      const name = file.name || gettext("image");
      if (list.children.length >= maxImages) {
        const most = ngettext(
          "A message can carry at most %(count)s image.",
          "A message can carry at most %(count)s images.",
          maxImages,
        );
        showError(interpolate(most, { count: maxImages }, true));
        return;
      }
      // An empty type means the browser does not know: let the server decide.
      if (file.type && !TYPES.includes(file.type)) {
        showError(interpolate(gettext("“%(name)s” is not a PNG, JPEG, WebP or GIF image."), { name }, true));
        continue;
      }
      if (file.size > maxBytes) {
        const size = Math.round(maxBytes / 1048576);
        showError(interpolate(gettext("“%(name)s” is larger than %(size)s MB."), { name, size }, true));
        continue;
      }
      upload(form.dataset.uploadUrl, list, file, name);
    }
  }

  async function upload(url, list, file, name) {
    const card = document.createElement("div");
    card.className = "attachment-preview uploading";
    card.setAttribute("role", "status");
    const label = document.createElement("span");
    label.className = "attachment-name";
    label.textContent = interpolate(gettext("Uploading %(name)s…"), { name }, true);
    card.append(label);
    list.append(card);

    const body = new FormData();
    body.append("file", file, name);
    let response;
    try {
      response = await post(url, body);
    } catch (error) {
      card.remove();
      showError(interpolate(gettext("“%(name)s” could not be uploaded: the connection failed."), { name }, true));
      return;
    }
    if (!response.ok) {
      card.remove();
      showError(await errorText(response));
      return;
    }
    const template = document.createElement("template");
    template.innerHTML = (await response.text()).trim();
    const preview = template.content.firstElementChild;
    if (!card.isConnected) {
      // The composer was replaced (another conversation) while this uploaded.
      const remove = preview && preview.querySelector("[data-remove-url]");
      if (remove) post(remove.dataset.removeUrl).catch(() => {});
      return;
    }
    card.replaceWith(preview);
    process(preview);
  }

  // --- Button, paste, drag-and-drop --------------------------------------------------

  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-attach]")) {
      const input = byId("composer-file");
      if (input) input.click();
      return;
    }
    const remove = event.target.closest("[data-remove-attachment]");
    if (!remove) return;
    const card = remove.closest(".attachment-preview");
    if (card) card.remove();
    const textarea = byId("composer-text");
    if (textarea) textarea.focus();
    if (remove.dataset.removeUrl) post(remove.dataset.removeUrl).catch(() => {});
  });

  document.addEventListener("change", (event) => {
    if (event.target.id !== "composer-file") return;
    uploadFiles(event.target.files);
    event.target.value = ""; // so picking the same file again fires change again
  });

  document.addEventListener("paste", (event) => {
    if (event.target.id !== "composer-text" || !event.clipboardData) return;
    const files = Array.from(event.clipboardData.files).filter((file) =>
      file.type.startsWith("image/")
    );
    // Office apps put a picture of copied text beside the text: paste the text then.
    if (!files.length || event.clipboardData.getData("text/plain")) return;
    event.preventDefault();
    uploadFiles(files);
  });

  function carriesFiles(event) {
    return Boolean(event.dataTransfer) && Array.from(event.dataTransfer.types).includes("Files");
  }

  function composerUnder(event) {
    return event.target instanceof Element ? event.target.closest("#composer") : null;
  }

  function setDropState(active) {
    const form = byId("composer");
    if (!form) return;
    form.classList.toggle("drop-active", active);
    form.classList.toggle("drop-refused", active && !imagesAllowed());
  }

  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    // Everywhere on the page: a file dropped beside the composer must not open in the
    // tab and take the chat away.
    event.preventDefault();
    const over = composerUnder(event) !== null;
    event.dataTransfer.dropEffect = over ? "copy" : "none";
    setDropState(over);
  });

  document.addEventListener("dragleave", (event) => {
    const form = byId("composer");
    if (!form || !form.contains(event.relatedTarget)) setDropState(false);
  });

  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    setDropState(false);
    if (composerUnder(event)) uploadFiles(event.dataTransfer.files);
  });

  // --- Sending -----------------------------------------------------------------------

  document.addEventListener("htmx:wsConfigSend", (event) => {
    if (event.target.id !== "composer") return;
    const list = byId("composer-attachments");
    if (list && list.querySelector(".uploading")) {
      event.preventDefault();
      showError(gettext("Wait until the images have uploaded, then send."));
    }
  });

  document.addEventListener("htmx:wsAfterSend", (event) => {
    if (event.target.id !== "composer") return;
    const list = byId("composer-attachments");
    if (!list || !list.children.length) return;
    sent = { html: list.innerHTML, errorBox: byId("composer-error") };
    list.replaceChildren();
  });

  // The server answers a send by replacing #composer-error: with data-restore when it
  // refused the message. Capture phase, so this runs before chat.js consumes the flag.
  document.addEventListener(
    "htmx:wsAfterMessage",
    () => {
      if (!sent) return;
      const box = byId("composer-error");
      if (box === sent.errorBox) return; // no answer to the send yet
      const list = byId("composer-attachments");
      if (box && box.dataset.restore && list && !list.children.length) {
        list.innerHTML = sent.html;
        process(list);
      }
      sent = null;
    },
    true
  );
})();
