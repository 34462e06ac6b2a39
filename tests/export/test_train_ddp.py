"""examples/train_ddp.py: 2 processes on this CPU (gloo, loopback) train the exported fig. 10.3 module with
DistributedDataParallel.  The first step's averaged gradients equal one process's gradients on the combined
batch (and graphrnn's), and the losses agree after every one of a few SGD steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from _export_testlib import assert_close, load_source, require

import graphrnn as gr

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "train_ddp.py"


def test_two_processes_train_as_one_process_on_the_combined_batch(tmp_path):
    torch = require("torch")
    assert torch.distributed.is_available() and torch.distributed.is_gloo_available()
    report = tmp_path / "report.json"
    steps, lr, batch, T = 4, 0.01, 6, 5
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(SCRIPT), "--arch", "fig10_3", "--world-size", "2", "--steps",
                           str(steps), "--lr", str(lr), "--batch", str(batch), "-T", str(T), "--start-method", "fork",
                           "--out", str(tmp_path / "model.py"), "--report", str(report)],
                          capture_output=True, text=True, env=env, timeout=900)  # 15-30 s; minutes under heavy load
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 processes, the batch split [3, 3]" in done.stdout
    got = json.loads(report.read_text())
    assert got["world"] == 2 and len(got["losses"]) == steps

    # one process, the whole batch, the same exported module, the same initial parameters, data and SGD
    rec = gr.load("fig10_3")
    params, data = rec.init_params(seed=0), rec.random_inputs(T, batch=batch, seed=0)
    model = load_source((tmp_path / "model.py").read_text()).make_model(params)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        optimizer.zero_grad()
        loss = model(data)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            run = rec.run(data, params=params)
            assert_close("the combined batch's loss", got["losses"][0], run.loss)
            for name, p in model.named_parameters():
                # DDP's average of the two processes' gradients of 2 * (their share's summed loss)
                assert_close(f"step 1: averaged d loss / d {name}", np.array(got["grads"][name]), p.grad.numpy(),
                             reference="one process's")
                assert_close(f"step 1: d loss / d {name} against graphrnn", np.array(got["grads"][name]),
                             run.grads[name])
        optimizer.step()
    for step in range(steps):
        assert_close(f"the loss before step {step + 1}", got["losses"][step], losses[step], reference="one process's")
    assert losses[-1] < losses[0]  # it trains
