"""Train what you drew: optimizers, clipping, schedules, a trainer, generation, and tasks.

>>> import graphrnn as gr
>>> from graphrnn import train
>>> trainer = train.Trainer(gr.load("gru"), train.Adding(T=8), batch=4, lr=0.01, progress=False)
>>> len(trainer.fit(3)["loss"])
3
"""

from .clip import clip_by_norm, clip_elementwise, global_norm, grad_norms
from .errors import TrainError
from .generate import generate, predict
from .optim import OPTIMIZERS, SGD, Adam, Optimizer, RMSProp, make_optimizer
from .schedule import Constant, Exponential, InverseSigmoid, Linear, StepDecay, WarmupCosine
from .tasks import TASKS, Adding, Copy, Reber, Task, Text, make_task
from .trainer import Trainer, load_params

__all__ = ["Adam", "Adding", "Constant", "Copy", "Exponential", "InverseSigmoid", "Linear", "OPTIMIZERS",
           "Optimizer", "RMSProp", "Reber", "SGD", "StepDecay", "TASKS", "Task", "Text", "TrainError", "Trainer",
           "WarmupCosine", "clip_by_norm", "clip_elementwise", "generate", "global_norm", "grad_norms",
           "load_params", "make_optimizer", "make_task", "predict"]
