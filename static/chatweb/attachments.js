/* chatweb composer attachments: images and documents (PDF, Word, text and code files),
 * attached by button, paste or drag-and-drop, with preview chips.
 *
 * Each file is uploaded on its own; the server checks it (kind by content, size,
 * pixels or pages, the user's token quota) and answers with a preview chip carrying a
 * hidden "attachments" input, or with {"error": "..."} in words. The checks here only
 * spare a pointless upload: a file over the size limit is refused before it is sent.
 *
 * Hooks in the composer (chat.html): form#composer[data-upload-url][data-images],
 * #composer-attachments, [data-attach], #composer-text, #composer-error, and
 * input#composer-file with the limits: data-max-image-bytes, data-max-file-bytes,
 * data-max-images, data-max-files. Images go only to models that take them
 * (data-images); documents go to every model. The composer is replaced when the
 * conversation changes, so every listener is delegated from the document.
 */
(function () {
  "use strict";

  const TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"];
  // Names the server also sends to the image checks (documents.IMAGE_EXTENSIONS).
  const IMAGE_NAME = /\.(png|jpe?g|jpe|gif|webp|bmp|tiff?|heic|heif|avif|ico)$/i;
  // Django's JavaScript catalogue (/jsi18n/, loaded first) translates; English without it.
  const gettext = window.gettext || ((text) => text);
  const ngettext = window.ngettext || ((one, many, count) => (count === 1 ? one : many));
  const interpolate =
    window.interpolate || ((text, values) => text.replace(/%\((\w+)\)s/g, (_, key) => values[key]));
  const NO_IMAGES = gettext("This model does not accept images. Pick another model to attach them.");
  const DROP_FILES = gettext("Drop files to attach");
  const DROP_REFUSED = gettext("This model does not accept images");

  // Previews taken off the composer by a send, kept until the server answers it, so a
  // refused send (which puts the text back) puts the files back too.
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

  // The attach button stays for every model (documents go to all of them); the form
  // keeps the picked model's word on images for the checks below.
  function syncImageSupport() {
    const form = byId("composer");
    if (form) form.dataset.images = imagesAllowed() ? "1" : "0";
  }

  document.addEventListener("htmx:afterSettle", syncImageSupport);

  function isImage(file) {
    return (file.type || "").startsWith("image/") || IMAGE_NAME.test(file.name || "");
  }

  // The limits the page was given, on the file input; none (Infinity) without them.
  function limit(name) {
    const input = byId("composer-file");
    const value = input ? Number(input.dataset[name]) : NaN;
    return value > 0 ? value : Infinity;
  }

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

  // Refusals of several files at once are listed together, one line each.
  function showError(text) {
    const box = byId("composer-error");
    if (!box) return;
    const message = document.createElement("p");
    message.className = "error";
    message.setAttribute("role", "alert");
    message.dataset.attachmentError = "";
    message.textContent = text;
    box.replaceChildren(...box.querySelectorAll("[data-attachment-error]"), message);
  }

  function clearErrors() {
    document.querySelectorAll("#composer-error [data-attachment-error]").forEach((p) => p.remove());
  }

  async function errorText(response) {
    if (response.type === "opaqueredirect") {
      return gettext("You have been signed out. Reload the page to sign in again.");
    }
    if (response.status === 413) return gettext("This file is too large to upload.");
    if (response.status === 403) {
      return gettext("The upload was refused. Reload the page and try again.");
    }
    try {
      const data = await response.json();
      if (data && data.error) return data.error;
    } catch (error) {
      // Not our JSON (a proxy's error page): fall through to the general message.
    }
    return gettext("The file could not be uploaded. Try again.");
  }

  function process(node) {
    if (window.htmx) window.htmx.process(node);
  }

  function uploadFiles(fileList) {
    const form = byId("composer");
    const list = byId("composer-attachments");
    const files = Array.from(fileList || []);
    if (!form || !list || !files.length) return;
    clearErrors();
    for (const file of files) {
      const image = isImage(file);
      const kind = image ? "image" : "document";
      const name = file.name || (image ? gettext("image") : gettext("file"));
      if (image && !imagesAllowed()) {
        showError(NO_IMAGES);
        continue;
      }
      const most = limit(image ? "maxImages" : "maxFiles");
      if (list.querySelectorAll(`[data-kind="${kind}"]`).length >= most) {
        const text = image
          ? ngettext(
              "A message can carry at most %(count)s image.",
              "A message can carry at most %(count)s images.",
              most,
            )
          : ngettext(
              "A message can carry at most %(count)s file.",
              "A message can carry at most %(count)s files.",
              most,
            );
        showError(interpolate(text, { count: most }, true));
        continue;
      }
      // An empty type means the browser does not know: let the server decide.
      if (image && file.type && !TYPES.includes(file.type)) {
        showError(interpolate(gettext("“%(name)s” is not a PNG, JPEG, WebP or GIF image."), { name }, true));
        continue;
      }
      // Refused here, before a byte is sent: the server would refuse it after the upload.
      const maxBytes = limit(image ? "maxImageBytes" : "maxFileBytes");
      if (file.size > maxBytes) {
        const size = Math.round(maxBytes / 1048576);
        showError(interpolate(gettext("“%(name)s” is larger than %(size)s MB."), { name, size }, true));
        continue;
      }
      upload(form.dataset.uploadUrl, list, file, name, kind);
    }
  }

  async function upload(url, list, file, name, kind) {
    const card = document.createElement("div");
    card.className = "attachment-preview uploading";
    card.dataset.kind = kind; // counts against its kind's limit while it uploads
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
    const files = Array.from(event.clipboardData.files);
    if (!files.length) return;
    // Office apps put a picture of copied text beside the text: paste the text then. A
    // copied document is the file itself (its text/plain is at most its name).
    if (files.every(isImage) && event.clipboardData.getData("text/plain")) return;
    event.preventDefault();
    uploadFiles(files);
  });

  function carriesFiles(event) {
    return Boolean(event.dataTransfer) && Array.from(event.dataTransfer.types).includes("Files");
  }

  function composerUnder(event) {
    return event.target instanceof Element ? event.target.closest("#composer") : null;
  }

  // Only images, for a model that takes none: the drop would be refused, so say so now.
  function refusedDrop(event) {
    if (imagesAllowed()) return false;
    const items = Array.from(event.dataTransfer.items || []);
    return items.length > 0 && items.every((item) => item.type.startsWith("image/"));
  }

  function setDropState(active, refused = false) {
    const form = byId("composer");
    if (!form) return;
    form.classList.toggle("drop-active", active);
    form.classList.toggle("drop-refused", active && refused);
    const box = form.querySelector(".composer-box");
    if (box) box.dataset.dropLabel = refused ? DROP_REFUSED : DROP_FILES;
  }

  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    // Everywhere on the page: a file dropped beside the composer must not open in the
    // tab and take the chat away.
    event.preventDefault();
    const over = composerUnder(event) !== null;
    event.dataTransfer.dropEffect = over ? "copy" : "none";
    setDropState(over, over && refusedDrop(event));
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
      showError(gettext("Wait until the files have uploaded, then send."));
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
