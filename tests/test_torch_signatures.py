"""The signature and deprecation history (rules/torch-signatures.gz), its builder, and ESP204/ESP205.

The facts asserted on the shipped data were read from the wheels by hand (`unzip -p WHEEL
torch/_C/_VariableFunctions.pyi | grep _foreach_norm`, `torch/_dynamo/config.py`).
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from esper_lint.config import config_from_table
from esper_lint.engine import analyse_source
from esper_lint.torch_index.calls import check_call, check_deprecation, judged_releases
from esper_lint.torch_index.explain import explain, explain_data
from esper_lint.torch_index.signatures import CallShape, Overload, Signature, TorchSignatures, load_signatures
from tools import build_torch_signatures as builder


@pytest.fixture(scope="module")
def history() -> TorchSignatures:
    return load_signatures()


def text(history: TorchSignatures, name: str, release: str) -> str | None:
    state = history.state(name, release)
    return state.text() if isinstance(state, Signature) else state


# --- the shipped data -------------------------------------------------------------------------


def test_foreach_norm_history(history: TorchSignatures) -> None:
    assert text(history, "torch._foreach_norm", "1.10") == "absent"
    assert text(history, "torch._foreach_norm", "1.11") == "(tensors, ord=…)"
    assert text(history, "torch._foreach_norm", "1.12") == "(tensors, ord=…)"
    assert text(history, "torch._foreach_norm", "1.13") == "(self, ord=…)"
    assert text(history, "torch._foreach_norm", "2.3") == "(self, ord=…)"
    assert text(history, "torch._foreach_norm", "2.4") == "(self, ord=…, dtype=…)"
    runs = [(rels[0], rels[-1]) for rels, state in history.history("torch._foreach_norm") if state != "absent"]
    assert runs[:3] == [("1.11", "1.12"), ("1.13", "2.3"), ("2.4", runs[2][1])]
    # the ATen schema agrees with the stub, and `torch._VF` is the same C function table
    assert text(history, "torch.ops.aten._foreach_norm.Scalar", "1.12") == "(tensors, ord=…)"
    assert text(history, "torch.ops.aten._foreach_norm.Scalar", "2.4") == "(self, ord=…, dtype=…)"
    assert text(history, "torch._VF._foreach_norm", "2.4") == "(self, ord=…, dtype=…)"


def test_python_definitions_methods_and_reexports(history: TorchSignatures) -> None:
    assert text(history, "torch.nn.Module._apply", "2.0") == "(self, fn)"
    assert text(history, "torch.nn.Module._apply", "2.1") == "(self, fn, recurse=…)"
    # torch._dynamo.disable is torch._dynamo.decorators.disable, re-exported by the package
    assert text(history, "torch._dynamo.disable", "2.1") == text(history, "torch._dynamo.decorators.disable", "2.1")
    assert text(history, "torch._dynamo.disable", "2.1") == "(fn=…, recursive=…)"


def test_deprecation_alias(history: TorchSignatures) -> None:
    records = history.deprecations("torch._dynamo.config.cache_size_limit")
    assert [(d.kind, d.target, d.releases[0], d.warns) for d in records] == [
        ("alias", "torch._dynamo.config.recompile_limit", "2.7", False)
    ]
    assert history.deprecations("torch._dynamo.config.recompile_limit") == []


def test_deprecation_warning_and_its_target(history: TorchSignatures) -> None:
    (record,) = [d for d in history.deprecations("torch._vmap_internals.vmap") if "2.4" in d.releases]
    assert (record.kind, record.category, record.target) == ("decorator", "FutureWarning", "torch.vmap")
    # the same object re-exported under another private name warns too
    assert any(d.releases for d in history.deprecations("torch.distributed._all_gather_base"))


def test_header_records_the_build(history: TorchSignatures) -> None:
    assert history.python
    assert set(history.wheels) == set(history.releases)
    assert all(len(w["sha256"]) == 64 and w["file"].startswith("torch-") for w in history.wheels.values())
    assert history.counts["names_with_signature"] > 10_000


# --- signatures and calls ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "call", "problem"),
    [
        ("a,b=", CallShape(1, ()), None),
        ("a,b=", CallShape(3, ()), ("positional", "2")),
        ("a,b=", CallShape(0, ("b",)), ("missing", "a")),
        ("a,b=", CallShape(1, ("a",)), ("twice", "a")),
        ("a,/,b=", CallShape(0, ("a",)), ("positional-only", "a")),
        ("a,/,**kw", CallShape(1, ("a",)), None),  # a positional-only name may go into **kwargs
        ("a,*,k", CallShape(2, ("k",)), ("positional", "1")),
        ("a,*,k", CallShape(1, ()), ("missing", "k")),
        ("*args,k=", CallShape(5, ("k",)), None),
        ("a,**kw", CallShape(1, ("anything",)), None),
    ],
)
def test_binding(encoded: str, call: CallShape, problem: tuple[str, str] | None) -> None:
    assert Overload.decode(encoded).problem(call) == problem


def test_a_call_is_accepted_when_any_overload_accepts_it() -> None:
    signature = Signature.decode("pyi|a,b;a,*,out=")
    assert signature.problem(CallShape(2, ())) is None
    assert signature.problem(CallShape(1, ("out",))) is None
    assert signature.problem(CallShape(1, ("bogus",))) == ("keyword", "bogus")
    assert signature.problem(CallShape(3, ())) == ("overloads", "")


def test_text_of_an_overload() -> None:
    assert Overload.decode("a,/,b=,*,c,**kw").text() == "(a, /, b=…, *, c, **kw)"
    assert Overload.decode("*args,k=").text() == "(*args, k=…)"


@pytest.mark.parametrize(
    ("source", "stub", "expected"),
    [
        ("def f(a, b=1, *args, c, d=2, **kw): ...", False, "a,b=,*args,c,d=,**kw"),
        ("def f(a, /, b, *, c): ...", False, "a,/,b,*,c"),
        ("def f(__a, __b, c): ...", True, "__a,__b,/,c"),  # the stub convention for positional-only
    ],
)
def test_encode_parameters(source: str, stub: bool, expected: str) -> None:
    function = ast.parse(source).body[0]
    assert isinstance(function, ast.FunctionDef)
    assert builder.encode_parameters(function.args, stub=stub) == expected


def test_parse_schema() -> None:
    assert builder.parse_schema("_foreach_norm.Scalar(Tensor[] self, Scalar ord=2, ScalarType? dtype=None) -> Tensor[]") == (
        "_foreach_norm",
        "Scalar",
        "self,ord=,dtype=",
    )
    assert builder.parse_schema("_to_copy(Tensor self, *, ScalarType? dtype=None, bool non_blocking=False) -> Tensor") == (
        "_to_copy",
        "default",
        "self,*,dtype=,non_blocking=",
    )
    schema = '_x.out(Tensor(a!) self, int[2] k=[1, 1], str mode="a,b", *, Tensor(b!) out) -> Tensor(b!)'
    assert builder.parse_schema(schema) == (
        "_x",
        "out",
        "self,k=,mode=,*,out",
    )


def test_the_motivating_messages(history: TorchSignatures) -> None:
    dtype_call = CallShape(2, ("dtype",))
    judged = judged_releases(history.releases, None, "1.11")
    assert check_call(history, "torch._foreach_norm", dtype_call, judged, since="1.11") == (
        "`dtype=` is not accepted by `torch._foreach_norm` before 2.4 (torch 1.11–2.3; documented since 1.11)"
    )
    renamed = check_call(history, "torch._foreach_norm", CallShape(0, ("tensors",)), judged, since="1.11")
    assert renamed is not None and renamed.startswith("`tensors=` is not accepted by `torch._foreach_norm` from 1.13 (torch 1.13–")
    supported = tuple(r for r in history.releases if r.startswith("2."))
    ranged = check_call(history, "torch._foreach_norm", dtype_call, judged_releases(history.releases, supported, None), spec=">=2.0")
    assert ranged == "`dtype=` is not accepted by `torch._foreach_norm` before 2.4 (torch 2.0–2.3; supported range >=2.0)"
    assert check_call(history, "torch._foreach_norm", CallShape(1, (), star_kwargs=True), judged) is None


def test_unknown_and_absent_releases_are_not_judged(history: TorchSignatures) -> None:
    # 1.6-1.10 have no torch._foreach_norm: a call documented "since 1.6" is judged where it exists
    judged = judged_releases(history.releases, None, "1.6")
    assert check_call(history, "torch._foreach_norm", CallShape(1, ()), judged, since="1.6") is None
    assert check_call(history, "torch._not_a_callable_anywhere", CallShape(9, ("x",)), judged) is None


def test_hand_written_stubs_are_shown_but_not_asserted_on(history: TorchSignatures) -> None:
    """`torch/_C/__init__.pyi` lists 4 parameters of `import_ir_module`; torch 2.13's own
    `torch/jit/_serialization.py` passes 5, and the binding takes them."""
    signature = history.signature("torch._C.import_ir_module", "2.13")
    assert signature is not None and signature.source == "pyi" and not signature.evidence
    judged = judged_releases(history.releases, ("2.13",), None)
    assert check_call(history, "torch._C.import_ir_module", CallShape(5, ()), judged) is None


def test_deprecation_message(history: TorchSignatures) -> None:
    message = check_deprecation(history, "torch._dynamo.config.cache_size_limit", None)
    assert message is not None
    assert message.startswith("`torch._dynamo.config.cache_size_limit` is an alias of `torch._dynamo.config.recompile_limit` in torch 2.7–")
    # removed before the newest release, and no range reaches it: nothing to say
    assert check_deprecation(history, "torch.distributed._sharded_tensor.ShardedTensor", None) is None
    assert check_deprecation(history, "torch.distributed._sharded_tensor.ShardedTensor", ("2.2", "2.3")) is not None


def test_the_engine_reports_esp204_for_the_range() -> None:
    source = "import torch\ndef f(gs):\n    return torch._foreach_norm(gs, 2.0, dtype=torch.float32)\n"
    config = config_from_table({"torch-versions": ">=2.0", "select": ["ESP2"]}, "t")
    (finding,) = analyse_source(source, "a.py", config).findings
    assert finding.code == "ESP204"
    assert finding.message.startswith("call not accepted in every torch release it must run on: `dtype=` is not accepted")
    assert "(torch 2.0–2.3; supported range >=2.0)" in finding.message


def test_explain_shows_the_history_and_the_deprecations() -> None:
    shown = explain("torch._foreach_norm")
    assert "    1.11–1.12: (tensors, ord=…) (generated stub)" in shown
    assert "    1.13–2.3: (self, ord=…) (generated stub)" in shown
    data = explain_data("torch._dynamo.config.cache_size_limit")
    assert data["deprecations"][0]["target"] == "torch._dynamo.config.recompile_limit"
    assert "alias of torch._dynamo.config.recompile_limit in torch 2.7–" in explain("torch._dynamo.config.cache_size_limit")
    json.dumps(explain_data("torch._foreach_norm"))  # JSON-ready


# --- the builder ------------------------------------------------------------------------------

_MODULE = '''
import warnings
from typing_extensions import deprecated
from torch.utils._config_module import install_config_module, Config

def _fast(tensors, ord=2, *, dtype=None):
    return tensors

@deprecated("`torch._demo._old` is deprecated, use `torch._demo._fast` instead", category=FutureWarning)
def _old(x):
    return x

def _legacy(x):
    """Docstring."""
    warnings.warn("use torch.special.thing instead", DeprecationWarning)
    return x

def _conditional(x):
    if x:
        warnings.warn("sometimes", FutureWarning)

@some_registry("x")
def _registered(a, b):
    return a

class _Box:
    def __init__(self, size, *, fill=0):
        self.size = size

    @classmethod
    def _make(cls, size):
        return cls(size)

    @property
    def _value(self):
        return 1

old_limit = Config(alias="torch._demo.config.new_limit")
'''

_INIT = "from torch._demo.impl import _fast, _old\n"
_STUB = """\
from typing import overload
@overload
def _c(__a: int) -> int: ...
@overload
def _c(a: int, b: int, *, out: int = ...) -> int: ...
"""
_YAML = "- func: _thing.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)\n- func: _thing(Tensor self, int k=1) -> Tensor\n"
_CONFIG = """\
import sys
from torch.utils._config_module import Config, install_config_module
old_limit = Config(alias="torch._demo.config.new_limit", deprecated=True)
new_limit = 1
install_config_module(sys.modules[__name__])
"""
_CONFIG_MODULE = "class _ConfigEntry:\n    deprecated: bool = False\n\ndef _warn(msg):\n    warnings.warn(msg, FutureWarning)\n"


def _wheel(folder: Path, version: str, extra: str = "") -> Path:
    path = folder / f"torch-{version}-cp312-none-macosx_11_0_arm64.whl"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("torch/__init__.py", "")
        archive.writestr("torch/_demo/__init__.py", _INIT)
        archive.writestr("torch/_demo/impl.py", _MODULE + extra)
        archive.writestr("torch/_demo/config.py", _CONFIG)
        archive.writestr("torch/utils/_config_module.py", _CONFIG_MODULE)
        archive.writestr("torch/_C/_VariableFunctions.pyi", _STUB)
        archive.writestr("torchgen/packaged/ATen/native/native_functions.yaml", _YAML)
    path.write_bytes(buffer.getvalue())
    return path


def test_builder_reads_a_wheel(tmp_path: Path) -> None:
    facts = builder.read_release(_wheel(tmp_path, "2.4.0"))
    assert facts.signatures["torch._demo.impl._fast"] == "py|tensors,ord=,*,dtype="
    assert facts.signatures["torch._demo._fast"] == "py|tensors,ord=,*,dtype="  # re-exported
    assert facts.signatures["torch._demo.impl._registered"] == "?"  # a decorator that may change it
    assert facts.signatures["torch._demo.impl._Box"] == "py|size,*,fill="
    assert facts.signatures["torch._demo.impl._Box._make"] == "py|size"
    assert "torch._demo.impl._Box._value" not in facts.signatures or facts.signatures["torch._demo.impl._Box._value"] == ""
    assert facts.signatures["torch._C._VariableFunctions._c"] == "gen|__a,/;a,b,*,out="  # a generated stub
    assert facts.signatures["torch._c"] == facts.signatures["torch._C._VariableFunctions._c"]
    assert facts.signatures["torch.ops.aten._thing.out"] == "schema|self,*,out"
    assert facts.signatures["torch.ops.aten._thing"] == "schema|self,*,out;self,k="
    found = {(name, d.kind, d.category, d.target) for name, d, _ in facts.deprecations}
    assert ("torch._demo.impl._old", "decorator", "FutureWarning", "torch._demo._fast") in found
    assert ("torch._demo._old", "decorator", "FutureWarning", "torch._demo._fast") in found  # the re-export
    assert ("torch._demo.impl._legacy", "warns", "DeprecationWarning", "torch.special.thing") in found
    assert ("torch._demo.config.old_limit", "alias", "FutureWarning", "torch._demo.config.new_limit") in found
    assert not any(name.endswith("_conditional") for name, *_ in found)
    assert not any(name.startswith("torch._demo.impl.old_limit") for name, *_ in found)  # not a config module


def test_builder_is_deterministic_and_compact(tmp_path: Path) -> None:
    wheels = [_wheel(tmp_path, "2.3.0"), _wheel(tmp_path, "2.4.0", "\ndef _new(a):\n    return a\n")]
    first = builder.build(wheels)
    assert builder.build(list(reversed(wheels))[::-1]) == first
    assert builder.build(wheels, jobs=2) == first
    history = TorchSignatures.from_bytes(first)
    assert history.releases == ("2.3", "2.4")
    assert history.wheels["2.3"]["sha256"] == hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    assert history.history("torch._demo.impl._new") == [(("2.4",), Signature.decode("py|a"))]
    assert history.state("torch._demo.impl._new", "2.3") == "absent"
    # only the releases where the value changes are stored: one entry for an unchanged signature
    assert history._history("torch._demo.impl._fast") == [[0, "py|tensors,ord=,*,dtype="]]
    assert history._history("torch._demo.impl._new") == [[1, "py|a"]]


def test_builder_refuses_a_folder_without_wheels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert builder.main(["--wheels", str(tmp_path), "--out", str(tmp_path / "out.gz")]) == 2
    assert "no torch wheels" in capsys.readouterr().err


def test_builder_reports_a_broken_wheel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "torch-2.4.0-cp312-none-macosx_11_0_arm64.whl").write_bytes(b"not a zip")
    assert builder.main(["--wheels", str(tmp_path), "--out", str(tmp_path / "out.gz"), "--jobs", "1"]) == 2
    assert "cannot read the wheels" in capsys.readouterr().err
