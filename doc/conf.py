"""Sphinx configuration of the sciml-toolbox documentation."""

import os
import warnings
from pathlib import Path

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import sciml_toolbox

project = "sciml-toolbox"
author = "the sciml-toolbox developers"
copyright = "2026, the sciml-toolbox developers"  # noqa: A001
version = release = sciml_toolbox.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    # MathJax 3 copied into the built site (_static/mathjax): formulas render with no network
    "sphinx-mathjax-offline",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb",
                    "**/sg_execution_times.rst", "sg_execution_times.rst"]
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
suppress_warnings = ["config.cache"]
nitpicky = False

html_theme = "pydata_sphinx_theme"
html_title = "sciml-toolbox"
html_static_path = []
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}

# Links to the documentation of the libraries users combine the toolbox with. Their inventories
# are fetched at build time, so the mapping is used only when the build machine is online (a
# failed fetch is a warning, and warnings are errors): SCIML_DOCS_INTERSPHINX=1 forces it on,
# =0 off; by default a 3-second connection attempt decides.
_INTERSPHINX = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "scipy": ("https://docs.scipy.org/doc/scipy", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "mne": ("https://mne.tools/stable", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
}


def _online(host="numpy.org", timeout=3.0):
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


_flag = os.environ.get("SCIML_DOCS_INTERSPHINX", "")
intersphinx_mapping = _INTERSPHINX if (_flag == "1" or (_flag != "0" and _online())) else {}
intersphinx_timeout = 10

# ---------------------------------------------------------------------------------------------
# sphinx-gallery: one sub-gallery per folder of examples/. SPHINX_GALLERY_PATTERN selects the
# examples that are executed (all by default); the others are rendered without outputs.
# ---------------------------------------------------------------------------------------------
_here = Path(__file__).resolve().parent
_examples = _here.parent / "examples"
_pattern = os.environ.get("SPHINX_GALLERY_PATTERN", r"/plot_")

sphinx_gallery_conf = {
    "examples_dirs": [str(_examples)],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": _pattern,
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "plot_gallery": "True",
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "min_reported_time": 1,
    "image_scrapers": ("matplotlib",),
    "write_computation_times": False,
    "show_signature": False,
}

warnings.filterwarnings("ignore", category=UserWarning,
                        message="Matplotlib is currently using agg")
warnings.filterwarnings("ignore", category=UserWarning, message=".*non-interactive.*")


def _skip_member(app, what, name, obj, skip, options):
    """Hide scikit-learn's generated metadata-routing methods (set_fit_request, ...): they
    are inherited machinery whose docstrings point into scikit-learn's own glossary."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
