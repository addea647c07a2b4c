/**
 * What the report page carries besides its content: the Content-Security-Policy that forbids every
 * request, the stylesheet, and the script that draws the plots with vega-embed.
 */

/**
 * Only inline scripts and styles, `data:`/`blob:` images (plot export): the page can make no
 * request. `'unsafe-eval'` lets Vega compile expressions with `Function` where it does. Written into a
 * double-quoted attribute as is (it has no `"`, `&` or `<`).
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:";

/** The page's stylesheet (inline: the policy forbids requests). */
export const CSS = `
:root { color-scheme: light; --fg: #1d1d1f; --muted: #5f6368; --line: #dadce0; --accent: #1f77b4; --bg-alt: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); }
header, main, footer { max-width: 1500px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 20px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 8px; }
.description { font-size: 16px; margin: 4px 0 8px; }
.meta, .note, footer { color: var(--muted); font-size: 13px; }
nav a { margin-right: 14px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; background: var(--bg-alt); padding: 1px 4px; border-radius: 3px; }
.scroll { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; font-size: 13px; width: max-content; min-width: 100%; }
th, td { padding: 5px 9px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; white-space: nowrap; }
thead th { background: var(--bg-alt); position: sticky; top: 0; font-weight: 600; }
thead tr.group th { text-align: center; border-bottom: 0; color: var(--muted); font-weight: 500; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.never { color: #b0b0b0; text-align: right; }
tbody tr:hover { background: #fafbfc; }
tr.not-computed td { color: var(--muted); font-style: italic; }
.status { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 12px; font-style: normal; }
.status.analysed, .status.cached { background: #e8f5e9; color: #1b5e20; }
.status.not-computed, .status.planned { background: #fff3e0; color: #8d4b00; }
.links a, .links span { margin-right: 8px; }
.links span { color: #9e9e9e; }
.dag-wrap { overflow-x: auto; padding: 8px 0; }
.plot { margin: 8px 0 24px; overflow-x: auto; max-width: 100%; }
.plot-box { display: inline-block; }
.plot-error { color: #b00020; }
details summary { cursor: pointer; color: var(--muted); }
footer { padding: 24px; border-top: 1px solid var(--line); margin-top: 40px; }
`;

/**
 * Script run in the page: draws every plot with vega-embed (SVG renderer) into a box inside its
 * container and flags the result. A grid of panels (a spec with `columns`) is laid out in as many
 * columns as fit the container: drawn with all of them first, then with one fewer until the chart
 * fits or has one column (the container scrolls sideways only then); drawn again when a resize of
 * the window changes the container's width. The container's `data-columns` says how many were used.
 */
export const EMBED_SCRIPT = `
(function () {
  var plots = JSON.parse(document.getElementById('grokpipe-plots').textContent);
  var options = { renderer: 'svg', actions: { export: true, source: true, compiled: false, editor: false } };
  var drawn = {};
  function draw(p, el, box, cols) {
    var spec = cols ? Object.assign({}, p.spec, { columns: cols }) : p.spec;
    return vegaEmbed(box, spec, options).then(function (res) {
      if (cols > 1 && box.getBoundingClientRect().width > el.clientWidth) {
        res.finalize();
        return draw(p, el, box, cols - 1);
      }
      if (cols) el.setAttribute('data-columns', String(cols));
      if (drawn[p.id]) drawn[p.id].finalize();
      drawn[p.id] = res;
      el.setAttribute('data-width', String(el.clientWidth));
    });
  }
  function fit(p) {
    var el = document.getElementById(p.id);
    var box = el.querySelector('.plot-box');
    if (!box) {
      box = document.createElement('div');
      box.className = 'plot-box';
      el.appendChild(box);
    }
    return draw(p, el, box, p.spec.columns || 0);
  }
  Promise.all(plots.map(function (p) {
    var el = document.getElementById(p.id);
    return fit(p).then(function () {
      el.setAttribute('data-rendered', 'true');
    }, function (err) {
      el.setAttribute('data-rendered', 'error');
      el.innerHTML = '';
      var msg = document.createElement('p');
      msg.className = 'plot-error';
      msg.textContent = 'This plot could not be drawn: ' + (err && err.message ? err.message : err);
      el.appendChild(msg);
      console.error(err);
    });
  })).then(function () {
    document.body.setAttribute('data-plots', 'done');
    var timer = null;
    window.addEventListener('resize', function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        plots.forEach(function (p) {
          var el = document.getElementById(p.id);
          if (p.spec.columns && el.getAttribute('data-rendered') === 'true' && el.getAttribute('data-width') !== String(el.clientWidth)) fit(p);
        });
      }, 200);
    });
  });
})();
`;
