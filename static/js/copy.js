/*
 * Copy buttons: <button data-copy-target="ID"> copies the text of element ID.
 * The buttons start hidden and appear only where the clipboard API works, so
 * the page reads the same without JavaScript (select and copy by hand).
 */
(function () {
  "use strict";
  if (!navigator.clipboard || !window.isSecureContext) {
    return;
  }
  document.querySelectorAll("[data-copy-target]").forEach(function (button) {
    var target = document.getElementById(button.dataset.copyTarget);
    if (!target) {
      return;
    }
    var label = button.textContent;
    var status = document.getElementById(button.dataset.copyStatus || "");
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(
        function () {
          button.textContent = "Copied";
          if (status) {
            status.textContent = "Copied to the clipboard.";
          }
          window.setTimeout(function () {
            button.textContent = label;
          }, 2000);
        },
        function () {
          if (status) {
            status.textContent = "Could not copy: select the key and copy it by hand.";
          }
        }
      );
    });
  });
})();
