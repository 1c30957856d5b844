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
# Inherited methods are shown (MVICAD's page lists fit/transform inherited from MVICA), except
# those defined outside the toolbox (scikit-learn's get_params, set_output, ...): see _skip_member.
autodoc_default_options = {"members": True, "inherited-members": True}
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
    """Hide members inherited from outside the toolbox (scikit-learn's get_params, set_output,
    the generated set_*_request methods, torch's nn.Module API): their docstrings point into
    the other library's glossary. Members written in the toolbox, inherited or not, are shown."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    if what == "class":
        module = getattr(getattr(obj, "fget", obj), "__module__", None) or ""
        if module and not module.startswith("sciml_toolbox"):
            return True
        if not module and name not in _toolbox_member_names():
            return True  # plain data inherited from elsewhere (torch's dump_patches, ...)
    return None


_names_cache = {}


def _toolbox_member_names():
    """Names defined in the body of a class of the toolbox (cached per set of loaded modules)."""
    import sys

    mods = [m for n, m in list(sys.modules.items()) if n.startswith("sciml_toolbox") and m]
    key = len(mods)
    if key not in _names_cache:
        names = set()
        for mod in mods:
            for value in list(vars(mod).values()):
                if isinstance(value, type) and value.__module__.startswith("sciml_toolbox"):
                    names.update(vars(value))
        _names_cache.clear()
        _names_cache[key] = names
    return _names_cache[key]


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
