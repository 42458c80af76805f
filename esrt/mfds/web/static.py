"""The admin pages' style sheet, served at /static/style.css.

Kept in a module rather than a .css file so that it ships with the package without any
package-data configuration.
"""

STYLE_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { display: flex; gap: 1em; align-items: center; padding: .5em 1em; background: #1f3a5f;
         color: #fff; flex-wrap: wrap; }
header a, header .user { color: #fff; text-decoration: none; margin-right: 1em; }
header .brand { font-weight: bold; font-size: 120%; }
header .refresh { margin-left: auto; }
main { padding: 1em 2em; }
h1 { font-size: 140%; margin: .3em 0 .6em; }
h2 { font-size: 115%; }
table { border-collapse: collapse; background: #fff; margin: .5em 0 1em; }
th, td { border: 1px solid #ddd; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #eef1f5; }
.muted { color: #777; font-size: 90%; }
.inline { display: inline; }
button, .button { padding: .25em .8em; margin: 0 .2em; border: 1px solid #888; border-radius: 3px;
                  background: #f3f3f3; cursor: pointer; text-decoration: none; color: #222; }
button[disabled] { opacity: .4; cursor: default; }
button.stop, button.force-stop { border-color: #b33; }
.status { padding: .1em .5em; border-radius: 3px; background: #ccc; font-size: 90%; }
.s-started, .s-idle { background: #bfe5bf; }
.s-busy, .s-starting, .s-stopping, .s-waiting { background: #f5e3a3; }
.s-failed, .s-fatal, .s-backoff, .s-lost { background: #f2b8b8; }
.flash { padding: .5em 1em; border-radius: 3px; background: #e3f1e3; }
.flash.error { background: #f8dede; }
.warn { color: #ffd27f; }
.tabs { margin: 1em 0 0; border-bottom: 1px solid #ccc; }
.tab { display: inline-block; padding: .3em 1em; border: 1px solid #ccc; border-bottom: none;
       margin-right: .2em; background: #eee; text-decoration: none; color: #222; }
.tab.active { background: #fff; font-weight: bold; }
.tab-body { background: #fff; padding: 1em; border: 1px solid #ccc; border-top: none; }
pre#console { background: #111; color: #ddd; padding: .8em; overflow: auto; max-height: 60vh; }
.counters { display: grid; grid-template-columns: max-content auto; gap: .2em 1.5em; }
.counters dt { font-weight: bold; }
.graphs { display: flex; flex-wrap: wrap; gap: .5em 1.5em; }
.graphs figure { margin: .5em 0; }
.graphs figcaption { font-weight: bold; font-size: 90%; margin-bottom: .2em; }
.field { margin: .4em 0; }
.field label { display: inline-block; min-width: 14em; vertical-align: top; }
.field-error { color: #b00; margin-left: .5em; }
.field.invalid input, .field.invalid textarea { border-color: #b00; }
.login label { display: block; margin: .5em 0; }
form.search label, form.deploy label { margin-right: 1em; }
#users td.actions input { width: 11em; }
#users td.actions .field-error { display: block; margin: .3em 0 0; }
"""
