"""
One computation, every array namespace
======================================

The array methods of sciml-toolbox are written once against the Python array API. This example
draws the same seeded matrix in NumPy, ``array_api_strict`` and torch with
:func:`sciml_toolbox.array_api.make_generator`, computes its singular values with
:func:`sciml_toolbox.array_api.svd`, and shows that the three results agree to rounding error.
"""

# %%
# Draw the same matrix in every namespace
# ---------------------------------------
import array_api_compat.numpy as npx
import matplotlib.pyplot as plt
import numpy as np

from sciml_toolbox.array_api import make_generator, svd, to_numpy
from sciml_toolbox.utils import set_threads

set_threads(1)  # small problems: one thread for BLAS and torch

namespaces = {"numpy": npx}
try:
    import array_api_strict

    namespaces["array_api_strict"] = array_api_strict
except ImportError:
    pass
try:
    import array_api_compat.torch as tx

    namespaces["torch"] = tx
except ImportError:
    pass

spectra = {}
for name, xp in namespaces.items():
    a = make_generator(0, xp).normal((200, 100))
    _, s, _ = svd(a)
    spectra[name] = to_numpy(s)

ref = spectra["numpy"]
for name, s in spectra.items():
    print(f"{name:>17}: max |s - s_numpy| = {np.max(np.abs(s - ref)):.2e}")

# %%
# The singular values coincide
# ----------------------------
fig, ax = plt.subplots(figsize=(5, 3.5))
for name, s in spectra.items():
    ax.plot(s, label=name, lw=3 if name == "numpy" else 1)
ax.set_xlabel("index")
ax.set_ylabel("singular value")
ax.legend()
fig.tight_layout()
plt.show()
