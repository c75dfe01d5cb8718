"""Offline checks of containers/: no container engine here, so check what can be checked.

The base image is pinned to an exact DOLFINx release matching the wheel, the
Python requirements of the Dockerfile, the Apptainer definition and the conda
environment agree with pyproject.toml, scaffoldfem is installed without the
``wheel`` extra, and the ``scaffoldfem`` entry point exists and resolves.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from importlib import import_module
from importlib.metadata import entry_points

import pytest
from conftest import ROOT

CONTAINERS = ROOT / "containers"
DOCKERFILE = (CONTAINERS / "Dockerfile").read_text()
DEFFILE = (CONTAINERS / "scaffoldfem.def").read_text()
ENVFILE = (CONTAINERS / "environment.yml").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

#: Exact DOLFINx image reference: a release tag, optionally with a digest.
PINNED = re.compile(r"^ghcr\.io/fenics/dolfinx/dolfinx:v(\d+)\.(\d+)\.(\d+)(?:-r\d+)?"
                    r"(?:@sha256:[0-9a-f]{64})?$")
#: PyPI name → conda-forge name where they differ.
CONDA_NAMES = {"gmsh": "python-gmsh", "matplotlib": "matplotlib-base"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def split_requirement(req: str) -> tuple[str, frozenset[str]]:
    """``"numpy>=1.26,<3"`` → ("numpy", {">=1.26", "<3"}) (extras and markers dropped)."""
    req = req.split(";")[0].strip()
    m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$", req)
    assert m, req
    clauses = frozenset(c.replace(" ", "") for c in m.group(3).split(",") if c.strip())
    return _norm(m.group(1)), clauses


def pyproject_requirements() -> dict[str, frozenset[str]]:
    return dict(split_requirement(r) for r in PYPROJECT["project"]["dependencies"])


def base_images() -> dict[str, str]:
    docker = re.findall(r"^FROM\s+(\S+)", DOCKERFILE, flags=re.M)
    apptainer = re.findall(r"^From:\s*(\S+)", DEFFILE, flags=re.M)
    assert len(docker) == 1 and len(apptainer) == 1, (docker, apptainer)
    return {"Dockerfile": docker[0], "scaffoldfem.def": apptainer[0]}


def test_base_image_is_pinned_to_an_exact_release():
    images = base_images()
    for where, image in images.items():
        assert PINNED.match(image), f"{where}: base image {image!r} is not an exact release tag"
        assert not re.search(r":(latest|stable|nightly|current)\b", image), where
    assert images["Dockerfile"] == images["scaffoldfem.def"], "Docker and Apptainer differ"


def test_image_dolfinx_matches_the_wheel_and_conda_route():
    major, minor, patch = PINNED.match(base_images()["Dockerfile"]).groups()
    extras = PYPROJECT["project"]["optional-dependencies"]
    wheel = dict(split_requirement(r) for r in extras["wheel"])
    (pin,) = wheel["dolfinx-solver-real"]
    assert re.match(rf"^==\s*{major}\.{minor}\.", pin), (pin, major, minor)
    version = (int(major), int(minor), int(patch))
    for clause in conda_requirements()["fenics-dolfinx"]:  # e.g. ">=0.10", "<0.12"
        assert satisfies(version, clause), f"image DOLFINx {version} outside conda {clause}"


def satisfies(version: tuple[int, ...], clause: str) -> bool:
    op, v = re.match(r"^(>=|<=|==|<|>)(.+)$", clause).groups()
    other = tuple(int(x) for x in v.split("."))
    mine = version[:len(other)] if op in ("==",) else version
    return {">=": mine >= other, "<=": mine <= other, "==": mine == other,
            "<": mine < other, ">": mine > other}[op]


def pip_install_args(text: str) -> list[list[str]]:
    """Arguments of every ``pip install`` in a Dockerfile / definition file."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for m in re.finditer(r"pip3?\s+install\s+([^&;\n]*)", joined):
        out.append([a for a in m.group(1).split() if not a.startswith("-")])
    return out


