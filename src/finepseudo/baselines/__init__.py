"""Trivial baselines (workflow/rules/baselines.smk): pixel-DTW and pooled-pixel nearest neighbours, phi_A alone
and a probe of the self-supervised f_E, each classifying the test videos from the split's labeled videos only,
so that every report shows what a method must beat.
"""
