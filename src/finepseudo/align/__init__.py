"""Alignment stage (workflow/rules/alignability.smk): DTW by backend, the frame-wise encoder f_A with its
alignability score f_S, GITDL pre-training, AVML metric learning, pair mining and the alignability steps.
"""
