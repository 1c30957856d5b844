"""Print the core dependencies of pyproject.toml pinned to their lowest allowed versions.

Used by ``make test-min``: every ``name>=X`` of ``[project] dependencies`` becomes ``name==X``,
so that the quick tests run against the oldest versions the package claims to support.
"""

import re
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def lowest(requirements):
    """``['numpy>=1.24', ...]`` -> ``['numpy==1.24', ...]`` (other specifiers are kept)."""
    out = []
    for req in requirements:
        req = req.split(";")[0].strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)\s*>=\s*([^,\s]+)", req)
        out.append(f"{m.group(1)}=={m.group(2)}" if m else req)
    return out


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml"
    with open(path, "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    print("\n".join(lowest(deps)))
