// Sends the session's CSRF token with every htmx request. (Destructive actions are confirmed by
// typing the server name, checked by the server, so they work without JavaScript.)
document.addEventListener("htmx:configRequest", function (e) {
  var m = document.querySelector('meta[name="csrf-token"]');
  if (m) e.detail.headers["X-CSRF-Token"] = m.content;
});
// Disable submit buttons while their request runs, so a double click sends one request.
document.addEventListener("submit", function (e) {
  var f = e.target;
  if (f.dataset.submitted === "1") { e.preventDefault(); return; }
  f.dataset.submitted = "1";
  f.querySelectorAll("button[type=submit]").forEach(function (b) { b.setAttribute("aria-disabled", "true"); });
  setTimeout(function () { delete f.dataset.submitted; }, 5000);
}, true);
