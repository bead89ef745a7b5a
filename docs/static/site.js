// minimind docs site: small page helpers that need no network.
// Opened from file://, a browser blocks the requests Sphinx's search makes for result snippets: say how to serve the site.
document.addEventListener("DOMContentLoaded", function () {
  if (location.protocol !== "file:" || !/search\.html$/.test(location.pathname)) return;
  var target = document.querySelector("#search-results") || document.querySelector("main") || document.body;
  var note = document.createElement("p");
  note.className = "file-search-note";
  note.textContent = "Opened from a file, search shows page titles only: browsers block the requests that fetch " +
    "snippets. For snippets, serve the site: `make docs-serve` (or `python -m http.server -d _build/docs`) and open " +
    "http://localhost:8000/search.html.";
  target.parentNode.insertBefore(note, target);
});
