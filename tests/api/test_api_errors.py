"""The typed errors the README's Python API section names are reachable from the package itself."""

from __future__ import annotations

import pytest


def test_the_errors_the_readme_names_are_exported(ported_default, tmp_path) -> None:
    import modelport

    for name in ("ModelportError", "InvalidInputError", "OutputExistsError", "ParityError"):
        assert issubclass(getattr(modelport, name), modelport.ModelportError) and name in modelport.__all__
    (tmp_path / "taken").mkdir()
    with pytest.raises(modelport.OutputExistsError):
        modelport.quantize(ported_default.path, tmp_path / "taken", mode="fp16")
    with pytest.raises(modelport.InvalidInputError):
        ported_default.translate(["Hello"], beam=0)
