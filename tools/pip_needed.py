"""Which of the given requirements this Python does not satisfy yet, one per line, so that
scripts/setup.sh calls pip only when something is missing: pip takes ~15 s to confirm a
dozen installed packages, this takes well under one. A requirement counts as satisfied when
its distribution and, recursively, the ones it requires (markers evaluated, extras asked for
included) are installed at versions its specifiers allow. Anything this cannot judge (no
`packaging`, an unparsable line, a URL, broken metadata) is printed, which leaves the
decision to pip.

    python tools/pip_needed.py "torch==2.14.1" numpy "lightning==2.6.6"
"""

from __future__ import annotations

import sys
from importlib import metadata

try:
    from packaging.requirements import Requirement
except ImportError:  # pip decides
    Requirement = None


def unsatisfied(specs: list[str]) -> list[str]:
    """The specs of `specs` that are not satisfied here."""
    if Requirement is None:
        return list(specs)
    needed = []
    for spec in specs:
        try:
            requirement = Requirement(spec)
            # A URL names a file, not a version: only pip can tell whether it is installed.
            if requirement.url or not _satisfied(requirement, seen=set()):
                needed.append(spec)
        except Exception:  # unparsable, here or in someone's metadata, or broken: pip decides
            needed.append(spec)
    return needed


def _satisfied(requirement: Requirement, seen: set) -> bool:
    key = (requirement.name.lower(), str(requirement.specifier), tuple(sorted(requirement.extras)))
    if key in seen:
        return True
    seen.add(key)
    try:
        installed = metadata.distribution(requirement.name)
    except metadata.PackageNotFoundError:
        return False
    if not requirement.specifier.contains(installed.version, prereleases=True):
        return False
    environments = [{"extra": extra} for extra in ("", *requirement.extras)]
    for line in installed.requires or []:
        dependency = Requirement(line)
        if dependency.marker and not any(dependency.marker.evaluate(e) for e in environments):
            continue
        if not _satisfied(dependency, seen):
            return False
    return True


if __name__ == "__main__":
    for spec in unsatisfied(sys.argv[1:]):
        print(spec)
