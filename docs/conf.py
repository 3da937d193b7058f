"""Sphinx configuration of torch_ext's documentation: the API reference from the docstrings
(autodoc, Google style read by napoleon) and the guides from README.md (myst-parser).

Build with ``bash scripts/docs.sh`` (warnings are errors).
"""

import inspect
import os
import sys
import tempfile
from pathlib import Path

# Document this checkout's torch_ext (built in place by scripts/setup.sh), not another one.
sys.path.insert(0, os.path.abspath(".."))

import torch_ext  # noqa: E402  (after the path)

project = "torch_ext"
author = "torch_ext contributors"
copyright = "torch_ext contributors"
release = version = torch_ext.__version__

extensions = [
    "sphinx.ext.autodoc",  # API pages from docstrings
    "sphinx.ext.napoleon",  # Google-style Args:/Returns:/Example: sections, as PyTorch's
    "sphinx.ext.intersphinx",  # torch names link into PyTorch's documentation
    "myst_parser",  # Markdown pages, and README.md included by docs/guide.md
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_ext"]

# Intersphinx would download PyTorch's inventory at build time, and the build must work
# offline: a local one lists the torch names these pages reference (_ext/torch_inventory.py).
# Other references outside these pages stay plain text, not errors.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext"))
from torch_inventory import TORCH_DOCS, write_inventory  # noqa: E402

_inventory = write_inventory(Path(tempfile.mkdtemp(prefix="torch_ext_docs_")) / "torch.inv")
intersphinx_mapping = {"torch": (TORCH_DOCS, str(_inventory))}
nitpicky = False

# The integrations import their frameworks at module level: mocked, the docs build without
# Lightning or transformers installed (and do not import them when they are).
autodoc_mock_imports = ["lightning", "pytorch_lightning", "transformers"]
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True  # show ``window=100``, not the evaluated value of an expression

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False  # "Returns:" text carries the type, as in PyTorch's docs

html_theme = "alabaster"  # Sphinx's built-in theme: nothing more to install
html_title = f"torch_ext {release}"
html_static_path: list[str] = []


def _mocked_base_signature(app, what, name, obj, options, signature, return_annotation):
    """A class whose base is mocked (the integrations' callbacks) would show the mock's
    ``(*args, **kwargs)``: autodoc reads the inherited ``__new__`` first. Show ``__init__``'s."""
    from sphinx.ext.autodoc.mock import _MockObject
    from sphinx.util.inspect import stringify_signature

    if what == "class" and isinstance(obj, type) and issubclass(obj, _MockObject):
        init = inspect.signature(obj.__init__)
        init = init.replace(parameters=list(init.parameters.values())[1:])  # drop self
        return stringify_signature(init, show_return_annotation=False), None
    return None


def setup(app):
    app.connect("autodoc-process-signature", _mocked_base_signature)