@pytest.mark.parametrize("name", ["Dockerfile", "scaffoldfem.def"])
def test_container_installs_scaffoldfem_without_the_wheel_extra(name):
    text = "\n".join(line for line in (CONTAINERS / name).read_text().splitlines()
                     if not line.lstrip().startswith("#"))  # instructions, not comments
    installs = pip_install_args(text)
    assert installs, f"{name}: no pip install"
    assert "[wheel]" not in text and "dolfinx-solver" not in text
    sources = [a for args in installs for a in args if a.startswith("/opt/scaffoldfem")]
    assert sources == ["/opt/scaffoldfem"], f"{name}: install the source tree, no extras"
    # Anything else pip installs explicitly must be a pyproject dependency, same range.
    want = pyproject_requirements()
    for args in installs:
        for a in args:
            if a.startswith("/opt/"):
                continue
            pkg, spec = split_requirement(a.strip("'\""))
            assert pkg in want and spec == want[pkg], f"{name}: {a} vs pyproject {want.get(pkg)}"
    # What is copied in exists in the repository.
    copied = re.findall(r"^COPY\s+(.+)\s+\S+$", text, flags=re.M) if name == "Dockerfile" else \
        [line.split()[0] for line in text.split("%files", 1)[1].split("%post", 1)[0].splitlines()
         if line.strip()]
    for entry in copied:
        for src in entry.split():
            assert (ROOT / src).exists(), f"{name}: copies missing {src}"


def conda_requirements() -> dict[str, frozenset[str]]:
    reqs = {}
    for line in ENVFILE.splitlines():
        m = re.match(r"^\s*-\s+([A-Za-z0-9][A-Za-z0-9._-]*)\s*([^#]*)", line)
        if m and m.group(1) not in ("conda-forge",):
            reqs[_norm(m.group(1))] = frozenset(c.strip() for c in m.group(2).split(",")
                                                if c.strip() and not c.strip().startswith("="))
    return reqs


def test_conda_environment_matches_pyproject():
    """Every dependency is in environment.yml; a version range given there is
    pyproject's range (conda may leave a package unpinned for the MPI stack)."""
    conda = conda_requirements()
    for pkg, spec in pyproject_requirements().items():
        name = _norm(CONDA_NAMES.get(pkg, pkg))
        assert name in conda, f"environment.yml lacks {name} (pyproject {pkg})"
        if conda[name]:
            assert conda[name] == spec, f"{name}: environment.yml {set(conda[name])} vs {set(spec)}"
    extras = PYPROJECT["project"]["optional-dependencies"]
    tests = dict(split_requirement(r) for r in extras["test"])
    assert conda["pytest"] == tests["pytest"]


def test_entry_point_exists_and_resolves(capsys):
    target = PYPROJECT["project"]["scripts"]["scaffoldfem"]
    module, func = target.split(":")
    main = getattr(import_module(module), func)
    assert callable(main)
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and "scaffoldfem" in capsys.readouterr().out
    installed = entry_points(group="console_scripts", name="scaffoldfem")
    assert [e.value for e in installed] == [target], "reinstall: pip install -e ."
    # The images run it as their entry point.
    assert re.search(r'^ENTRYPOINT\s+\["scaffoldfem"\]', DOCKERFILE, flags=re.M)
    assert re.search(r"^%runscript\s*\n\s+exec scaffoldfem \"\$@\"", DEFFILE, flags=re.M)


def test_dockerfile_runs_as_non_root_with_a_cache_volume():
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, flags=re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"XDG_CACHE_HOME=/cache\b", DOCKERFILE)
    assert re.search(r'^VOLUME\s+\["/cache"\]', DOCKERFILE, flags=re.M)
    assert "ABI" in DEFFILE and "mpirun -n" in DEFFILE and "apptainer exec" in DEFFILE


def test_slurm_example_is_valid_bash_and_runs_a_real_sweep():
    script = CONTAINERS / "slurm_example.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert re.search(r"^#SBATCH --ntasks=\d+", text, flags=re.M)
    sweep = re.search(r"^SWEEP=(\S+)", text, flags=re.M).group(1)
    assert (ROOT / sweep).is_file()
    assert "scaffoldfem sweep" in text and "--ranks-per-case" in text
