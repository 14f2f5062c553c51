/*
 * Copy buttons: <button data-copy-target="ID"> copies the text of element ID
 * (the value of an input), says "Copied" for two seconds and, with
 * data-copy-status="ID2", announces it in the live region ID2. The buttons
 * start hidden and appear only where the clipboard API works, so the page
 * reads the same without JavaScript (select and copy by hand). The words
 * come from the button's data-copied and data-copy-failed attributes, so a
 * translated page says them in its language.
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
    var copied = button.dataset.copied || "Copied";
    var failed = button.dataset.copyFailed || "Could not copy: select the text and copy it by hand.";
    var status = document.getElementById(button.dataset.copyStatus || "");
    var timer = null;
    button.hidden = false;
    button.addEventListener("click", function () {
      var field = target.tagName === "INPUT" || target.tagName === "TEXTAREA";
      var text = field ? target.value : target.textContent;
      navigator.clipboard.writeText(text.trim()).then(
        function () {
          button.textContent = copied;
          button.classList.add("copied");
          if (status) {
            status.textContent = copied;
          }
          window.clearTimeout(timer);
          timer = window.setTimeout(function () {
            button.textContent = label;
            button.classList.remove("copied");
            if (status) {
              status.textContent = "";
            }
          }, 2000);
        },
        function () {
          if (status) {
            status.textContent = failed;
          }
          if (field) {
            target.select();
          }
        }
      );
    });
  });
})();
