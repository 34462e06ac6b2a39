"""Step-by-step checks of BPTT: the engine against the derived equations, the book and finite differences.

``verify`` builds the report (also ``graphrnn verify ARCH``); ``export_npz`` writes a
run's parameters, data and gradients for other frameworks; ``plot_gradient_norms``
draws vanishing and exploding gradients (matplotlib, an optional extra).

>>> import graphrnn.verify as gv
>>> report = gv.verify("fig10_3", steps=3, batch=1, sizes={"H": 3})
>>> report.ok
True
"""

from .book import StandardRNN, book_gradients, match_standard_rnn
from .check import VerifyError, verify
from .export import export_arrays, export_npz
from .perturb import Perturbed, forward_graph
from .plot import GradientNorms, gradient_norms, plot_gradient_norms, recurrent_params
from .report import Report, Row, Tolerance

__all__ = ["GradientNorms", "Perturbed", "Report", "Row", "StandardRNN", "Tolerance", "VerifyError",
           "book_gradients", "export_arrays", "export_npz", "forward_graph", "gradient_norms",
           "match_standard_rnn", "plot_gradient_norms", "recurrent_params", "verify"]
