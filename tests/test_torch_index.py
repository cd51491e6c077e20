"""Tests of the torch private-API index (esper_lint.torch_index): offline, no downloads."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest

from esper_lint import data as _data
from esper_lint.names import is_private
from esper_lint.torch_index import (
    Lookup,
    TorchIndex,
    format_releases,
    load_index,
)
from esper_lint.torch_index.checks import check_range, check_replacement, check_since
from esper_lint.torch_index.explain import explain
from esper_lint.torch_index.versions import (
    SpecifierError,
    minor_release,
    parse_version,
    releases_in_range,
    supported_range_from_pyproject,
    version_matches,
)
from tools.build_torch_index import build_index
from tools.build_torch_index import main as builder_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def idx() -> TorchIndex:
    return load_index()


# --------------------------------------------------------------------------------------
# facts from the study of the real wheels (1.6 ... 2.15)


def test_releases_cover_1_6_to_newest(idx):
    assert idx.releases[0] == "1.6"
    assert "2.15" in idx.releases
    assert list(idx.releases) == sorted(idx.releases, key=parse_version)
    assert len(set(idx.releases)) == len(idx.releases)
    # 1.6 ... 1.13 and 2.0 ... newest, no gaps
    newest = parse_version(idx.releases[-1])[1]
    assert idx.releases == tuple(f"1.{i}" for i in range(6, 14)) + tuple(
        f"2.{i}" for i in range(0, newest + 1)
    )


def test_foreach_norm_first_in_1_11(idx):
    lk = idx.lookup("torch._foreach_norm")
    assert lk is not None and lk.exact and not lk.is_module
    assert lk.releases[0] == "1.11"
    assert idx.first_release("torch._foreach_norm") == "1.11"
    assert idx.last_release("torch._foreach_norm") == idx.releases[-1]


def test_six_removed_in_2_0(idx):
    lk = idx.lookup("torch._six")
    assert lk.exact and lk.is_module
    assert lk.releases[-1] == "1.13"
    assert "2.0" not in lk.releases


def test_stateless_1_11_to_1_13(idx):
    lk = idx.lookup("torch.nn.utils._stateless")
    assert lk.exact and lk.is_module
    assert lk.releases == ("1.11", "1.12", "1.13")


def test_composable_fully_shard_removed_in_2_6(idx):
    lk = idx.lookup("torch.distributed._composable.fully_shard")
    assert lk.exact
    assert lk.releases[-1] == "2.5" and "2.6" not in lk.releases


def test_quantize_pt2e_removed_in_2_11(idx):
    lk = idx.lookup("torch.ao.quantization.quantize_pt2e")
    assert lk.exact and lk.is_module
    assert lk.releases[-1] == "2.10" and "2.11" not in lk.releases


def test_dynamo_disable_and_compiler_disable(idx):
    assert idx.first_release("torch._dynamo.disable") == "2.0"
    r = idx.replacement("torch._dynamo.disable")
    assert r is not None and r.replacement == "torch.compiler.disable"
    assert r.public_since == "2.1" and not r.derived
    assert r.releases[0] == "2.1"


def test_tensor_members_from_c_base(idx):
    lk = idx.lookup("torch.Tensor._make_subclass")
    assert lk is not None and lk.exact
    assert "2.13" in lk.releases
    # own members of class Tensor in torch/_tensor.py too
    assert idx.lookup("torch.Tensor._reduce_ex_internal").exact


def test_aten_ops(idx):
    lk = idx.lookup("torch.ops.aten._foreach_norm.Scalar")
    assert lk.exact and lk.releases[0] == "1.11"
    assert idx.lookup("torch.ops.aten._to_copy.default").exact
    bogus = idx.lookup("torch.ops.aten._to_copy.no_such_overload")
    assert not bogus.exact and bogus.matched == "torch.ops.aten._to_copy"
    assert bogus.provably_absent and bogus.present_in == ()


# --------------------------------------------------------------------------------------
# lookup rules


def test_lookup_module_prefix_is_inexact(idx):
    lk = idx.lookup("torch._dynamo.no_such_thing.deeper")
    module = idx.lookup("torch._dynamo")
    assert lk == Lookup(
        name="torch._dynamo.no_such_thing.deeper",
        matched="torch._dynamo",
        exact=False,
        releases=module.releases,
        is_module=True,
        kind="module",
        lower_bound=False,
        kinds=module.kinds,
        evidence=module.evidence,
    )
    assert lk.present_in == lk.releases


def test_lookup_class_prefix_is_inexact(idx):
    lk = idx.lookup("torch.nn.Module._apply.something")
    assert lk is not None and not lk.exact and lk.matched == "torch.nn.Module._apply"
    assert idx.lookup("torch.nn.Module._apply").exact


def test_lookup_unknown(idx):
    assert idx.lookup("torch._no_such_name_at_all") is None
    assert idx.lookup("numpy._NoValue") is None
    assert idx.first_release("torch._no_such_name_at_all") is None
    assert idx.first_release("torch._dynamo.no_such_thing") is None  # inexact


def test_lookup_config_attribute(idx):
    assert idx.lookup("torch._dynamo.config.suppress_errors").exact


def test_lookup_is_fast_and_cached():
    assert load_index() is load_index()


# --------------------------------------------------------------------------------------
# replacements


def test_curated_replacements(idx):
    cases = {
        "torch._dynamo.allow_in_graph": ("torch.compiler.allow_in_graph", "2.1"),
        "torch._dynamo.reset": ("torch.compiler.reset", "2.1"),
        "torch._C._get_tracing_state": ("torch.jit.is_tracing", "1.6"),
        "torch.nn.utils._stateless.functional_call": ("torch.nn.utils.stateless.functional_call", "1.12"),
        "torch.distributed._tensor": ("torch.distributed.tensor", "2.5"),
        "torch.distributed._composable.fsdp.fully_shard": ("torch.distributed.fsdp.fully_shard", "2.6"),
        "torch.utils.data._utils.collate.default_collate": ("torch.utils.data.default_collate", "1.11"),
    }
    for private, (public, since) in cases.items():
        r = idx.replacement(private)
        assert r is not None, private
        assert (r.replacement, r.public_since, r.derived) == (public, since, False), private
        # verified against the index: the replacement exists from public_since on
        assert r.releases[0] == since
        if private != "torch.nn.utils._stateless.functional_call":  # stateless is gone in 2.?
            assert r.releases == idx.releases[idx.releases.index(since):]
    # applicability: only the same object or a proven equivalent may be applied
    assert idx.replacement("torch._C._get_tracing_state").applicability == "suggestion"
    assert idx.replacement("torch._dynamo.is_compiling").applicability == "suggestion"
    assert idx.replacement("torch._dynamo.reset").applicability == "drop-in"
    assert idx.replacement("torch.distributed._tensor.DeviceMesh").replacement == "torch.distributed.device_mesh.DeviceMesh"
    # names outside every __all__ get no replacement; canonical public homes are preferred
    for name in ("torch.distributed._tensor.placement_types.pad_tensor", "torch.distributed._tensor.placement_types._pad_tensor"):
        r = idx.replacement(name)
        assert r is None or r.applicability == "suggestion", name
    assert idx.replacement("torch._lowrank.pca_lowrank").replacement == "torch.pca_lowrank"
    assert idx.replacement("torch._C._distributed_c10d.ReduceOp").replacement == "torch.distributed.ReduceOp"
    # public_since follows object identity, not the release in which __all__ listed the name
    assert idx.replacement("torch._functorch.eager_transforms.jacrev").public_since == "2.0"
    assert idx.replacement("torch.masked._ops.argmax").public_since == "1.13"


def test_module_replacement_maps_names_below(idx):
    r = idx.replacement("torch.distributed._tensor.DTensor")
    assert r.replacement == "torch.distributed.tensor.DTensor"
    assert r.public_since == "2.5"
    # unknown deeper name: mapped through the module
    r2 = idx.replacement("torch.distributed._tensor.not_indexed_name")
    assert r2.replacement == "torch.distributed.tensor.not_indexed_name"
    # a private name with no public counterpart is not "replaced" by a private one
    assert idx.replacement("torch.distributed._tensor._utils") is None


def test_derived_replacement(idx):
    r = idx.replacement("torch.distributed.tensor._api.DTensor")
    assert r is not None and r.derived
    assert r.replacement == "torch.distributed.tensor.DTensor"
    assert r.source == "torch/distributed/tensor/__init__.py"
    # members of the re-exported class map too, when the result is public
    m = idx.replacement("torch.distributed.tensor._api.DTensor.from_local")
    assert m.replacement == "torch.distributed.tensor.DTensor.from_local"


def test_replacements_toml_matches_index(idx):
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover
        import tomli as tomllib
    data = tomllib.loads((ROOT / "rules" / "replacements.toml").read_text())
    for entry in data["replacement"]:
        r = idx.replacement(entry["private"])
        assert r is not None, entry["private"]
        assert (r.replacement, r.public_since, r.source) == (
            entry["replacement"], entry["public_since"], entry["source"]
        ), "rules/replacements.toml changed: rebuild the index"


def test_all_replacements_are_public(idx):
    for r in idx.replacements():
        assert is_private(r.private), r
        assert not is_private(r.replacement), r
        assert r.public_since in idx.releases


# --------------------------------------------------------------------------------------
# versions


@pytest.mark.parametrize(
    "text,expected",
    [("1.11", (1, 11)), ("2.4.1", (2, 4, 1)), ("2.13.0+cpu", (2, 13, 0)),
     ("2.5.0rc1", (2, 5, 0)), ("2.6.0.dev20241001", (2, 6, 0)), ("2", (2,))],
)
def test_parse_version(text, expected):
    assert parse_version(text) == expected


def test_minor_release():
    assert minor_release("2.13.0+cpu") == "2.13"
    assert minor_release("1.11") == "1.11"
    with pytest.raises(SpecifierError):
        minor_release("banana")


RELS = ("1.13", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5", "2.15")


@pytest.mark.parametrize(
    "spec,expected",
    [
        (">=2.1,<2.16", ("2.1", "2.2", "2.3", "2.4", "2.5", "2.15")),
        (">=2.1, <2.4", ("2.1", "2.2", "2.3")),
        ("~=2.4", ("2.4", "2.5", "2.15")),
        ("~=2.4.1", ("2.4",)),
        ("==2.13.*", ()),
        ("==2.2.*", ("2.2",)),
        (">=2.1", ("2.1", "2.2", "2.3", "2.4", "2.5", "2.15")),
        (">=2.1,!=2.3.*", ("2.1", "2.2", "2.4", "2.5", "2.15")),
        (">=2.1,!=2.3.0", ("2.1", "2.2", "2.3", "2.4", "2.5", "2.15")),  # 2.3.1 qualifies
        (">=2.4.1", ("2.4", "2.5", "2.15")),
        (">2.4", ("2.4", "2.5", "2.15")),  # 2.4.1 > 2.4
        ("<2.4", ("1.13", "2.0", "2.1", "2.2", "2.3")),
        ("<=2.4", ("1.13", "2.0", "2.1", "2.2", "2.3", "2.4")),
        ("==2.2", ("2.2",)),
        ("", RELS),
    ],
)
def test_releases_in_range(spec, expected):
    assert releases_in_range(spec, RELS) == expected


@pytest.mark.parametrize("bad", [">=", "=>2.1", ">=2.1.*", "~=2", "2.1", ">=2.x"])
def test_bad_specifiers(bad):
    with pytest.raises(SpecifierError):
        releases_in_range(bad, RELS)


def test_releases_in_range_tries_only_the_deciding_patches():
    """The fast selection against every patch 0..99 of every release, on random specifiers."""
    import random

    from esper_lint.torch_index.versions import _clause_matches, _read_clauses

    def every_patch(spec: str, releases: tuple[str, ...]) -> tuple[str, ...]:
        clauses = _read_clauses(spec)
        chosen = []
        for release in releases:
            major, minor = (int(part) for part in release.split("."))
            if any(all(_clause_matches(c, (major, minor, patch)) for c in clauses) for patch in range(100)):
                chosen.append(release)
        return tuple(chosen)

    rng = random.Random(20)
    versions = [*RELS, "2.4.0", "2.4.1", "2.4.2", "2.4.98", "2.4.99", "2.4.100", "2.3.0.1", "2.3.1.5", "2", "3"]
    for _ in range(3000):
        clauses = []
        for _ in range(rng.randint(1, 4)):
            op = rng.choice(["==", "!=", ">=", "<=", ">", "<", "~=", "===", "==*", "!=*"])
            version = rng.choice(versions)
            if op.endswith("*"):
                clauses.append(f"{op[:-1]}{'.'.join(version.split('.')[:rng.randint(1, 3)])}.*")
            elif op == "~=" and "." not in version:
                clauses.append(f"~={version}.0")
            else:
                clauses.append(f"{op}{version}")
        spec = ",".join(clauses)
        assert releases_in_range(spec, RELS) == every_patch(spec, RELS), spec


def test_version_matches():
    assert version_matches(">=2.1,<2.16", "2.13.0+cpu")
    assert not version_matches(">=2.1,<2.16", "2.16.0")


def test_supported_range_from_pyproject():
    assert supported_range_from_pyproject(
        {"project": {"dependencies": ["numpy", "torch>=2.1,<2.16"]}}) == ">=2.1,<2.16"
    assert supported_range_from_pyproject({"project": {"dependencies": ["torch"]}}) is None
    assert supported_range_from_pyproject(
        {"project": {"dependencies": ["Torch (>= 2.1, < 2.4) ; python_version >= '3.9'"]}}
    ) == ">=2.1,<2.4"
    assert supported_range_from_pyproject(
        {"project": {"dependencies": ["torchvision>=0.16"],
                     "optional-dependencies": {"gpu": ["torch[opt-einsum]~=2.4"]}}}) == "~=2.4"
    assert supported_range_from_pyproject({}) is None
    assert supported_range_from_pyproject(
        {"project": {"dependencies": ["torch @ https://example.com/torch.whl"]}}) is None


# --------------------------------------------------------------------------------------
# checks


def test_check_since(idx):
    msg = check_since(idx, "torch._foreach_norm", "1.9")
    assert msg == "`torch._foreach_norm` first shipped in 1.11; the comment says 1.9"
    assert check_since(idx, "torch._foreach_norm", "1.11") is None
    assert check_since(idx, "torch._foreach_norm", "2.4.1") is None
    assert "not a torch release" in check_since(idx, "torch._foreach_norm", "1.99")
    assert "not a torch release" in check_since(idx, "torch._foreach_norm", "7.0")
    assert check_since(idx, "torch._no_such_name", "1.9") is None
    # first indexed release: it may be older, no claim
    assert check_since(idx, "torch._six", "1.4") is None
    # the name is gone in the "since" release
    msg = check_since(idx, "torch._six", "2.0")
    assert msg is not None and "not in torch 2.0" in msg
    # below a module: the module bounds the name
    msg = check_since(idx, "torch._dynamo.some_unlisted_attr", "1.13")
    assert msg is not None and "`torch._dynamo`" in msg and "2.0" in msg


def test_check_range(idx):
    supported = releases_in_range(">=1.13,<2.2", idx.releases)
    msg = check_range(idx, "torch._six", supported, ">=1.13,<2.2")
    assert msg == "`torch._six` is missing from torch 2.0, 2.1 (supported range >=1.13,<2.2)"
    assert check_range(idx, "torch._foreach_norm", releases_in_range(">=2.1", idx.releases)) is None
    msg = check_range(idx, "torch._foreach_norm", releases_in_range(">=1.9,<1.12", idx.releases))
    assert msg == "`torch._foreach_norm` is missing from torch 1.9, 1.10 (supported releases 1.9–1.11)"
    # under a module: present where the module is
    assert check_range(idx, "torch._dynamo.unlisted", releases_in_range(">=2.0", idx.releases)) is None
    msg = check_range(idx, "torch._dynamo.unlisted", ("1.13", "2.0"))
    assert msg is not None and "`torch._dynamo`" in msg and "1.13" in msg
    # unknown aten overload: absent everywhere
    assert "missing from torch 2.1" in check_range(idx, "torch.ops.aten._to_copy.nope", ("2.1",))
    assert check_range(idx, "torch._no_such_name", ("2.1",)) is None
    assert check_range(idx, "torch._six", ()) is None


def test_check_replacement(idx):
    r = check_replacement(idx, "torch._dynamo.disable", releases_in_range(">=2.1,<2.16", idx.releases))
    assert r is not None and r[0] == "torch.compiler.disable"
    assert "public since 2.1" in r[1]
    assert check_replacement(idx, "torch._dynamo.disable", releases_in_range(">=2.0", idx.releases)) is None
    assert check_replacement(idx, "torch._dynamo.disable", None)[0] == "torch.compiler.disable"
    assert check_replacement(idx, "torch._foreach_norm", None) is None
    # replacement gone from the newest release? then nothing without a range
    assert check_replacement(idx, "torch.distributed._tensor.DTensor", ()) is not None


# --------------------------------------------------------------------------------------
# explain


def test_explain_text(idx):
    text = explain("torch._foreach_norm", index=idx)
    assert "torch._foreach_norm: function, in torch 1.11\u2013" in text
    assert "appeared in: 1.11" in text
    text = explain("torch._six", index=idx)
    assert "removed in: 2.0" in text
    text = explain("torch._dynamo.disable", index=idx)
    assert "torch.compiler.disable" in text and "public since 2.1" in text
    assert "not in the torch index" in explain("torch._nope", index=idx)


def test_explain_json(idx):
    d = json.loads(explain("torch._six", "json", index=idx))
    assert d["known"] is True and d["removed_in"] == "2.0" and d["last_release"] == "1.13"
    assert d["release_ranges"] == "1.6\u20131.13"
    d = json.loads(explain("torch._nope", "json", index=idx))
    assert d["known"] is False and d["matched"] is None
    d = json.loads(explain("torch._dynamo.disable", "json", index=idx))
    assert d["replacement"]["name"] == "torch.compiler.disable"
    with pytest.raises(ValueError):
        explain("torch._six", "xml", index=idx)


def test_format_releases():
    rels = ("1.10", "1.11", "1.12", "1.13", "2.0", "2.1")
    assert format_releases(("1.11", "1.12", "2.1"), rels) == "1.11\u20131.12, 2.1"
    assert format_releases((), rels) == ""


# --------------------------------------------------------------------------------------
# data location


def test_data_resolver_reads_repo_rules():
    data = _data.read_rules_bytes("torch-index.gz")
    assert data == (ROOT / "rules" / "torch-index.gz").read_bytes()


def test_index_size_budget():
    assert (ROOT / "rules" / "torch-index.gz").stat().st_size < 3_000_000


# --------------------------------------------------------------------------------------
# the builder on synthetic wheels


def _wheel(path: Path, version: str, files: dict[str, str]) -> Path:
    whl = path / f"torch-{version}-cp312-none-macosx_11_0_arm64.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        for name, text in sorted(files.items()):
            zf.writestr(name, text)
    return whl


BASE = {
    "torch/__init__.py": (
        "from torch._C import *\n"
        "from torch import _C as _C\n"
        "from torch._tensor import Tensor\n"
        "from torch._utils import _private_helper, public_helper\n"
        "__all__ = ['Tensor', 'public_helper']\n"
        "PRIVATE_OPS = ('unique_dim',)\n"
        "for __name in dir(_C._VariableFunctions):\n"
        "    if __name.startswith('__') or __name in PRIVATE_OPS:\n"
        "        continue\n"
        "    __obj = getattr(_C._VariableFunctions, __name)\n"
        "    if __name == 'segment_reduce':\n"
        "        globals()[__name] = __obj\n"
        "        __name = '_' + __name\n"
        "    globals()[__name] = __obj\n"
        "if TYPE_CHECKING:\n"
        "    from torch._typing_only import _typing_name\n"
    ),
    "torch/_C/__init__.pyi": (
        "class TensorBase:\n    def _make_subclass(cls): ...\n    def add(self): ...\n"
        "def _get_tracing_state(): ...\n"
    ),
    "torch/_C.cpython-312-darwin.so": "",
    "torch/_C/_VariableFunctions.pyi": (
        "from torch import Tensor\n"
        "def _foreach_norm(x): ...\ndef add(x): ...\ndef unique_dim(x): ...\n"
        "def segment_reduce(x): ...\ndef __and__(x): ...\n"
    ),
    "torch/_tensor.py": (
        "import torch\nclass Tensor(torch._C.TensorBase):\n"
        "    def _reduce_ex_internal(self): ...\n    def __repr__(self): ...\n"
    ),
    "torch/_utils.py": "def _private_helper(): ...\ndef public_helper(): ...\n_flag = 1\n",
    "torch/_six.py": "inf = float('inf')\nstring_classes = (str,)\n",
    "torch/nn/__init__.py": "from .modules import *\n",
    "torch/nn/modules/__init__.py": "from .module import Module\n",
    "torch/nn/modules/module.py": (
        "class Module:\n    _version = 1\n    def _apply(self, fn): ...\n    def apply(self, fn): ...\n"
    ),
    "torch/ops_demo_dir/not-an-identifier.py": "x = 1\n",
    "torchgen/packaged/ATen/native/native_functions.yaml": (
        "- func: _foreach_norm.Scalar(Tensor[] self, Scalar ord=2) -> Tensor[]\n"
        "  variants: function\n"
        "- func: _to_copy(Tensor self) -> Tensor\n"
        "- func: add.Tensor(Tensor self, Tensor other) -> Tensor\n"
    ),
}

NEWER = dict(BASE)
del NEWER["torch/_six.py"]
NEWER.update(
    {
        "torch/_dynamo/__init__.py": "from .eval_frame import disable\ndef reset(): ...\n",
        "torch/_dynamo/eval_frame.py": "def disable(fn=None): ...\n",
        "torch/compiler/__init__.py": (
            "import torch\nfrom torch._dynamo import reset as reset\n"
            "__all__ = ['disable', 'reset']\n"
            "def disable(fn=None):\n    return torch._dynamo.disable(fn)\n"
        ),
        "torch/distributed/__init__.py": "from torch._six import string_classes\n",
    }
)


@pytest.fixture()
def synthetic(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "1.13.0", BASE)
    _wheel(wheels, "2.0.1", NEWER)
    _wheel(wheels, "2.0.0", BASE)  # an older patch of 2.0: ignored
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "replacements.toml").write_text(
        '[[replacement]]\nprivate = "torch._dynamo.disable"\nreplacement = "torch.compiler.disable"\n'
        'public_since = "2.0"\napplicability = "drop-in"\nsource = "https://example.invalid/notes"\n'
        'equivalence = "torch/compiler/__init__.py: return torch._dynamo.disable(fn)"\n'
    )
    return tmp_path


def test_builder_is_reproducible(synthetic):
    wheels = sorted((synthetic / "wheels").glob("*.whl"))
    curated = synthetic / "rules" / "replacements.toml"
    a, warn_a = build_index(wheels, curated)
    b, warn_b = build_index(list(reversed(wheels)), curated, jobs=2)
    assert a == b and warn_a == warn_b == []
    out = synthetic / "rules" / "torch-index.gz"
    assert builder_main(
        ["--wheels", str(synthetic / "wheels"), "--out", str(out), "--jobs", "1", "--min-release", "1.13"]
    ) == 0
    assert out.read_bytes() == a
    # a valid gzip stream (zcat works) whose first line is the JSON header
    import gzip

    header = json.loads(gzip.decompress(a).split(b"\n", 1)[0])
    assert header["releases"] == ["1.13", "2.0"]
    assert header["wheels"]["2.0"].startswith("torch-2.0.1-")


def test_builder_extracts_names(synthetic):
    wheels = sorted((synthetic / "wheels").glob("*.whl"))
    data, _ = build_index(wheels, synthetic / "rules" / "replacements.toml")
    idx = TorchIndex.from_bytes(data)
    assert idx.releases == ("1.13", "2.0")
    exact = {n: idx.lookup(n) for n in [
        "torch._foreach_norm", "torch._segment_reduce", "torch._C", "torch._C._get_tracing_state",
        "torch.Tensor._make_subclass", "torch.Tensor._reduce_ex_internal", "torch._private_helper",
        "torch._utils._flag", "torch.nn.Module._apply", "torch.nn.modules.module.Module._version",
        "torch.ops.aten._foreach_norm.Scalar", "torch.ops.aten._to_copy.default",
        "torch._tensor.Tensor._make_subclass",
    ]}
    for name, lk in exact.items():
        assert lk is not None and lk.exact, name
    assert idx.lookup("torch._C").is_module
    assert idx.lookup("torch._foreach_norm").kind == "function"
    # not private / not re-exported / only for type checking
    assert idx.lookup("torch._unique_dim") is None
    assert idx.lookup("torch.unique_dim") is None
    assert idx.lookup("torch.__and__") is None
    assert idx.lookup("torch._typing_name") is None
    assert not idx.lookup("torch.Tensor.__repr__").exact
    assert idx.lookup("torch.ops.aten.add") is not None and not idx.lookup("torch.ops.aten.add").exact
    # release ranges
    assert idx.lookup("torch._six").releases == ("1.13",)
    assert idx.lookup("torch._dynamo.disable").releases == ("2.0",)
    assert idx.lookup("torch._dynamo.eval_frame.disable").exact


def test_builder_replacements(synthetic):
    wheels = sorted((synthetic / "wheels").glob("*.whl"))
    data, warnings = build_index(wheels, synthetic / "rules" / "replacements.toml")
    assert warnings == []
    idx = TorchIndex.from_bytes(data)
    r = idx.replacement("torch._dynamo.disable")
    assert (r.replacement, r.public_since, r.derived) == ("torch.compiler.disable", "2.0", False)
    # derived: `from torch._dynamo import reset as reset` in a public module, in __all__
    r = idx.replacement("torch._dynamo.reset")
    assert r.derived and r.replacement == "torch.compiler.reset"
    assert r.source == "torch/compiler/__init__.py" and r.public_since == "2.0"
    # derived through a chain: torch/__init__.py re-exports torch._tensor.Tensor (in __all__)
    assert idx.replacement("torch._tensor.Tensor").replacement == "torch.Tensor"
    # a same-named def is not the same object: torch.compiler.disable is its own function,
    # so the derived table does not claim it (only the curated entry does)
    assert all(not (r.derived and r.private == "torch._dynamo.eval_frame.disable")
               for r in idx.replacements())
    # an import for a module's own use (no __all__, no `as` idiom) is not a re-export
    assert idx.replacement("torch._six.string_classes") is None
    # an import of a private name under a private name is no replacement
    assert idx.replacement("torch._utils._private_helper") is None


def test_builder_warns_on_wrong_public_since(synthetic):
    (synthetic / "rules" / "replacements.toml").write_text(
        '[[replacement]]\nprivate = "torch._dynamo.disable"\nreplacement = "torch.compiler.disable"\n'
        'public_since = "1.13"\napplicability = "suggestion"\nsource = "x"\n'
    )
    wheels = sorted((synthetic / "wheels").glob("*.whl"))
    _, warnings = build_index(wheels, synthetic / "rules" / "replacements.toml")
    assert any("first found in 2.0" in w for w in warnings)


def test_latest_patches_pick_newest_patch_per_minor():
    from tools.build_torch_index import latest_patches

    versions = ["1.5.1", "1.6.0", "1.7.0", "1.7.1", "1.10.2", "1.10.0", "2.0.0", "2.0.1"]
    assert latest_patches(versions, "1.6") == ["1.6.0", "1.7.1", "1.10.2", "2.0.1"]


def test_members_are_not_mapped_through_a_function_replacement():
    # torch/__init__.py re-exports the *function* cond from torch._higher_order_ops.cond;
    # that makes the function, not the module's other members, public.
    idx = load_index()
    assert idx.replacement("torch._higher_order_ops.cond.cond_op") is None
    assert idx.replacement("torch.distributed._tensor.DTensor").replacement == "torch.distributed.tensor.DTensor"


# --------------------------------------------------------------------------------------
# evidence per fact, on synthetic wheels: binaries, references, alias shims, kinds per release

EVIDENCE_OLD = {
    **BASE,
    "torch/lib/libtorch_python.dylib": (
        b"\x00_make_wrapper_subclass\x00_get_tracing_state\x00_nn\x00upsample_nearest2d\x00other\x00"
    ).decode("latin-1"),
    "torch/lib/libtorch_cpu.dylib": (
        b"\x00aten::_grad_sum_to_size(Tensor(a) self, int[]? size) -> Tensor(a)\x00"
        b"aten::_set_item.str(Dict(str, t)(a!) l, str(b -> *) idx, t(c -> *) v) -> ()\x00"
    ).decode("latin-1"),
    "torch/testing/_internal/logging_tensor.py": (
        "import torch\n"
        "def make(cls, elem):\n    return torch.Tensor._make_wrapper_subclass(cls, elem.size())\n"
        "def guarded():\n    if hasattr(torch._C, '_only_sometimes'):\n        torch._C._only_sometimes()\n"
        "def tolerant():\n    try:\n        torch._C._maybe()\n    except AttributeError:\n        pass\n"
        "def used():\n    return torch._C._used_by_code()\n"
    ),
    "torch/jit/__init__.py": "from torch.jit._trace import trace\n",
    "torch/jit/_trace.py": "def trace(fn): ...\n",
    "torch/_utils.py": (
        BASE["torch/_utils.py"] + "class Outer:\n    class _Inner:\n        def _method(self): ...\n"
    ),
}
EVIDENCE_NEW = {
    **EVIDENCE_OLD,
    "torch/_C/__init__.pyi": (
        "class TensorBase:\n    def _make_subclass(cls): ...\n    def _make_wrapper_subclass(cls): ...\n"
        "def _get_tracing_state(): ...\ndef _cuda_getDeviceCount() -> int: ...\ndef _used_by_code(): ...\n"
    ),
    "torch/_C/_nn.pyi": "def upsample_nearest2d(x): ...\n",
    "torch/jit/__init__.py": "from torch.jit._trace import trace\n__all__ = ['trace']\n",
    "torch/distributed/tensor/__init__.py": "from torch.distributed.tensor.device_mesh import *\n",
    "torch/distributed/tensor/device_mesh.py": "def _mesh_helper(): ...\n",
    "torch/distributed/_tensor/__init__.py": (
        "import sys\nfrom importlib import import_module\n"
        "submodules = ['device_mesh']\n"
        "for submodule in submodules:\n"
        "    sys.modules[f'torch.distributed._tensor.{submodule}'] = import_module(\n"
        "        f'torch.distributed.tensor.{submodule}')\n"
    ),
    "torch/_higher_order_ops/__init__.py": "from torch._higher_order_ops.cond import cond\n",
    "torch/_higher_order_ops/cond.py": "def cond(pred, a, b): ...\n",
}


@pytest.fixture()
def evidence_index(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "1.12.0", BASE)
    _wheel(wheels, "1.13.1", EVIDENCE_OLD)
    _wheel(wheels, "2.0.1", EVIDENCE_NEW)
    _wheel(wheels, "2.1.0", EVIDENCE_NEW)
    data, warnings = build_index(sorted(wheels.glob("*.whl")))
    assert warnings == []
    return TorchIndex.from_bytes(data)


def test_binary_strings_date_a_c_name_before_its_stub(evidence_index):
    lk = evidence_index.lookup("torch.Tensor._make_wrapper_subclass")
    assert lk.releases == ("1.13", "2.0", "2.1")
    assert dict(lk.evidence)["1.13"] == ("binary", "reference")
    assert dict(lk.evidence)["2.0"] == ("stub", "binary", "reference")
    assert not lk.lower_bound  # the binary fixes its first release: 1.12's binary would have it
    assert check_since(evidence_index, "torch.Tensor._make_wrapper_subclass", "1.12") == (
        "`torch.Tensor._make_wrapper_subclass` first shipped in 1.13; the comment says 1.12"
    )
    assert check_since(evidence_index, "torch.Tensor._make_wrapper_subclass", "1.13") is None
    lk = evidence_index.lookup("torch._C._nn.upsample_nearest2d")
    assert lk.releases == ("1.13", "2.0", "2.1") and lk.exact
    # the first indexed release is a lower bound whatever the evidence
    assert evidence_index.lookup("torch._C._get_tracing_state").lower_bound


def test_a_name_resting_on_a_reference_is_a_lower_bound(evidence_index):
    lk = evidence_index.lookup("torch._C._used_by_code")
    assert lk.releases == ("1.13", "2.0", "2.1")
    assert dict(lk.evidence)["1.13"] == ("reference",)
    assert lk.lower_bound  # a use by torch's own code shows it exists, not since when
    # guarded uses (hasattr, a try that catches AttributeError) are no evidence
    assert not evidence_index.lookup("torch._C._only_sometimes").exact
    assert not evidence_index.lookup("torch._C._maybe").exact


def test_lower_bound_silences_esp201_and_esp202(evidence_index):
    # first seen in 1.13 through a use only: "since 1.12" may be right
    assert check_since(evidence_index, "torch._C._used_by_code", "1.12") is None
    assert check_range(evidence_index, "torch._C._used_by_code", ("1.12", "1.13", "2.0")) is None
    # a firm first release still gives ESP202 for the releases before it
    assert "1.12" in check_range(evidence_index, "torch.Tensor._make_wrapper_subclass", ("1.12", "1.13"))


def test_aten_schemas_from_the_binary(evidence_index):
    assert evidence_index.lookup("torch.ops.aten._grad_sum_to_size.default").exact
    assert evidence_index.lookup("torch.ops.aten._set_item.str").exact
    assert evidence_index.lookup("torch.ops.aten._set_item").releases == ("1.13", "2.0", "2.1")
    # below the complete operator namespace an unknown overload is absent
    assert evidence_index.lookup("torch.ops.aten._set_item.nope").provably_absent


def test_alias_shim_keeps_a_module_importable(evidence_index):
    lk = evidence_index.lookup("torch.distributed._tensor.device_mesh")
    assert lk.exact and lk.kind == "module" and lk.releases == ("2.0", "2.1")
    assert dict(lk.evidence)["2.0"] == ("alias",)
    assert evidence_index.lookup("torch.distributed._tensor.device_mesh._mesh_helper").exact


def test_kind_per_release_and_nested_classes(evidence_index):
    lk = evidence_index.lookup("torch._higher_order_ops.cond")
    assert lk.kind == "function" and not lk.is_module
    assert evidence_index.lookup("torch._utils.Outer._Inner._method").exact


def test_cpu_absent(evidence_index):
    lk = evidence_index.lookup("torch._C._cuda_getDeviceCount")
    assert lk.cpu_absent and lk.cpu_absent_in == ("2.0", "2.1")
    assert not evidence_index.lookup("torch._C._get_tracing_state").cpu_absent
    assert "CPU-only builds" in explain("torch._C._cuda_getDeviceCount", index=evidence_index)


def test_public_since_follows_object_identity(evidence_index):
    # `__all__` lists trace from 2.0, but torch.jit.trace is the same object from 1.13 (its first release)
    r = evidence_index.replacement("torch.jit._trace.trace")
    assert (r.replacement, r.public_since, r.applicability) == ("torch.jit.trace", "1.13", "drop-in")


def test_explain_says_at_least_since(evidence_index):
    text = explain("torch._C._used_by_code", index=evidence_index)
    assert "at least since 1.13" in text
    data = json.loads(explain("torch._C._used_by_code", "json", index=evidence_index))
    assert data["lower_bound"] is True and data["evidence"]["1.13"] == ["reference"]
    # a name the index does not hold gets no first release from its prefix
    data = json.loads(explain("torch._C._not_there", "json", index=evidence_index))
    assert data["exact"] is False and data["first_release"] is None and data["matched"] == "torch._C"


def test_missing_release_is_an_error(tmp_path):
    from tools.build_torch_index import BuildError

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "1.12.0", BASE)
    _wheel(wheels, "2.0.1", BASE)
    with pytest.raises(BuildError, match=r"no wheel for torch 1\.13"):
        build_index(sorted(wheels.glob("*.whl")))


def test_header_records_python_and_sha256(synthetic):
    import gzip
    import hashlib

    wheels = sorted((synthetic / "wheels").glob("*.whl"))
    data, _ = build_index(wheels, synthetic / "rules" / "replacements.toml")
    header = json.loads(gzip.decompress(data).split(b"\n", 1)[0])
    assert header["python"] == "{}.{}".format(*sys.version_info[:2])
    chosen = next(w for w in wheels if w.name == header["wheels"]["2.0"])
    assert header["sha256"]["2.0"] == hashlib.sha256(chosen.read_bytes()).hexdigest()


def test_curated_drop_in_needs_identity_or_equivalence(synthetic):
    from tools.build_torch_index import BuildError

    (synthetic / "rules" / "replacements.toml").write_text(
        '[[replacement]]\nprivate = "torch._dynamo.disable"\nreplacement = "torch.compiler.disable"\n'
        'public_since = "2.0"\napplicability = "drop-in"\nsource = "x"\n'
    )
    with pytest.raises(BuildError, match="drop-in"):
        build_index(sorted((synthetic / "wheels").glob("*.whl")), synthetic / "rules" / "replacements.toml")


def test_builder_and_validator_are_not_in_the_runtime_wheel():
    from esper_lint.data import tomllib

    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == ["esper_lint"]
    assert all(not str(k).startswith("tools") for k in wheel.get("force-include", {}))


def test_rebuild_in_another_process_is_byte_identical(tmp_path):
    """Two builds in separate processes (other string hash seeds, so sets iterate in other orders)
    give the same bytes."""
    import os
    import subprocess

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "1.13.1", EVIDENCE_OLD)
    _wheel(wheels, "2.0.1", EVIDENCE_NEW)
    outputs = []
    for seed in "12345":  # with the prefix evidence taken from whichever child came first, these differed
        out = tmp_path / f"index-{seed}.gz"
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        subprocess.run(
            [sys.executable, "-m", "tools.build_torch_index", "--wheels", str(wheels), "--out", str(out),
             "--jobs", "1", "--min-release", "1.13", "--replacements", str(tmp_path / "none.toml")],
            check=True, cwd=ROOT, env=env, capture_output=True, timeout=300,
        )
        outputs.append(out.read_bytes())
    assert len(set(outputs)) == 1


def test_the_header_release_list_is_the_index_s():
    """`indexed_releases` reads the header only as far as its release list, without json."""
    from esper_lint.torch_index.versions import indexed_releases

    assert indexed_releases() == load_index().releases
    assert len(indexed_releases()) >= 2
