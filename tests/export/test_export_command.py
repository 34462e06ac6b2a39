"""`graphrnn export ARCH --to torch|jax -o model.py`: the file it writes imports and matches graphrnn."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from _export_testlib import assert_close, imports, jax_x64, require

import graphrnn as gr
from graphrnn.cli import main


def _import(path):
    spec = importlib.util.spec_from_file_location(f"exported_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_to_torch_writes_a_module_that_matches(tmp_path, capsys):
    require("torch")
    out = tmp_path / "model.py"
    assert main(["export", "fig10_3", "--to", "torch", "-o", str(out), "--size", "H=7"]) == 0
    assert "wrote" in capsys.readouterr().out
    rec = gr.load("fig10_3", sizes={"H": 7})
    params, data = rec.init_params(seed=1), rec.random_inputs(4, batch=2, seed=1)
    loss = _import(out).make_model(params)(data)
    loss.backward()
    assert_close("loss", loss.item(), rec.run(data, params=params).loss)


def test_export_to_jax_free_running(tmp_path):
    jax = jax_x64()
    out = tmp_path / "model_jax.py"
    assert main(["export", "fig10_10", "--to", "jax", "--mode", "free", "-o", str(out)]) == 0
    rec = gr.load("fig10_10")
    params, data = rec.init_params(seed=1), rec.random_inputs(4, batch=2, seed=1)
    loss = jax.jit(_import(out).loss_fn)(params, data)
    assert_close("loss", float(loss), rec.run(data, params=params, mode="free").loss)


def test_export_prints_without_output_and_imports_nothing_of_graphrnn(capsys):
    assert main(["export", "fig10_11", "--to", "jax"]) == 0
    source = capsys.readouterr().out
    assert "jax.lax.scan(" in source and imports(source) == {"jax"}


def test_export_refusals_are_clear_errors_without_traceback(capsys):
    assert main(["export", "fig10_3", "--to", "torch", "--mode", "free"]) == 2
    err = capsys.readouterr().err
    assert "graphrnn export: error:" in err and "no `feedback` line" in err and "Traceback" not in err


def test_export_is_listed_by_the_command_line():
    out = subprocess.run([sys.executable, "-m", "graphrnn.cli", "--help"], capture_output=True, text=True, check=True)
    assert "export" in out.stdout and "PyTorch or JAX" in out.stdout


def test_export_needs_a_target():
    with pytest.raises(SystemExit):
        main(["export", "fig10_3"])


def test_the_written_file_runs_where_graphrnn_cannot_be_imported(tmp_path):
    """Standalone: a fresh, isolated interpreter with `import graphrnn` made impossible runs the file."""
    require("torch")
    out = tmp_path / "model.py"
    assert main(["export", "fig10_9", "--to", "torch", "-o", str(out)]) == 0
    rec = gr.load("fig10_9")
    params, data = rec.init_params(seed=4), rec.random_inputs(5, batch=3, seed=4)
    np_file = tmp_path / "arrays.npz"
    import numpy as np

    np.savez(np_file, **{f"p_{k}": v for k, v in params.items()}, **{f"d_{k}": v for k, v in data.items()})
    script = (
        "import sys; sys.modules['graphrnn'] = None\n"  # any `import graphrnn` now fails
        "import importlib.util, numpy as np\n"
        f"spec = importlib.util.spec_from_file_location('model', {str(out)!r})\n"
        "model = importlib.util.module_from_spec(spec); spec.loader.exec_module(model)\n"
        f"a = np.load({str(np_file)!r})\n"
        "params = {k[2:]: a[k] for k in a.files if k.startswith('p_')}\n"
        "data = {k[2:]: a[k] for k in a.files if k.startswith('d_')}\n"
        "print(repr(model.make_model(params)(data).item()))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_close("loss", float(done.stdout.strip()), rec.run(data, params=params).loss)
