"""Sphinx configuration of the scratchface site.

Build (from the repository root, after ``pip install -e ".[docs]"``)::

    sphinx-build -j auto -W --keep-going -b html docs docs/_build/html

``-W --keep-going``: every warning (a broken cross-reference, a docstring numpydoc cannot parse, a
notebook cell that raises, a page in no table of contents) fails the build, all of them reported.
The lecture notebooks are executed by myst-nb and cached (``docs/_build/.jupyter_cache``): a notebook is
executed again only when one of its code cells changed. ``_ext/scratchface_docs.py`` writes the pages
generated from the sources and checks that the site loads nothing from the network.
"""
import os
import pathlib
import sys

DOCS = pathlib.Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(DOCS / "_ext"))
# the notebook kernels import this checkout; their figures are PNG outputs (no display needed)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures become outputs, as in the tests

import scratchface

project = "scratchface"
author = "the scratchface authors"
copyright = "the scratchface authors, MIT licence"
version = release = scratchface.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",  # MathJax 3 served from _static/mathjax (copied by scratchface_docs), not a CDN
    "numpydoc",
    "myst_nb",
    "sphinx_copybutton",
    "scratchface_docs",
]

exclude_patterns = ["_build", "conf.py", "_ext", "benchmarks_generated.md", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
root_doc = "index"
suppress_warnings = ["myst.header"]  # results.md's sections start at level 2 under the page title

# every cross-reference must resolve (objects outside the package are plain text, not links: no internet)
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", (r"(numpy|np|scipy|skimage|matplotlib|PIL|torch|cupy|numba|dask|distributed|pathlib|os|typing"
               r"|collections|concurrent|argparse|io|enum|abc|dataclasses|functools|contextlib|subprocess"
               r"|builtins)\b.*")),
    (r"py:.*", r"(faulthandler|signal|resource|open|sqlite3|tempfile|shutil|json|hashlib|zipfile)\b.*"),
    (r"py:class", r".*\._\w+"),  # private base classes shown by :show-inheritance:
    # kernels/nms.py (being edited elsewhere) names the readable NMS, which is not a public name
    (r"py:func", r"scratchface\.detection\.nms\.nms_reference"),
    (r"py:class", (r"(optional|default.*|array.*|ndarray.*|callable|tuple|list|dict|int|float|str|bool|bytes"
                  r"|object|None|Path|Generator|NamedTuple|Enum|Exception|ValueError|TypeError)")),
]

# --- autodoc / numpydoc: the docstrings are the single source of the API pages
autodoc_typehints = "none"  # the numpydoc Parameters sections carry the types
autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False
autosummary_generate = False  # the pages are written by _ext/scratchface_docs.py from each __all__
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True

# --- notebooks: jupytext percent files, executed at build time, outputs cached
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".py": "myst-nb"}
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
nb_execution_mode = os.environ.get("SCRATCHFACE_DOCS_EXECUTE", "cache")
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_excludepatterns = ["assignments/*"]  # the student versions: their TODO cells raise by design
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# --- HTML: the PyData theme (responsive: a narrow screen gets a collapsible sidebar), nothing remote
html_theme = "pydata_sphinx_theme"
html_title = "scratchface"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
mathjax_path = "mathjax/tex-chtml.js"
html_show_sourcelink = False
html_copy_source = False
html_theme_options = {
    "navigation_with_keys": False,
    "collapse_navigation": True,  # the sidebar lists the current section only: ~900 API pages stay cheap
    "navigation_depth": 2,
    "show_toc_level": 2,
    "navbar_align": "left",
    "header_links_before_dropdown": 7,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"index": [], "results": [], "where": [], "guide": []}
