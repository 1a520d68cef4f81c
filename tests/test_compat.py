"""The compatibility shims: they repair what is broken here and leave working installs alone."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hartutor import _compat


def _run(code: str, *, cwd: Path | None = None, extra_path: Path | None = None) -> str:
    env_path = [str(extra_path)] if extra_path else []
    prelude = f"import sys; sys.path[:0] = {env_path!r}\n"
    out = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_torchvision_timm_and_pytorchvideo_import_after_hartutor():
    out = _run(
        """
        import hartutor
        import torch, torchvision, timm, pytorchvideo
        from torchvision.transforms import v2
        from pytorchvideo.transforms import UniformTemporalSubsample, ShortSideScale
        x = torch.rand(3, 8, 32, 40)
        y = ShortSideScale(16)(UniformTemporalSubsample(4)(x))
        print(tuple(y.shape))
        print(timm.create_model("resnet18", pretrained=False, num_classes=5).eval()(
            torch.rand(1, 3, 32, 32)).shape[-1])
        """
    )
    assert out.split() == ["(3,", "4,", "16,", "20)", "5"]


def test_report_matches_what_torchvision_itself_says():
    out = _run(
        """
        import hartutor, torchvision.extension as ext
        r = hartutor._compat.report()
        print(r.torchvision_ops_loaded, ext._has_ops(), sorted(r.defined_op_schemas))
        """
    )
    loaded, has_ops, *schemas = out.split(maxsplit=2)
    assert loaded == has_ops, "the shim must agree with torchvision about its compiled ops"
    if loaded == "False":  # the broken pairing this project runs on: schemas were defined
        assert "torchvision::nms" in schemas[0]
    else:  # a working torchvision: nothing was touched
        assert schemas[0] == "[]"


def test_missing_ops_fail_clearly_rather_than_at_import():
    out = _run(
        """
        import hartutor, torch, torchvision
        if torchvision.extension._has_ops():
            print("ops-present")
        else:
            try:
                torchvision.ops.nms(torch.rand(2, 4), torch.rand(2), 0.5)
            except RuntimeError as err:
                print("clear-error" if "custom C++ ops" in str(err) else repr(err))
        """
    )
    assert out.strip() in {"ops-present", "clear-error"}


def _fake_package(root: Path, name: str, *, with_old_module: bool) -> None:
    pkg = root / name
    (pkg / "transforms").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "transforms" / "__init__.py").write_text("")
    (pkg / "transforms" / "_functional_tensor.py").write_text("def affine():\n    return 'new'\n")
    if with_old_module:
        (pkg / "transforms" / "functional_tensor.py").write_text(
            "def affine():\n    return 'original'\n"
        )
    (pkg / "_C.so").write_bytes(b"not a shared library")


@pytest.mark.parametrize("with_old_module", [False, True])
def test_alias_is_used_only_when_the_real_module_is_missing(tmp_path: Path, with_old_module):
    _fake_package(tmp_path, "fakevision", with_old_module=with_old_module)
    out = _run(
        """
        from hartutor import _compat
        _compat.ensure_module_aliases(
            {"fakevision.transforms.functional_tensor": "fakevision.transforms._functional_tensor"}
        )
        from fakevision.transforms.functional_tensor import affine
        print(affine())
        """,
        extra_path=tmp_path,
    )
    assert out.strip() == ("original" if with_old_module else "new")


def test_unknown_names_are_not_aliased(tmp_path: Path):
    _fake_package(tmp_path, "fakevision", with_old_module=False)
    out = _run(
        """
        from hartutor import _compat
        _compat.ensure_module_aliases({"fakevision.gone": "fakevision.also_gone"})
        try:
            import fakevision.gone
        except ModuleNotFoundError:
            print("not-found")
        """,
        extra_path=tmp_path,
    )
    assert out.strip() == "not-found"


def test_ops_schemas_defined_only_when_loading_fails(tmp_path: Path):
    _fake_package(tmp_path, "fakevision_ok", with_old_module=False)
    _fake_package(tmp_path, "fakevision_broken", with_old_module=False)
    out = _run(
        """
        import torch
        from hartutor import _compat

        loaded = []
        def works(path):
            loaded.append(path.name)

        def fails(path):
            raise OSError(f"Could not load this library: {path}")

        ok = _compat.ensure_torchvision_ops(
            load_library=works, namespace="fakevision_ok", report=_compat.CompatReport()
        )
        print(ok.torchvision_ops_loaded, loaded, hasattr(torch.ops.fakevision_ok, "nms"))
        broken = _compat.ensure_torchvision_ops(
            load_library=fails, namespace="fakevision_broken", report=_compat.CompatReport()
        )
        print(broken.torchvision_ops_loaded, sorted(broken.defined_op_schemas))
        print(torch.ops.fakevision_broken.nms.default._schema)
        """,
        extra_path=tmp_path,
    )
    first, second, third = out.strip().splitlines()
    assert first == "True ['_C.so'] False"
    assert second == "False ['fakevision_broken::nms', 'fakevision_broken::qnms']"
    assert third.startswith("fakevision_broken::nms(Tensor dets, Tensor scores, float")


def test_install_is_idempotent():
    before = list(_compat.report().defined_op_schemas)
    _compat.install()
    _compat.install()
    finders = [f for f in sys.meta_path if isinstance(f, _compat._AliasFinder)]
    assert len(finders) == 1
    assert _compat.report().defined_op_schemas == before
