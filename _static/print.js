// Folds print open (see _static/print.css). Browsers with ::details-content (Chromium 131+, Safari 18.4+) need no
// script; in the others the closed folds are opened just before printing and closed again after it.
(function () {
  var opened = [];
  window.addEventListener("beforeprint", function () {
    opened = Array.prototype.filter.call(document.querySelectorAll("details.hide:not([open])"), function (d) {
      d.open = true;
      return true;
    });
  });
  window.addEventListener("afterprint", function () {
    opened.forEach(function (d) { d.open = false; });
    opened = [];
  });
})();
