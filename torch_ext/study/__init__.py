"""The dying-ReLU study: ReLU units die on real data under a high learning rate or a
strongly negative bias, and Leaky ReLU, PReLU, ELU and SELU keep learning; GELU and SiLU,
the smooth activations, are measured beside them (dead and tau-dormant units, accuracy).

Run it with ``python -m torch_ext.study`` (or ``torch-ext-study``); see ``--help``.
"""
